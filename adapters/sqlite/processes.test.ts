/**
 * Several processes on one file. Children open the tier through test/fixtures/child-sqlite.mjs,
 * which imports the built package (`dist/`): run `npx tsc -p tsconfig.json` after changing the
 * adapter.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "./index.js";

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-"));
  dirs.push(dir);
  return dir;
};
const cleanup = (): void => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
};

const FIXTURE = new URL("../../test/fixtures/child-sqlite.mjs", import.meta.url).href;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What a child does; content is derived from the id so the parent can check bytes. */
const PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_SQLITE_CHILD);
const make = (await import(cfg.fixture)).default;
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const content = (id) => Buffer.from("bytes of " + id);
while (Date.now() < cfg.startAt) {}
const a = await make(cfg.args);
await a.open();
if (cfg.mode === "open") {
  const s = await a.stats();
  await out(JSON.stringify({ applied: s.migrationsApplied, version: s.schemaVersion }));
} else if (cfg.mode === "write") {
  let parent = null;
  for (let i = 0; i < cfg.count; i += 10) {
    const batch = [];
    for (let j = i; j < i + 10 && j < cfg.count; j++) {
      const id = cfg.prefix + String(j).padStart(6, "0");
      batch.push({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { j: String(j) } });
      parent = id;
    }
    if ((i / 10) % 2) await a.putMany(batch);
    else for (const d of batch) await a.put(d);
  }
  await out("done");
} else {
  for (let i = 0; ; i++) {
    const id = cfg.prefix + String(i).padStart(7, "0");
    await a.put({ id, content: content(id), createdAt: Date.now(), causalParent: null, metadata: {} });
    await out("ack " + id);
  }
}
await a.close();
`;

interface Child {
  lines: string[];
  exited: Promise<number | string>;
  kill(): void;
  until(n: number): Promise<void>;
  stderr: string[];
}

function child(cfg: Record<string, unknown>): Child {
  const env = { ...process.env, DGENT_SQLITE_CHILD: JSON.stringify({ fixture: FIXTURE, startAt: 0, ...cfg }) };
  const proc = spawn(process.execPath, ["--input-type=module", "-e", PROGRAM], { env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => {
      resolve(code ?? signal ?? -1);
      for (const w of waiters.splice(0)) w();
    }),
  );
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (lines.length >= n) resolve();
        else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`child exited early: ${stderr.join("")}`));
        else waiters.push(check);
      };
      check();
    });
  return { lines, exited, kill: () => proc.kill("SIGKILL"), until, stderr };
}

beforeAll(() => {
  // The children run the built package; refuse to test a stale build.
  const src = join(ROOT, "adapters", "sqlite");
  const built = join(ROOT, "dist", "adapters", "sqlite", "index.js");
  const newest = Math.max(
    ...readdirSync(src)
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .map((f) => statSync(join(src, f)).mtimeMs),
  );
  let builtAt = 0;
  try {
    builtAt = statSync(built).mtimeMs;
  } catch {
    // missing: reported below
  }
  if (builtAt < newest) throw new Error("dist/ is older than adapters/sqlite: run `npx tsc -p tsconfig.json` first");
});
afterAll(cleanup);

describe("sqlite: several processes", () => {
  it("ten processes opening a fresh file at the same moment all succeed; the schema is made once", async () => {
    const path = join(tempDir(), "fresh.db");
    const startAt = Date.now() + 700;
    const kids = Array.from({ length: 10 }, () => child({ mode: "open", args: { path }, startAt }));
    const codes = await Promise.all(kids.map((k) => k.exited));
    expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(10).fill(0));
    const reports = kids.map((k) => JSON.parse(k.lines[0] ?? "null") as { applied: number[]; version: number });
    expect(reports.filter((r) => r.applied.length > 0)).toEqual([{ applied: [1], version: 1 }]);
    expect(reports.every((r) => r.version === 1)).toBe(true);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma("user_version", { simple: true })).toBe(1);
    expect(raw.prepare("SELECT count(*) FROM sqlite_schema").pluck().get()).toBe(4);
    raw.close();
  });

  it("processes writing the same file at once lose nothing", async () => {
    const path = join(tempDir(), "shared.db");
    const startAt = Date.now() + 500;
    const n = 6;
    const count = 300;
    const kids = Array.from({ length: n }, (_, k) => child({ mode: "write", args: { path }, prefix: `w${k}/`, count, startAt }));
    // The parent reads while they write.
    const reader = sqliteAdapter({ path });
    await reader.open();
    const codes = await Promise.all(kids.map((k) => k.exited));
    expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(n).fill(0));
    expect((await reader.stats()).count).toBe(n * count);
    for (let k = 0; k < n; k++) {
      const listed = await reader.list({ prefix: `w${k}/`, after: -1, limit: 1000 });
      expect(listed.length).toBe(count);
      for (const d of listed) expect(Buffer.from(d.content).toString()).toBe(`bytes of ${d.id}`);
      const chain = await reader.causalChain(`w${k}/${String(count - 1).padStart(6, "0")}`, 10_000);
      expect(chain.length).toBe(count);
    }
    await reader.close();
  });

  it("a writer killed with SIGKILL mid-stream loses no acknowledged put (synchronous FULL and NORMAL)", async () => {
    for (const synchronous of ["NORMAL", "FULL"]) {
      const path = join(tempDir(), `crash-${synchronous}.db`);
      const kid = child({ mode: "stream", args: { path, synchronous }, prefix: "c/" });
      await kid.until(400);
      kid.kill();
      expect(await kid.exited).toBe("SIGKILL");
      const acked = kid.lines.filter((l) => l.startsWith("ack ")).map((l) => l.slice(4));
      expect(acked.length).toBeGreaterThanOrEqual(400);
      const after = sqliteAdapter({ path });
      await after.open();
      for (const id of acked) expect((await after.get(id))?.id).toBe(id);
      await after.close();
      const raw = new Database(path, { readonly: true });
      expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
      raw.close();
    }
  });
});
