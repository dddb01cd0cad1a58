/**
 * A crash in the middle of indexing, then a restart: the child (fixtures/crash-child.mjs) is
 * killed with SIGKILL while a datum is stored without its vector, a datum is deleted with its
 * vector still stored, and a new artefact is half written. The restarted store's catch-up must
 * embed the first, drop the second, ignore the third, and leave the index equal to a reference
 * built from the datums themselves.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { contentText } from "../../core/datum.js";
import { createStore, type Store } from "../../core/store.js";
import { artefactPrefix, modelKey, RESERVED_PREFIX } from "./keys.js";
import { hashingEmbedder, recallPlugin, vectorMemory } from "./index.js";
import { bruteForce, assertSameHits, referenceScore } from "../../testing/suites/search.js";

const CHILD = fileURLToPath(new URL("./fixtures/crash-child.mjs", import.meta.url));
const COUNT = 60;
let dir = "";

beforeAll(() => {
  if (!existsSync(new URL("../../dist/plugins/recall/index.js", import.meta.url))) {
    throw new Error("dist/plugins/recall is missing: the child imports the built package; run `npx tsc -p tsconfig.json` first");
  }
  dir = mkdtempSync(join(tmpdir(), "dgent-recall-crash-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the child until it prints "held 3", then kills it with SIGKILL. */
async function crashChild(args: Record<string, unknown>): Promise<void> {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const held = new Promise<boolean>((resolve) => {
    lines.on("line", (line) => line === "held 3" && resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!(await held)) throw new Error(`the child ended before holding its three writes: ${stderr}`);
  child.kill("SIGKILL");
  const end = await exited;
  expect(end.signal).toBe("SIGKILL");
}

const embedder = hashingEmbedder({ dimensions: 64 });
const EMBEDDER_KEY = modelKey(embedder.id);

async function reopen(tier: "sqlite" | "jsonl", path: string): Promise<Store> {
  return createStore({
    tiers: [tier === "jsonl" ? jsonlAdapter({ path }) : sqliteAdapter({ path })],
    plugins: [recallPlugin({ embedder, ann: true, buildThreads: 1, saveEvery: 0, chunkBytes: 65_536 })],
  });
}

describe.each(["sqlite", "jsonl"] as const)("a crash while indexing (%s)", (tier) => {
  it("is repaired at the restart: missing vectors embedded, orphans removed, a half-written artefact ignored", async () => {
    const path = join(dir, `crash.${tier === "jsonl" ? "jsonl" : "db"}`);
    await crashChild({ tier, path, count: COUNT });

    const store = await reopen(tier, path);
    try {
      expect(await store.get("c/hang")).not.toBeNull();
      expect(await store.get("c/00003")).toBeNull();
      const memory = await vectorMemory(store);
      const report = memory.stats().lastCatchUp;
      expect(report?.embedded).toBe(1);
      expect(report?.removed).toBe(1);
      expect(memory.stats().errors).toEqual([]);

      // The index now equals a reference built from the datums.
      const datums = (await store.query({ idRange: { lt: RESERVED_PREFIX }, limit: 10_000 })).items;
      expect(datums.length).toBe(2 * COUNT);
      const vectors = new Map<string, Float32Array>();
      const embedded = await embedder.embed(datums.map(contentText));
      datums.forEach((d, i) => vectors.set(d.id, embedded[i] as Float32Array));
      expect(memory.stats().vectors).toBe(vectors.size);
      for (const text of ["the zebra crossed the savannah", "dogs bark", "note 3: rain tomorrow 3", "tea"]) {
        const [q] = await embedder.embed([text]);
        const exact = await memory.search(text, { k: 2 * COUNT, index: "exact" });
        assertSameHits(exact, bruteForce(vectors, q as Float32Array, 2 * COUNT, "cosine"), (id) => referenceScore(vectors.get(id) as Float32Array, q as Float32Array, "cosine"), 1e-6, text);
        const ann = await memory.search(text, { k: 10 });
        expect(ann.some((h) => h.id === "c/00003")).toBe(false);
      }
      expect((await memory.search("zebra savannah", { k: 1 }))[0]?.id).toBe("c/hang");

      // The half-written artefact (no manifest) was never used, and the next save prunes it.
      await memory.save();
      const artefactIds = (await store.query({ prefix: artefactPrefix(EMBEDDER_KEY), select: "ids", limit: 10_000 })).items;
      const generations = new Set(artefactIds.map((id) => id.slice(artefactPrefix(EMBEDDER_KEY).length).split("/")[0]));
      expect(generations.size).toBe(1);
    } finally {
      await store.close();
    }
  });
});
