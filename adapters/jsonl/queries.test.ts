/**
 * The JSONL tier's native queries (adapters/shared-index over the log's in-memory index):
 * - against core's reference evaluation, random datums and filters, paged to the end in both
 *   orders, after deletes, later puts, a deleteMany, a reopen (the indexes rebuilt by replay) and
 *   a compaction;
 * - projections and chain tails that read nothing (or only the steps asked for) from the file;
 * - deleteMany as one frame: every cut of it on disk opens as all or nothing; a writer killed by
 *   SIGKILL while it deletes groups leaves each group whole or gone.
 */
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Datum } from "../../core/datum.js";
import { walkTail } from "../../core/router-query.js";
import type { AdapterContext } from "../../core/protocol.js";
import { countQuery, evaluateQuery, resolveQuery, unpaged, type DatumHeader, type QueryFilter, type QueryOptions, type ResolvedQuery } from "../../core/query.js";
import { comparable, pageThrough, queryArbitraries, referenceAnswer } from "../shared-index/query-check.js";
import { jsonlAdapter, type JsonlAdapter } from "./index.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const arb = queryArbitraries(fc);

let root: string;
let counter = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "dgent-jsonl-queries-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshPath(): string {
  const dir = join(root, `t${counter++}`);
  mkdirSync(dir);
  return join(dir, "log.jsonl");
}

function collecting(warnings: string[]): AdapterContext {
  return { events: { evicted: () => undefined, change: () => undefined, warning: (message) => void warnings.push(message) } };
}

async function openLog(path: string, warnings: string[] = [], indexTags: string[] = []): Promise<JsonlAdapter> {
  const a = jsonlAdapter({ path, durability: "none", indexTags });
  await a.open(collecting(warnings));
  return a;
}

const filterOnly = (q: QueryFilter): ResolvedQuery => unpaged(resolveQuery(q, { paged: false }));

/** Pages `options` to the end natively and with the reference, in both orders; counts too. */
async function checkQuery(a: JsonlAdapter, live: ReadonlyMap<string, Datum>, options: QueryOptions): Promise<void> {
  for (const order of ["newest", "oldest"] as const) {
    const o = { ...options, order };
    const native = await pageThrough((q) => a.query(q), o);
    const reference = await pageThrough(referenceAnswer(live.values()), o);
    expect(native.map(comparable), JSON.stringify(o)).toEqual(reference.map(comparable));
    const ids = native.flat().map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
  }
  const { order: _o, limit: _l, select: _s, cursor: _c, ...filter } = options;
  const q = filterOnly(filter);
  expect(await a.count(q)).toBe(countQuery(q, live.values()));
}

const datum = (id: string, createdAt: number, metadata: Record<string, string> = {}, causalParent: string | null = null): Datum => ({
  id,
  createdAt,
  causalParent,
  metadata,
  content: new TextEncoder().encode(`content of ${id}`),
});

