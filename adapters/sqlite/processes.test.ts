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
import { ackReader, ackTimes, untilAll, writesWhileAllWrote, type RunningChild } from "../../testing/child.js";
import { MIGRATIONS, SCHEMA_VERSION, sqliteAdapter } from "./index.js";

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

/**
 * What a child does; content is derived from the id so the parent can check bytes. `open` and
 * `write` children print `ready` and start on `go` (a line on stdin), so they start together
 * whatever the machine's load; times are the machine's monotonic clock in ns (one clock for every
 * process), so the parent can check that they really ran at the same time.
 */
const PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_SQLITE_CHILD);
const make = (await import(cfg.fixture)).default;
const { createInterface } = await import("node:readline");
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const content = (id) => Buffer.from("bytes of " + id);
const now = () => process.hrtime.bigint();
const heard = new Set();
const waiting = new Map();
const commands = cfg.mode === "stream" ? null : createInterface({ input: process.stdin });
commands?.on("line", (line) => {
  heard.add(line);
  waiting.get(line)?.();
});
const command = (name) => (heard.has(name) ? Promise.resolve() : new Promise((resolve) => waiting.set(name, resolve)));
const a = await make(cfg.args);
if (cfg.mode === "open") {
  await out("ready");
  await command("go");
  await out("opening " + now());
  await a.open();
  const opened = now();
  const s = await a.stats();
  await out(JSON.stringify({ applied: s.migrationsApplied, version: s.schemaVersion, opened: String(opened) }));
} else if (cfg.mode === "write") {
  await a.open();
  await out("ready");
  await command("go");
  let parent = null;
  let j = 0;
  for (let batchNo = 0; !heard.has("stop"); batchNo++) {
    const batch = [];
    for (const end = j + 10; j < end; j++) {
      const id = cfg.prefix + String(j).padStart(6, "0");
      batch.push({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { j: String(j) } });
      parent = id;
    }
    if (batchNo % 2) await a.putMany(batch);
    else for (const d of batch) await a.put(d);
    await out("ack " + parent + " " + now());
    await new Promise((resolve) => setImmediate(resolve)); // lets "stop" in
  }
  await out("stopped " + j);
} else {
  await a.open();
  for (let i = 0; ; i++) {
    const id = cfg.prefix + String(i).padStart(7, "0");
    await a.put({ id, content: content(id), createdAt: Date.now(), causalParent: null, metadata: {} });
    await out("ack " + id);
  }
}
commands?.close();
await a.close();
`;

interface Child {
  lines: string[];
  exited: Promise<number | string>;
  kill(): void;
  until(n: number): Promise<void>;
  /** The shape the kit's race helpers read (testing/child.ts). */
  running: Pick<RunningChild, "lines" | "until">;
  /** Writes a command line to the child's stdin; `last` closes it after. */
  send(command: string, last?: boolean): void;
  stderr: string[];
}

function child(cfg: Record<string, unknown>): Child {
  const env = { ...process.env, DGENT_SQLITE_CHILD: JSON.stringify({ fixture: FIXTURE, ...cfg }) };
  const proc = spawn(process.execPath, ["--input-type=module", "-e", PROGRAM], { env, cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  proc.stdin.on("error", () => undefined); // a child that died early is reported by its exit code
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
  const when = (predicate: (lines: readonly string[]) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(lines)) resolve();
        else if (proc.exitCode !== null || proc.signalCode !== null) reject(new Error(`child exited early: ${stderr.join("")}`));
        else waiters.push(check);
      };
      check();
    });
  const send = (command: string, last = false) => {
    if (last) proc.stdin.end(`${command}\n`);
    else proc.stdin.write(`${command}\n`);
  };
  return { lines, exited, kill: () => proc.kill("SIGKILL"), until: (n) => when(() => lines.length >= n), running: { lines, until: when }, send, stderr };
}

/** Kills the children still running (after a failed assertion). */
function reap(kids: readonly Child[]): void {
  for (const k of kids) k.kill();
}

/** The number after `word ` on the child's first line starting with it (`opening 123` → 123n). */
function stamp(k: Child, word: string): bigint {
  const line = k.lines.find((l) => l.startsWith(`${word} `));
  if (line === undefined) throw new Error(`no "${word}" line from the child: ${k.lines.join(" | ")}`);
  return BigInt(line.slice(word.length + 1));
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
    // A long busy timeout: the children wait on the lock below, however slow the machine.
    const kids = Array.from({ length: 10 }, () => child({ mode: "open", args: { path, busyTimeoutMs: 600_000 } }));
    try {
      await Promise.all(kids.map((k) => k.until(1)));
      expect(kids.map((k) => k.lines[0])).toEqual(Array(10).fill("ready"));
      // Hold the (still empty) file locked until every child is inside open(): then they all
      // contend for the first migration at once instead of one after another.
      const lock = new Database(path);
      lock.exec("BEGIN EXCLUSIVE");
      for (const k of kids) k.send("go", true);
      await Promise.all(kids.map((k) => k.until(2)));
      lock.exec("ROLLBACK");
      lock.close();
      const codes = await Promise.all(kids.map((k) => k.exited));
      expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(10).fill(0));
    } finally {
      reap(kids);
    }
    const reports = kids.map((k) => JSON.parse(k.lines[2] ?? "null") as { applied: number[]; version: number; opened: string });
    // Every open began before any ended: the ten really overlapped.
    const lastStart = kids.map((k) => stamp(k, "opening")).reduce((a, b) => (a > b ? a : b));
    const firstEnd = reports.map((r) => BigInt(r.opened)).reduce((a, b) => (a < b ? a : b));
    expect(lastStart < firstEnd, "every open() began before the first one returned").toBe(true);
    expect(reports.filter((r) => r.applied.length > 0).map(({ applied, version }) => ({ applied, version }))).toEqual([{ applied: MIGRATIONS.map((m) => m.version), version: SCHEMA_VERSION }]);
    expect(reports.every((r) => r.version === SCHEMA_VERSION)).toBe(true);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    // data, its two indexes and primary key; refs and its two reflog triggers; reflog; tags and its two triggers
    expect(raw.prepare("SELECT count(*) FROM sqlite_schema").pluck().get()).toBe(10);
    raw.close();
  });

  it("processes writing the same file at once lose nothing", async () => {
    const path = join(tempDir(), "shared.db");
    const n = 6;
    const batches = 30; // of 10 datums, half by put and half by putMany
    // A long busy timeout: a writer that waits its turn for the lock must not fail for slowness.
    const kids = Array.from({ length: n }, (_, k) => child({ mode: "write", args: { path, busyTimeoutMs: 600_000 }, prefix: `w${k}/` }));
    // The parent reads while they write.
    const reader = sqliteAdapter({ path });
    await reader.open();
    try {
      await Promise.all(kids.map((k) => k.until(1)));
      expect(kids.map((k) => k.lines[0])).toEqual(Array(n).fill("ready"));
      for (const k of kids) k.send("go");
      // They write until each has written `batches` batches while all the others were writing.
      const running = kids.map((k) => k.running);
      const acks = ackReader(running);
      await untilAll(running, () => writesWhileAllWrote(acks()).every((c) => c >= batches));
      for (const k of kids) k.send("stop", true);
      const codes = await Promise.all(kids.map((k) => k.exited));
      expect(codes, kids.map((k) => k.stderr.join("")).join("\n")).toEqual(Array(n).fill(0));
    } finally {
      reap(kids);
    }
    const overlap = writesWhileAllWrote(kids.map((k) => ackTimes(k.lines)));
    expect(overlap.every((c) => c >= batches), `batches each wrote while all were writing: ${overlap.join(", ")}`).toBe(true);
    const written = kids.map((k) => Number(stamp(k, "stopped")));
    expect((await reader.stats()).count).toBe(written.reduce((a, b) => a + b, 0));
    for (let k = 0; k < n; k++) {
      const count = written[k] as number;
      const listed = await reader.list({ prefix: `w${k}/`, after: -1, limit: 100_000 });
      expect(listed.length).toBe(count);
      for (const d of listed) expect(Buffer.from(d.content).toString()).toBe(`bytes of ${d.id}`);
      const chain = await reader.causalChain(`w${k}/${String(count - 1).padStart(6, "0")}`, 100_000);
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
