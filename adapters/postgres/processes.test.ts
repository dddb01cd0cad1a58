import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChangeEvent } from "../../core/protocol.js";
import { createStore } from "../../core/store.js";
import { assertBuilt, dropSchema, freshSchema, runChild, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { ackReader, ackTimes, untilAll, writesWhileAllWrote, type RunningChild } from "../../testing/child.js";
import { MIGRATIONS, ORIGIN, poolReport, postgresAdapter, POSTGRES_DOCKER } from "./index.js";
import { until } from "../../test/harness/until.js";

// Other processes import the built package (dist/) through test/fixtures/child-postgres.mjs.
let server: PostgresServer;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
});
const schemas: string[] = [];
const schema = (label: string) => {
  const name = freshSchema(label);
  schemas.push(name);
  return name;
};
afterAll(async () => {
  // Leave a shared server (DGENT_TEST_POSTGRES_URL) as we found it.
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

/**
 * A child that opens the tier through test/fixtures/child-postgres.mjs, prints `ready`, and starts
 * on `go` (a line on stdin), so that several start together whatever the machine's load. Times
 * are the machine's monotonic clock in ns (one clock for every process).
 * - `migrate`: prints `opening <ns>`, opens (which migrates), prints {"applied","version","opened"}.
 * - `write`: puts one chain under `prefix` until `stop`, printing `ack <id> <ns>` after each put,
 *   then `stopped <n>`.
 */
const FIXTURE = new URL("../../test/fixtures/child-postgres.mjs", import.meta.url).href;
const PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_PG_CHILD);
const make = (await import(cfg.fixture)).default;
const { createInterface } = await import("node:readline");
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const now = () => process.hrtime.bigint();
const heard = new Set();
const waiting = new Map();
const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  heard.add(line);
  waiting.get(line)?.();
});
const command = (name) => (heard.has(name) ? Promise.resolve() : new Promise((resolve) => waiting.set(name, resolve)));
const a = make({ listen: false, ...cfg.options });
if (cfg.task === "migrate") {
  await out("ready");
  await command("go");
  await out("opening " + now());
  await a.open();
  const opened = now();
  const s = await a.stats();
  await out(JSON.stringify({ applied: s.migrationsApplied, version: s.schemaVersion, opened: String(opened) }));
} else {
  await a.open();
  await out("ready");
  await command("go");
  let parent = null;
  let i = 0;
  while (!heard.has("stop")) {
    const id = cfg.prefix + String(i).padStart(6, "0");
    await a.put({ id, content: Buffer.from("content of " + id), createdAt: Date.now(), causalParent: parent, metadata: { i: String(i) } });
    parent = id;
    i++;
    await out("ack " + id + " " + now());
  }
  await out("stopped " + i);
}
commands.close();
await a.close();
`;

interface Child {
  running: Pick<RunningChild, "lines" | "until">;
  exited: Promise<number | string>;
  stderr: string[];
  send(command: string, last?: boolean): void;
  kill(): void;
}

function child(config: Record<string, unknown>): Child {
  const env = { ...process.env, DGENT_PG_CHILD: JSON.stringify({ fixture: FIXTURE, ...config }) };
  const proc = spawn(process.execPath, ["--input-type=module", "-e", PROGRAM], { env, stdio: ["pipe", "pipe", "pipe"] });
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
  const until = (predicate: (lines: readonly string[]) => boolean) =>
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
  return { running: { lines, until }, exited, stderr, send, kill: () => proc.kill("SIGKILL") };
}

/** The number after `word ` on the child's first line starting with it. */
function stamp(c: Child, word: string): bigint {
  const line = c.running.lines.find((l) => l.startsWith(`${word} `));
  if (line === undefined) throw new Error(`no "${word}" line from the child: ${c.running.lines.join(" | ")}`);
  return BigInt(line.slice(word.length + 1));
}

/** Runs a `change` child (put, then delete when asked) and waits for it: its changes are committed. */
async function change(namespace: string, id: string, del = false): Promise<void> {
  const r = await runChild("change", { options: { url: server.url, namespace }, id, delete: del });
  expect(r.code, r.stderr).toBe(0);
}

describe("processes", () => {
  it("ten processes opening a fresh database at once migrate exactly once", async () => {
    const database = `fresh_${Date.now()}`;
    await server.query(`CREATE DATABASE ${database}`);
    const namespace = freshSchema("mig");
    const options = { url: server.urlFor(database), namespace };
    const kids = Array.from({ length: 10 }, () => child({ task: "migrate", options }));
    // The migrations' advisory lock, held here until every child is inside open(): then all ten
    // contend for the first migration at once instead of one after another.
    const lock = new pg.Client(options.url);
    await lock.connect();
    try {
      await Promise.all(kids.map((k) => k.running.until((l) => l.includes("ready"))));
      await lock.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`dgent:migrate:${namespace}`]);
      for (const k of kids) k.send("go", true);
      await Promise.all(kids.map((k) => k.running.until((l) => l.some((x) => x.startsWith("opening ")))));
      await lock.query("SELECT pg_advisory_unlock_all()");
      const codes = await Promise.all(kids.map((k) => k.exited));
      kids.forEach((k, i) => expect(codes[i], `child ${i}: ${k.stderr.join("")}`).toBe(0));
    } finally {
      for (const k of kids) k.kill();
      await lock.end();
    }
    const reports = kids.map((k) => JSON.parse(k.running.lines.find((l) => l.startsWith("{")) ?? "null") as { applied: number[]; version: number; opened: string });
    // Every open began before any ended: the ten really overlapped.
    const lastStart = kids.map((k) => stamp(k, "opening")).reduce((a, b) => (a > b ? a : b));
    const firstEnd = reports.map((r) => BigInt(r.opened)).reduce((a, b) => (a < b ? a : b));
    expect(lastStart < firstEnd, "every open() began before the first one returned").toBe(true);
    const latest = MIGRATIONS.map((m) => m.version);
    expect(reports.every((r) => r.version === latest[latest.length - 1])).toBe(true);
    expect(reports.filter((r) => r.applied.length > 0).map((r) => r.applied)).toEqual([latest]);
    const rows = await server.query<{ version: number; by: number }>(
      `SELECT version, count(DISTINCT applied_by)::int AS by FROM "${namespace}".dgent_migrations GROUP BY version ORDER BY version`,
      [],
      database,
    );
    expect(rows.rows).toEqual(latest.map((version) => ({ version, by: 1 })));
    await server.query(`DROP DATABASE ${database}`);
  });

  it("four processes writing at once (500 datums each while all four write) lose nothing and duplicate nothing", async () => {
    const namespace = schema("writers");
    const options = { url: server.url, namespace };
    const count = 500;
    const kids = [0, 1, 2, 3].map((p) => child({ task: "write", options, prefix: `w${p}/` }));
    try {
      await Promise.all(kids.map((k) => k.running.until((l) => l.includes("ready"))));
      for (const k of kids) k.send("go");
      // They write until each has written `count` datums while all the others were writing.
      const running = kids.map((k) => k.running);
      const acks = ackReader(running);
      await untilAll(running, () => writesWhileAllWrote(acks()).every((n) => n >= count));
      for (const k of kids) k.send("stop", true);
      const codes = await Promise.all(kids.map((k) => k.exited));
      kids.forEach((k, i) => expect(codes[i], `writer ${i}: ${k.stderr.join("")}`).toBe(0));
    } finally {
      for (const k of kids) k.kill();
    }
    const overlap = writesWhileAllWrote(kids.map((k) => ackTimes(k.running.lines)));
    expect(overlap.every((n) => n >= count), `datums each wrote while all were writing: ${overlap.join(", ")}`).toBe(true);
    const written = kids.map((k) => Number(stamp(k, "stopped")));
    const totals = await server.query<{ n: number; distinct_ids: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct_ids FROM "${namespace}".data`,
    );
    const sum = written.reduce((a, b) => a + b, 0);
    expect(totals.rows[0]).toEqual({ n: sum, distinct_ids: sum });
    const a = postgresAdapter({ ...options, listen: false });
    await a.open();
    try {
      for (let p = 0; p < 4; p++) {
        const n = written[p] as number;
        const last = `w${p}/${String(n - 1).padStart(6, "0")}`;
        const chain = await a.causalChain(last, n + 1);
        expect(chain.map((d) => d.metadata.i)).toEqual(Array.from({ length: n }, (_, i) => String(i)));
        expect(Buffer.from(chain[0]?.content ?? []).toString()).toBe(`content of w${p}/000000`);
      }
    } finally {
      await a.close();
    }
  });

  it("LISTEN/NOTIFY: another process's put and delete reach the store's externalChange hook; our own do not", async () => {
    const namespace = schema("notify");
    const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
    const seen: Array<{ event: ChangeEvent; tier: string }> = [];
    store.hooks.externalChange.tap("test", (event, info) => {
      seen.push({ event, tier: info.tier });
    });
    await store.open();
    try {
      // Our own write is not reported back to us.
      await store.put({ id: "mine", content: Buffer.from("x"), createdAt: 1, causalParent: null, metadata: {} });
      await change(namespace, "theirs", true);
      // An end marker: a later commit by another process. Postgres delivers notifications in
      // commit order, so once it is heard, anything earlier (an echo of "mine") would have been.
      await change(namespace, "end-1");
      await until("the end marker", () => seen.some((s) => s.event.id === "end-1"));
      expect(seen.map((s) => [s.event.op, s.event.id, s.tier])).toEqual([
        ["put", "theirs", POSTGRES_DOCKER],
        ["delete", "theirs", POSTGRES_DOCKER],
        ["put", "end-1", POSTGRES_DOCKER],
      ]);
      expect(seen[0]?.event.origin).toMatch(/\/\d+\//);
      expect(seen[0]?.event.origin).not.toBe(ORIGIN);
      // Another namespace's changes are not ours either.
      await change(schema("elsewhere"), "theirs");
      await change(namespace, "end-2");
      await until("the second end marker", () => seen.some((s) => s.event.id === "end-2"));
      expect(seen.map((s) => s.event.id)).toEqual(["theirs", "theirs", "end-1", "end-2"]);
    } finally {
      await store.close();
    }
  });

  it("stores of one process share one listening connection; each hears other processes until it closes", async () => {
    const namespace = schema("shared-listener");
    const heard: Record<string, string[]> = { first: [], second: [] };
    const make = (name: string) => {
      const store = createStore({ tiers: [postgresAdapter({ url: server.url, namespace })] });
      store.hooks.externalChange.tap("test", (event) => {
        heard[name]?.push(event.id);
      });
      return store;
    };
    const first = make("first");
    const second = make("second");
    await Promise.all([first.open(), second.open()]);
    const channel = `dgent:${namespace}.data`;
    const listening = () => poolReport().filter((p) => p.listening.includes(channel));
    expect(listening()).toHaveLength(1);
    expect((await runChild("change", { options: { url: server.url, namespace }, id: "one" })).code).toBe(0);
    await until("both stores to hear it", () => heard.first?.length === 1 && heard.second?.length === 1);
    await first.close();
    expect(listening()).toHaveLength(1);
    expect((await runChild("change", { options: { url: server.url, namespace }, id: "two" })).code).toBe(0);
    await until("the open store to hear it", () => heard.second?.length === 2);
    expect(heard.first).toEqual(["one"]);
    await second.close();
    expect(listening()).toHaveLength(0);
  });
});
