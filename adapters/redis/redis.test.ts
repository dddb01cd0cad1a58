import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "redis";
import { defaultRegistry } from "../../compose/catalogue.js";
import { compareNewestFirst } from "../../core/order.js";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { ChangeEvent } from "../../core/protocol.js";
import { createStore } from "../../core/store.js";
import { sqliteAdapter } from "../sqlite/index.js";
import { assertBuilt, REDIS_CHILD_FIXTURE, startRedis, type RedisServer } from "../../test/harness/redis.js";
import { putScript, redisAdapter, SCRIPTS } from "./index.js";

// Two throwaway servers: one that keeps nothing on disk, one with an append-only file.
let volatile: RedisServer;
let durable: RedisServer;
beforeAll(async () => {
  assertBuilt();
  [volatile, durable] = await Promise.all([startRedis(), startRedis({ persistence: true })]);
});
afterAll(async () => {
  await Promise.all([volatile?.close(), durable?.close()]);
});

let n = 0;
const fresh = (label: string) => `${label}-${process.pid}-${n++}`;

interface Raw {
  sendCommand<T = unknown>(args: string[]): Promise<T>;
}

/** A plain client on the server, for looking at what the tier wrote. */
async function raw<T>(url: string, fn: (c: Raw) => Promise<T>): Promise<T> {
  const c = createClient({ url, RESP: 2 });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

function runChild(task: string, args: Record<string, unknown>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [REDIS_CHILD_FIXTURE.pathname, task, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("error", reject);
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("persistence is read from the server", () => {
  it("a server that keeps nothing on disk is not persistent; one with an append-only file is", async () => {
    const a = redisAdapter({ url: volatile.url, namespace: fresh("p") });
    const b = redisAdapter({ url: durable.url, namespace: fresh("p") });
    expect(a.capabilities.persistent).toBe(false); // before open: not known, so not claimed
    await Promise.all([a.open(), b.open()]);
    expect([a.persistence, a.capabilities.persistent]).toEqual(["none", false]);
    expect([b.persistence, b.capabilities.persistent]).toEqual(["aof", true]);
    expect(a.capabilities.multiProcess && b.capabilities.multiProcess).toBe(true);
    // RDB snapshots alone also count as keeping data.
    await raw(volatile.url, (c) => c.sendCommand(["CONFIG", "SET", "save", "3600 1"]));
    const c = redisAdapter({ url: volatile.url, namespace: fresh("p") });
    await c.open();
    await raw(volatile.url, (x) => x.sendCommand(["CONFIG", "SET", "save", ""]));
    expect([c.persistence, c.capabilities.persistent]).toEqual(["rdb", true]);
    // The option overrides what the server says.
    const d = redisAdapter({ url: volatile.url, namespace: fresh("p"), persistent: true });
    await d.open();
    expect(d.capabilities.persistent).toBe(true);
    await Promise.all([a.close(), b.close(), c.close(), d.close()]);
  });

  it("a store landing on a Redis without persistence reports itself volatile, warns, and moves what Redis holds to a durable tier at close", async () => {
    const warnings: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "dgent-redis-volatile-"));
    const namespace = fresh("v");
    const store = createStore({ tiers: [redisAdapter({ url: volatile.url, namespace }), sqliteAdapter({ path: join(dir, "v.db") })], upgrader: false });
    store.hooks.warning.tap("test", (info) => void warnings.push(info.message));
    await store.open();
    const report = await store.backend();
    expect([report.landing, report.volatile]).toEqual(["redis", true]);
    expect(warnings.some((w) => w.includes('volatile tier "redis"')), warnings.join("\n")).toBe(true);
    await store.put(makeDatum({ id: "session/1", content: "state" }));
    await store.close();
    const below = sqliteAdapter({ path: join(dir, "v.db") });
    await below.open();
    expect((await below.get("session/1"))?.id).toBe("session/1");
    await below.close();
    rmSync(dir, { recursive: true, force: true });

    const kept = createStore({ tiers: [redisAdapter({ url: durable.url, namespace: fresh("v") })] });
    await kept.open();
    expect((await kept.backend()).volatile).toBe(false);
    await kept.close();
  });
});

describe("change events over pub/sub", () => {
  it("another process's put and delete reach the externalChange hook; this process's own do not", async () => {
    const namespace = fresh("changes");
    const store = createStore({ tiers: [redisAdapter({ url: durable.url, namespace })] });
    const changes: ChangeEvent[] = [];
    let heard!: () => void;
    const bothHeard = new Promise<void>((resolve) => (heard = resolve));
    store.hooks.externalChange.tap("test", (event) => {
      changes.push(event);
      if (changes.length === 2) heard();
    });
    await store.open();
    await store.put(makeDatum({ id: "mine", content: "x" }));
    await store.delete("mine");
    const r = await runChild("change", { options: { url: durable.url, namespace }, id: "theirs", delete: true });
    expect(r.code, r.stderr).toBe(0);
    await bothHeard;
    expect(changes.map((c) => [c.op, c.id])).toEqual([
      ["put", "theirs"],
      ["delete", "theirs"],
    ]);
    expect(changes[0]?.origin).toMatch(/\/\d+\//);
    await store.close();
  });

  it("a change is published only while someone outside this process listens: a subscriber of the channel or of a pattern", async () => {
    const server = await startRedis(); // its own server: the publish count below is the server's
    const namespace = fresh("alone");
    const channel = `dgent:{${namespace}}:changes`;
    const store = createStore({ tiers: [redisAdapter({ url: server.url, namespace })] });
    const publishes = () =>
      raw(server.url, async (c) => Number(/cmdstat_publish:calls=(\d+)/.exec(await c.sendCommand<string>(["INFO", "commandstats"]))?.[1] ?? 0));
    const other = createClient({ url: server.url, RESP: 2 });
    other.on("error", () => undefined);
    try {
      await store.open();
      // Alone (our own listener is the channel's only subscriber): put, putMany, delete publish nothing.
      await store.put(makeDatum({ id: "a", content: "1" }));
      await store.putMany([makeDatum({ id: "b", content: "2" }), makeDatum({ id: "c", content: "3" })]);
      await store.delete("a");
      expect(await publishes()).toBe(0);
      // Another connection subscribed to the channel hears every change.
      await other.connect();
      const heard: string[] = [];
      let got!: () => void;
      let wanted = 3;
      let done = new Promise<void>((resolve) => (got = resolve));
      const listener = (message: string) => {
        heard.push(message.slice(message.indexOf("\t") + 1));
        if (heard.length === wanted) got();
      };
      await other.subscribe(channel, listener);
      await store.put(makeDatum({ id: "d", content: "4" }));
      await store.putMany([makeDatum({ id: "e", content: "5" })]);
      await store.delete("b");
      await done;
      expect(heard).toEqual(["d", "e", "b"]);
      // A pattern subscription (PUBSUB NUMSUB does not count those) hears them too.
      await other.unsubscribe(channel);
      wanted = 5;
      done = new Promise<void>((resolve) => (got = resolve));
      await other.pSubscribe("dgent:{*}:changes", listener);
      await store.put(makeDatum({ id: "f", content: "6" }));
      await store.delete("c");
      await done;
      expect(heard.slice(3)).toEqual(["f", "c"]);
      expect(await publishes()).toBe(5);
      await other.pUnsubscribe("dgent:{*}:changes");
      // A writer that listens too (another origin: its listener on the channel and its own one):
      // its put reaches our store's listener, and stops being published once ours is gone.
      const origin = "elsewhere/1/cafe";
      const script = putScript(`dgent:{${namespace}}:`, channel, origin, true);
      const theirs = new Promise<ChangeEvent>((resolve) => store.hooks.externalChange.tap("theirs", (event) => resolve(event)));
      await other.subscribe([channel, `${channel}:${origin}`], () => undefined);
      const put = (id: string) => raw(server.url, (c) => c.sendCommand<number>(["EVAL", script.source, "1", `dgent:{${namespace}}:d:${id}`, "7\t\t{}\nx"]));
      expect(await put("g")).toBe(1);
      expect(await theirs).toMatchObject({ op: "put", id: "g", origin });
      expect(await publishes()).toBe(6);
      await store.close();
      expect(await put("h")).toBe(1);
      expect(await publishes()).toBe(6);
    } finally {
      await other.close().catch(() => undefined);
      await store.close();
      await server.close();
    }
  });
});

describe("refs across processes", () => {
  it("three processes incrementing one counter ref by compare-and-set lose no increment", async () => {
    const namespace = fresh("counter");
    const times = 20;
    const children = [0, 1, 2].map(() => {
      const p = spawn(process.execPath, [REDIS_CHILD_FIXTURE.pathname, "count", JSON.stringify({ options: { url: durable.url, namespace }, name: "counter", times })], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      const state = { stdout: "", stderr: "" };
      p.stdout?.on("data", (c: Buffer) => (state.stdout += c.toString()));
      p.stderr?.on("data", (c: Buffer) => (state.stderr += c.toString()));
      const ready = new Promise<void>((resolve, reject) => {
        p.stdout?.on("data", () => state.stdout.startsWith("ready\n") && resolve());
        p.on("exit", () => reject(new Error(`a child exited before it was ready: ${state.stderr}`)));
      });
      const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
      return { p, state, ready, exited };
    });
    await Promise.all(children.map((c) => c.ready)); // every process has opened its store
    for (const c of children) c.p.stdin?.end("go\n"); // then all start at once
    const codes = await Promise.all(children.map((c) => c.exited));
    children.forEach((c, k) => expect(codes[k], c.state.stderr).toBe(0));
    const store = createStore({ tiers: [redisAdapter({ url: durable.url, namespace })] });
    await store.open();
    const ref = await store.refs.get("counter");
    expect(ref?.version).toBe(3 * times);
    expect(Buffer.from((await store.get(ref?.target as string))?.content ?? []).toString()).toBe(String(3 * times));
    const log = await store.refs.log("counter");
    expect(log.map((e) => e.version)).toEqual(Array.from({ length: 3 * times }, (_, k) => 3 * times - k));
    for (let k = 0; k + 1 < log.length; k++) expect(log[k]?.from).toBe(log[k + 1]?.to); // one unbroken line of moves
    await store.close();
  });
});

describe("putMany", () => {
  it("a batch larger than the script's chunks of 500 is written whole (count, bytes, both indexes), and a conflict past the first chunk writes nothing", async () => {
    const adapter = redisAdapter({ url: volatile.url, namespace: fresh("many") });
    await adapter.open();
    const batch = Array.from({ length: 1_201 }, (_, i) => makeDatum({ id: `m/${String(i).padStart(4, "0")}`, content: `v${i}`, createdAt: 10_000 + i }));
    await adapter.putMany(batch);
    const bytes = batch.reduce((sum, d) => sum + d.content.byteLength, 0);
    expect(await adapter.stats()).toMatchObject({ count: 1_201, bytes });
    expect((await adapter.list({ prefix: "", after: -1, limit: 3 })).map((d) => d.id)).toEqual(["m/1200", "m/1199", "m/1198"]);
    expect((await adapter.list({ prefix: "m/000", after: -1, limit: 20 })).map((d) => d.id)).toEqual(["m/0009", "m/0008", "m/0007", "m/0006", "m/0005", "m/0004", "m/0003", "m/0002", "m/0001", "m/0000"]);
    const again = [...Array.from({ length: 700 }, (_, i) => makeDatum({ id: `n/${i}`, content: "x" })), makeDatum({ id: "m/0600", content: "changed" })];
    await expect(adapter.putMany(again)).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(await adapter.get("n/0")).toBeNull();
    expect(await adapter.stats()).toMatchObject({ count: 1_201, bytes });
    await adapter.close();
  });
});

describe("list", () => {
  it("prefix ranges agree with a model on both paths (a small prefix through the lexicographic index, a large one by walking the time index), with ties, after and limit", async () => {
    const adapter = redisAdapter({ url: volatile.url, namespace: fresh("list") });
    await adapter.open();
    const all: Datum[] = [];
    // 12 ids under "few/", 400 under "many/", createdAt from 5 values so ties are everywhere.
    for (let i = 0; i < 412; i++) {
      const id = i < 12 ? `few/${(i * 7919) % 97}-é${i}` : `many/${String((i * 31) % 400).padStart(3, "0")}-${i}`;
      all.push(makeDatum({ id, content: `c${i}`, createdAt: 1_000 + (i % 5) }));
    }
    await adapter.putMany(all);
    const model = (prefix: string, after: number, limit: number) =>
      all.filter((d) => d.id.startsWith(prefix) && d.createdAt > after).sort(compareNewestFirst).slice(0, limit).map((d) => d.id);
    for (const prefix of ["few/", "many/", "many/1", "", "nothing/", "few/2"]) {
      for (const [after, limit] of [[-1, 100], [1_001, 3], [1_002, 1_000], [-1, 1], [1_004, 10]] as const) {
        const got = await adapter.list({ prefix, after, limit });
        expect(got.map((d) => d.id), `${prefix} after ${after} limit ${limit}`).toEqual(model(prefix, after, limit));
      }
    }
    // The scratch key exists only inside a script run.
    expect(await raw(volatile.url, (c) => c.sendCommand(["EXISTS", `${adapter.prefix}s`]))).toBe(0);
    await adapter.close();
  });
});

describe("scripts and keys", () => {
  it("after SCRIPT FLUSH (or a restart) the scripts are loaded again on the first NOSCRIPT", async () => {
    const adapter = redisAdapter({ url: volatile.url, namespace: fresh("flush") });
    await adapter.open();
    await raw(volatile.url, (c) => c.sendCommand(["SCRIPT", "FLUSH"]));
    const exists = await raw(volatile.url, (c) => c.sendCommand(["SCRIPT", "EXISTS", SCRIPTS.list.sha]));
    expect(exists).toEqual([0]);
    await adapter.put(makeDatum({ id: "a", content: "1" }));
    expect((await adapter.list({ prefix: "", after: -1, limit: 10 })).map((d) => d.id)).toEqual(["a"]);
    await adapter.close();
  });

  it("the put script writes its namespace, channel and origin into the Lua source as literals, whatever bytes they hold", async () => {
    const prefix = `dgent:{${fresh("lit.x_y")}}:`;
    const origin = "host'1\"\\]]\n\t2ü/1/ab"; // quotes, a backslash, a long-bracket close, LF, TAB, non-ASCII, digits after escaped bytes
    const announcing = putScript(prefix, `${prefix}changes`, origin);
    const silent = putScript(prefix, "", origin);
    expect(announcing.sha).not.toBe(silent.sha);
    expect(silent.source).not.toContain("PUBLISH");
    // A listening process's script asks first whether anyone else listens (its own listener also subscribes to `<channel>:<origin>`).
    expect(putScript(prefix, `${prefix}changes`, origin, true).source).toContain("'PUBSUB', 'NUMSUB'");
    expect(announcing.source).not.toContain("PUBSUB");
    const heard: string[] = [];
    const sub = createClient({ url: volatile.url, RESP: 2 });
    sub.on("error", () => undefined);
    await sub.connect();
    await sub.subscribe(`${prefix}changes`, (message) => void heard.push(message));
    try {
      await raw(volatile.url, async (c) => {
        const put = (script: typeof announcing, id: string, value: string) => c.sendCommand<number>(["EVAL", script.source, "1", `${prefix}d:${id}`, value]);
        expect(await put(announcing, "a/1", "7\t\t{}\nhello")).toBe(1);
        expect(await put(announcing, "a/1", "9\t\t{}\nhello")).toBe(0); // the same value (createdAt is not compared)
        expect(await put(announcing, "a/1", "7\t\t{}\nother")).toBe(-1);
        expect(await put(silent, "a/2", "8\tp\t{}\nhi")).toBe(1);
        expect(await c.sendCommand(["GET", `${prefix}d:a/1`])).toBe("7\t\t{}\nhello");
        expect(await c.sendCommand(["ZRANGE", `${prefix}t`, "0", "-1", "WITHSCORES"])).toEqual(["a/1", "7", "a/2", "8"]);
        expect(await c.sendCommand(["ZRANGE", `${prefix}i`, "0", "-1"])).toEqual(["a/1", "a/2"]);
        expect(await c.sendCommand(["GET", `${prefix}b`])).toBe("7");
      });
      for (let i = 0; i < 200 && heard.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(heard).toEqual([`p${origin}\ta/1`]);
    } finally {
      await sub.close();
    }
  });

  it("the key layout is the documented one", async () => {
    const namespace = fresh("layout");
    const store = createStore({ tiers: [redisAdapter({ url: volatile.url, namespace })] });
    await store.open();
    await store.put(makeDatum({ id: "thread/1", content: "hello", createdAt: 5 }));
    await store.refs.set("head", "thread/1");
    const keys = await raw(volatile.url, (c) => c.sendCommand<string[]>(["KEYS", `dgent:{${namespace}}:*`]));
    const p = `dgent:{${namespace}}:`;
    expect(keys.sort()).toEqual([`${p}R`, `${p}b`, `${p}d:thread/1`, `${p}i`, `${p}l:head`, `${p}r:head`, `${p}t`].sort());
    await raw(volatile.url, async (c) => {
      expect(await c.sendCommand(["GET", `${p}d:thread/1`])).toBe('5\t\t{}\nhello');
      expect(await c.sendCommand(["ZSCORE", `${p}t`, "thread/1"])).toBe("5");
      expect(await c.sendCommand(["GET", `${p}b`])).toBe("5");
      expect(await c.sendCommand(["HGETALL", `${p}r:head`])).toEqual(["t", "thread/1", "v", "1", "u", expect.any(String)]);
    });
    await store.close();
  });

  it("redis:// and rediss:// URLs choose the redis tier", async () => {
    for (const url of ["redis://127.0.0.1:6390/0", "rediss://cache.example:6380"]) {
      const choice = await defaultRegistry.adapterForUrl(url, { namespace: "n1", purpose: "store" });
      expect([choice.definition.name, choice.options]).toEqual(["redis", { url, namespace: "n1" }]);
    }
  });
});

describe("TLS", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ tls: true });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("rediss:// with the server's CA works; without it the certificate is refused (a permanent error, not an outage)", async () => {
    const ok = redisAdapter({ url: server.url, namespace: fresh("tls"), tls: { ca: server.certificate as string } });
    await ok.open();
    await ok.put(makeDatum({ id: "secret", content: "over TLS" }));
    expect(Buffer.from((await ok.get("secret"))?.content ?? []).toString()).toBe("over TLS");
    expect(await ok.probe()).toBe(true);
    await ok.close();
    const refused = redisAdapter({ url: server.url, namespace: fresh("tls"), connectTimeoutMs: 2_000 });
    const error = await refused.open().then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: "DGENT_BACKEND_ERROR", retryable: false, unit: "redis" });
  });
});