describe("jsonl: native queries equal the reference", () => {
  it("declares native, indexed queries", () => {
    const a = jsonlAdapter({ path: join(root, "unopened.jsonl") });
    expect(a.capabilities.query).toBe(true);
    expect(a.capabilities.queryCost).toBe("indexed");
  });

  it("random datums and filters, paged to the end in both orders: after deletes, later puts, deleteMany, reopen and compaction", async () => {
    await fc.assert(
      fc.asyncProperty(arb.datums(30), arb.datums(12), fc.array(fc.nat(), { maxLength: 10 }), arb.options(), arb.filter(), fc.boolean(), fc.subarray(["role", "s", "k%"]), async (initial, later, deletions, options, doomed, batch, indexTags) => {
        const path = freshPath();
        const warnings: string[] = [];
        let a = await openLog(path, warnings, indexTags);
        const live = new Map<string, Datum>();
        if (batch) await a.putMany(initial);
        else for (const d of initial) await a.put(d);
        for (const d of initial) live.set(d.id, d);
        await checkQuery(a, live, options); // builds the indexes the query names
        const ids = [...live.keys()];
        for (const k of deletions) {
          const id = ids[k % Math.max(1, ids.length)];
          if (id !== undefined && live.delete(id)) expect(await a.delete(id)).toBe(true);
        }
        for (const d of later) {
          if (live.has(d.id)) continue;
          await a.put(d);
          live.set(d.id, d);
        }
        await checkQuery(a, live, options);
        const q = filterOnly(doomed);
        const expected = (evaluateQuery(q, live.values()) as DatumHeader[]).map((d) => d.id).sort();
        expect([...(await a.deleteMany(q))].sort()).toEqual(expected);
        for (const id of expected) live.delete(id);
        await checkQuery(a, live, options);
        // Reopen: replay rebuilds every index (the deleteMany's frame included).
        await a.close();
        a = await openLog(path, warnings, indexTags);
        expect(await a.count(q)).toBe(0);
        await checkQuery(a, live, options);
        await checkQuery(a, live, { ...doomed, limit: 2 });
        await a.compact();
        await checkQuery(a, live, options);
        await a.close();
        expect(warnings).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it("getMany and chainTail match get and the reference walk, before and after reopen", async () => {
    await fc.assert(
      fc.asyncProperty(arb.datums(30), fc.array(fc.nat(), { maxLength: 8 }), fc.integer({ min: 1, max: 5 }), async (datums, picks, n) => {
        const path = freshPath();
        let a = await openLog(path);
        await a.putMany(datums);
        const live = new Map(datums.map((d) => [d.id, d]));
        const pool = [...datums.map((d) => d.id), "absent"];
        const ids = picks.map((k) => pool[k % pool.length] as string);
        for (let round = 0; round < 2; round++) {
          const many = await a.getMany(ids);
          expect(many.map((d) => (d === null ? null : comparable([d])[0]))).toEqual(ids.map((id) => (live.has(id) ? comparable([live.get(id) as Datum])[0] : null)));
          for (const id of ids) {
            const outcome = (p: Promise<Datum[]>) => p.then((chain) => chain.map((d) => d.id), (error: { code?: string }) => error.code);
            expect(await outcome(a.chainTail(id, n))).toEqual(await outcome(walkTail(id, async (x) => live.get(x) ?? null, n)));
          }
          await a.close();
          a = await openLog(path);
        }
        await a.close();
      }),
      { numRuns: 40 },
    );
  });
});

describe("jsonl: what queries read", () => {
  /** Overwrites every byte of the record of `id` except its newline, as if the file rotted. */
  function rot(path: string, id: string): void {
    const text = readFileSync(path, "latin1");
    const at = text.indexOf(`"id":${JSON.stringify(id)}`);
    const start = text.lastIndexOf("\n", at) + 1;
    const end = text.indexOf("\n", at);
    const fd = openSync(path, "r+");
    try {
      writeSync(fd, Buffer.alloc(end - start, " "), 0, end - start, start);
    } finally {
      closeSync(fd);
    }
  }

  it("meta and ids answer from memory without reading the file; full reads the page", async () => {
    const path = freshPath();
    const a = await openLog(path);
    await a.putMany([datum("a", 1, { role: "user" }), datum("b", 2, { role: "agent" }), datum("c", 3, { role: "user" }, "a")]);
    rot(path, "a");
    rot(path, "c");
    const headers = (await a.query(resolveQuery({ where: { role: "user" }, select: "meta" }))) as DatumHeader[];
    expect(headers).toEqual([
      { id: "c", createdAt: 3, causalParent: "a", metadata: { role: "user" } },
      { id: "a", createdAt: 1, causalParent: null, metadata: { role: "user" } },
    ]);
    headers.forEach((h) => void ((h.metadata as Record<string, string>).role = "changed"));
    expect(((await a.query(resolveQuery({ where: { role: "user" }, select: "ids" }))) as DatumHeader[]).map((h) => h.id)).toEqual(["c", "a"]);
    expect(await a.count(filterOnly({ parent: "a" }))).toBe(1);
    await expect(a.query(resolveQuery({ where: { role: "user" } }))).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR" });
    expect((await a.query(resolveQuery({ where: { role: "agent" } }))).map((d) => d.id)).toEqual(["b"]);
    await a.close();
  });

  it("chainTail reads only the n steps it returns, on a chain longer than the depth limit", async () => {
    const path = freshPath();
    const a = await openLog(path);
    const n = 10_050; // past DEFAULT_MAX_CHAIN_DEPTH (10 000)
    const chain: Datum[] = [];
    for (let i = 0; i < n; i++) chain.push(datum(`s${i}`, i, {}, i === 0 ? null : `s${i - 1}`));
    await a.putMany(chain);
    rot(path, `s${n - 21}`); // the step just before the tail
    const tail = await a.chainTail(`s${n - 1}`, 20);
    expect(tail.map((d) => d.id)).toEqual(chain.slice(-20).map((d) => d.id));
    await expect(a.chainTail(`s${n - 1}`, 21)).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR" });
    await a.close();
  });
});

describe("jsonl: deleteMany is one frame, all or nothing", () => {
  it("writes its tombstones as one begin/commit frame (version 2); a single match is one tombstone", async () => {
    const path = freshPath();
    const a = await openLog(path);
    await a.putMany([datum("t/1", 1, { s: "x" }), datum("t/2", 2, { s: "x" }), datum("t/3", 3, { s: "y" }), datum("u/1", 4, { s: "x" })]);
    const before = statSync(path).size;
    expect((await a.deleteMany(filterOnly({ prefix: "t/", where: { s: "x" } }))).sort()).toEqual(["t/1", "t/2"]);
    const lines = readFileSync(path, "utf8").slice(before).trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { v: 2, op: "begin", n: 2 },
      { v: 1, op: "del", id: expect.any(String) },
      { v: 1, op: "del", id: expect.any(String) },
      { v: 2, op: "commit", n: 2 },
    ]);
    const mid = statSync(path).size;
    expect(await a.deleteMany(filterOnly({ where: { s: "y" } }))).toEqual(["t/3"]);
    expect(JSON.parse(readFileSync(path, "utf8").slice(mid))).toEqual({ v: 1, op: "del", id: "t/3" });
    expect(await a.deleteMany(filterOnly({ where: { s: "nothing" } }))).toEqual([]);
    expect(statSync(path).size).toBe(mid + readFileSync(path, "utf8").slice(mid).length);
    await a.close();
    const again = await openLog(path);
    expect((await again.query(resolveQuery({ select: "ids" }))).map((d) => d.id)).toEqual(["u/1"]);
    expect(await again.deleteIds(["u/1", "u/1", "absent"])).toEqual(["u/1"]);
    await again.close();
  });

  it("every cut of a deleteMany's frame on disk opens as all of it or none of it", async () => {
    const path = freshPath();
    const a = await openLog(path);
    const datums = Array.from({ length: 6 }, (_, i) => datum(`d${i}`, i, { group: i < 4 ? "doomed" : "kept" }));
    await a.putMany(datums);
    const before = statSync(path).size;
    expect(await a.deleteMany(filterOnly({ where: { group: "doomed" } }))).toHaveLength(4);
    await a.close();
    const after = statSync(path).size;
    let torn = 0;
    for (let cut = before; cut <= after; cut++) {
      const copy = freshPath();
      copyFileSync(path, copy);
      truncateSync(copy, cut);
      const warnings: string[] = [];
      const b = await openLog(copy, warnings);
      const ids = (await b.query(resolveQuery({ select: "ids", order: "oldest" }))).map((d) => d.id);
      const doomed = await b.count(filterOnly({ where: { group: "doomed" } }));
      if (cut === after) {
        expect(ids, `cut at ${cut}`).toEqual(["d4", "d5"]);
        expect(doomed).toBe(0);
      } else {
        expect(ids, `cut at ${cut}`).toEqual(datums.map((d) => d.id));
        expect(doomed).toBe(4);
      }
      if (cut > before && cut < after) {
        expect(warnings.join("\n"), `cut at ${cut}`).toMatch(/torn tail/);
        torn++;
      }
      await b.close();
    }
    expect(torn).toBe(after - before - 1);
  });

  it("a writer killed by SIGKILL while it deletes groups leaves every group whole or gone", { timeout: 300_000 }, async () => {
    const GROUPS = 40;
    const SIZE = 1000;
    const child = fileURLToPath(new URL("./fixtures/delete-many-child.mjs", import.meta.url));
    const viteNode = join(REPO, "node_modules/vite-node/vite-node.mjs");
    expect(existsSync(viteNode)).toBe(true);
    for (const [round, killAt] of [3, 17, 31].entries()) {
      const path = freshPath();
      const a = await openLog(path);
      for (let g = 0; g < GROUPS; g++) {
        await a.putMany(Array.from({ length: SIZE }, (_, i) => datum(`g${g}/${i}`, g * SIZE + i, { group: `g${g}`, i: String(i) })));
      }
      await a.close();
      const proc = spawn(process.execPath, [viteNode, child], {
        cwd: REPO,
        env: { ...process.env, DGENT_DELETE_MANY_CHILD: JSON.stringify({ path, groups: GROUPS }) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      proc.stderr?.on("data", (c: Buffer) => void (stderr += c.toString()));
      const exited = new Promise<string>((resolve) => proc.on("exit", (code, signal) => resolve(String(signal ?? code))));
      let acknowledged = -1;
      let started = -1;
      // Kill it as soon as it announces the deleteMany of group `killAt` (so, while or just after it
      // writes). Lines read after the kill still count: they were written before it landed.
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: proc.stdout! }).on("line", (line) => {
          const [word, g] = line.split(" ");
          if (word === "deleted") acknowledged = Number(g);
          if (word !== "deleting") return;
          started = Number(g);
          if (started === killAt) {
            proc.kill("SIGKILL");
            resolve();
          }
        });
        proc.on("exit", () => reject(new Error(`the child exited before deleting group ${killAt}: ${stderr}`)));
      });
      expect(await exited, `round ${round}`).toBe("SIGKILL");
      expect(acknowledged).toBeGreaterThanOrEqual(killAt - 1);
      expect(started - acknowledged).toBeLessThanOrEqual(1);
      const warnings: string[] = [];
      const b = await openLog(path, warnings);
      let left = 0;
      for (let g = 0; g < GROUPS; g++) {
        const n = await b.count(filterOnly({ where: { group: `g${g}` } }));
        if (g <= acknowledged) expect(n, `group ${g}, deleted and acknowledged`).toBe(0);
        else if (g > started) expect(n, `group ${g}, never touched`).toBe(SIZE);
        else expect([0, SIZE], `group ${g}, killed while deleting: whole or gone`).toContain(n);
        // The tag and id indexes agree after replay.
        expect(await b.count(filterOnly({ prefix: `g${g}/` }))).toBe(n);
        left += n;
      }
      expect(await b.count(filterOnly({}))).toBe(left);
      await b.close();
    }
  });
});
