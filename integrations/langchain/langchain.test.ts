/**
 * dgent/integrations/langchain on memory, SQLite, Postgres (a throwaway cluster) and a tier with
 * refs but no transactions (as S3 and GCS are): the chat message history and the key-value store
 * checked against LangChain's own in-memory classes, ordering without trusting clocks, atomic
 * batches, writers racing from two store objects, clear, reopening, and LangChain's
 * `RunnableWithMessageHistory` driving the history as an application would.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemoryChatMessageHistory } from "@langchain/core/chat_history";
import { AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { RunnableLambda, RunnableWithMessageHistory } from "@langchain/core/runnables";
import { InMemoryStore } from "@langchain/core/stores";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Adapter, type Datum, type Store } from "../../compose/index.js";
import { definePlugin } from "../../core/registry.js";
import { startPostgres, freshSchema, type PostgresServer } from "../../test/harness/postgres.js";
import { DgentChatMessageHistory, DgentKVStore, escapeStoreKey, unescapeStoreKey } from "./index.js";
import { loadPeers } from "./peers.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-langchain-"));
const opened: Store[] = [];
let server: PostgresServer | null = null;

beforeAll(async () => {
  server = await startPostgres();
}, 300_000);
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A memory tier with refs but no transactions, as S3 and GCS are. */
function refsWithoutTransactions(inner: Required<Adapter> = memoryAdapter() as Required<Adapter>): Adapter {
  return {
    name: "refs-only",
    rank: inner.rank,
    capabilities: { ...inner.capabilities, transactions: false },
    open: (c) => inner.open(c),
    close: () => inner.close(),
    put: (d) => inner.put(d),
    get: (id) => inner.get(id),
    delete: (id) => inner.delete(id),
    list: (o) => inner.list(o),
    getRef: (n) => inner.getRef(n),
    listRefs: (p) => inner.listRefs(p),
    reflog: (n, l) => inner.reflog(n, l),
    setRef: (n, t, e, m) => inner.setRef(n, t, e, m),
    deleteRef: (n, e, m) => inner.deleteRef(n, e, m),
  };
}

/**
 * Each tier: `open()` makes a store on fresh storage and `twin(store)` a second store object on
 * the same storage (another connection, or for memory a second face of the same store object),
 * so writers through the two race by compare-and-set instead of queueing in-process.
 */
interface Tier {
  open(plugins?: Parameters<typeof createStore>[0]["plugins"]): Store;
  twin(store: Store): Store;
  /** A new store object on the same storage after `close()` (null: the tier does not persist). */
  reopen: ((store: Store) => Store) | null;
}

/** A second face of one store object: same tiers, another identity (so no shared in-process queue). */
function face(store: Store): Store {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A tier whose storage outlives a store object: a second store object is another connection to it. */
function onStorage(makeAdapter: () => () => Adapter): Tier {
  const factories = new WeakMap<Store, () => Adapter>();
  const make = (factory: () => Adapter, plugins: Parameters<typeof createStore>[0]["plugins"] = []): Store => {
    const store = createStore({ tiers: [factory()], plugins });
    factories.set(store, factory);
    opened.push(store);
    return store;
  };
  const again = (store: Store) => make(factories.get(store) as () => Adapter);
  return { open: (plugins) => make(makeAdapter(), plugins), twin: again, reopen: again };
}

/** A tier living in one store object: the twin is a second face of it. */
function inProcess(makeAdapter: () => Adapter): Tier {
  return {
    open: (plugins = []) => {
      const store = createStore({ tiers: [makeAdapter()], plugins });
      opened.push(store);
      return store;
    },
    twin: face,
    reopen: null,
  };
}

const tiers: Record<string, Tier> = {
  memory: inProcess(() => memoryAdapter()),
  sqlite: onStorage(() => {
    const path = join(dir, `lc-${Math.random().toString(36).slice(2)}.db`);
    return () => sqliteAdapter({ path });
  }),
  postgres: onStorage(() => {
    const namespace = freshSchema("lc");
    return () => postgresAdapter({ url: (server as PostgresServer).url, namespace });
  }),
  "refs without transactions": inProcess(() => refsWithoutTransactions()),
};

/** Messages of every kind LangChain stores: tool calls, kwargs, names, roles, content blocks. */
function sampleMessages(tag: string): BaseMessage[] {
  return [
    new SystemMessage(`You are terse (${tag}).`),
    new HumanMessage({ content: "Weather in Lisbon?", name: "ada", id: `h-${tag}` }),
    new AIMessage({ content: "", tool_calls: [{ id: "call-1", name: "weather", args: { city: "Lisbon" }, type: "tool_call" }], additional_kwargs: { reasoning: "look it up" } }),
    new ToolMessage({ content: '{"high_c":24}', tool_call_id: "call-1", name: "weather" }),
    new AIMessage({ content: [{ type: "text", text: "Sunny, 24°C." }], response_metadata: { model: "m-1", tokens: 7 } }),
    new ChatMessage({ content: "noted", role: "critic" }),
  ];
}

/** What LangChain's own in-memory history gives back for `messages` after a store round trip. */
async function asLangChainStores(messages: BaseMessage[]): Promise<unknown[]> {
  const reference = new InMemoryChatMessageHistory();
  await reference.addMessages(messages);
  return (await reference.getMessages()).map((m) => m.toDict());
}
const dicts = (messages: BaseMessage[]) => messages.map((m) => m.toDict());

let sessions = 0;
const session = (label = "s") => `${label}-${++sessions}`;

describe.each(Object.keys(tiers))("DgentChatMessageHistory on %s", (name) => {
  const tier = tiers[name] as Tier;

  it("gives back every kind of message as LangChain's in-memory history does, in order", async () => {
    const store = tier.open();
    const history = new DgentChatMessageHistory({ sessionId: session(), store });
    expect(await history.getMessages()).toEqual([]);
    const messages = sampleMessages(name);
    await history.addMessages(messages.slice(0, 2));
    await history.addMessage(messages[2] as BaseMessage);
    await history.addMessages(messages.slice(3));
    await history.addUserMessage("thanks");
    await history.addAIMessage("any time");
    const got = await history.getMessages();
    expect(got.map((m) => m.constructor.name)).toEqual(["SystemMessage", "HumanMessage", "AIMessage", "ToolMessage", "AIMessage", "ChatMessage", "HumanMessage", "AIMessage"]);
    expect(dicts(got)).toEqual(await asLangChainStores([...messages, new HumanMessage("thanks"), new AIMessage("any time")]));
    expect((got[2] as AIMessage).tool_calls).toEqual([{ id: "call-1", name: "weather", args: { city: "Lisbon" }, type: "tool_call" }]);
  });

  it("keeps the order exact when every message has the same timestamp, and when the clock goes backwards", async () => {
    const store = tier.open();
    const history = new DgentChatMessageHistory({ sessionId: session(), store });
    const now = vi.spyOn(Date, "now");
    try {
      now.mockReturnValue(1_700_000_000_000);
      await history.addMessages(Array.from({ length: 30 }, (_, i) => new HumanMessage(`a${i}`)));
      for (let i = 0; i < 5; i++) await history.addMessage(new AIMessage(`b${i}`));
      now.mockReturnValue(1_600_000_000_000); // an hour-scale step back: NTP, another host
      await history.addMessages([new HumanMessage("c0"), new HumanMessage("c1")]);
    } finally {
      now.mockRestore();
    }
    await history.addMessage(new AIMessage("d0"));
    const expected = [...Array.from({ length: 30 }, (_, i) => `a${i}`), ...Array.from({ length: 5 }, (_, i) => `b${i}`), "c0", "c1", "d0"];
    expect((await history.getMessages()).map((m) => m.content)).toEqual(expected);
    // The store's own order agrees (createdAt never goes back along the log).
    const page = await store.query({ prefix: `langchain/history/${history.sessionId}/item/`, order: "oldest", limit: 100 });
    const created = page.items.map((d) => d.createdAt);
    expect(created).toEqual([...created].sort((a, b) => a - b));
    // Each message's causal parent is the one before it.
    expect(page.items.map((d) => d.causalParent)).toEqual([null, ...page.items.slice(0, -1).map((d) => d.id)]);
  });

  it("keeps sessions apart, even ids that look like another's escape", async () => {
    const store = tier.open();
    const a = new DgentChatMessageHistory({ sessionId: "a/b", store });
    const b = new DgentChatMessageHistory({ sessionId: "a%2Fb", store });
    const c = new DgentChatMessageHistory({ sessionId: "a", store });
    await a.addMessage(new HumanMessage("in a/b"));
    await b.addMessage(new HumanMessage("in a%2Fb"));
    await c.addMessage(new HumanMessage("in a"));
    expect((await a.getMessages()).map((m) => m.content)).toEqual(["in a/b"]);
    expect((await b.getMessages()).map((m) => m.content)).toEqual(["in a%2Fb"]);
    expect((await c.getMessages()).map((m) => m.content)).toEqual(["in a"]);
    await a.clear();
    expect(await a.getMessages()).toEqual([]);
    expect((await b.getMessages()).map((m) => m.content)).toEqual(["in a%2Fb"]);
    expect((await c.getMessages()).map((m) => m.content)).toEqual(["in a"]);
  });

  it("clear deletes the session's messages and head; the session starts again after it", async () => {
    const store = tier.open();
    const sessionId = session();
    const history = new DgentChatMessageHistory({ sessionId, store });
    await history.addMessages(sampleMessages("x"));
    await history.clear();
    expect(await history.getMessages()).toEqual([]);
    expect(await store.count({ prefix: `langchain/history/${sessionId}/` })).toBe(0);
    expect(await store.refs.get(`langchain/history/${sessionId}/head`)).toBeNull();
    await history.clear(); // clearing an empty session is fine
    await history.addMessage(new HumanMessage("again"));
    expect((await history.getMessages()).map((m) => m.content)).toEqual(["again"]);
  });

  it("adds a batch all or nothing: a put refused midway leaves the history as it was", async () => {
    const refuse = definePlugin({
      name: "refuse-boom",
      apply(api) {
        api.hooks.beforePut.tap({ name: "refuse-boom" }, (d: Datum) => {
          if (Buffer.from(d.content).toString("utf8").includes("BOOM")) throw new Error("refused by a plugin");
          return d;
        });
      },
    });
    const store = tier.open([{ plugin: refuse, options: {} }]);
    const history = new DgentChatMessageHistory({ sessionId: session(), store });
    await history.addMessages([new HumanMessage("one"), new AIMessage("two")]);
    const head = await store.refs.get(`langchain/history/${history.sessionId}/head`);
    await expect(history.addMessages([new HumanMessage("three"), new AIMessage("BOOM"), new HumanMessage("four")])).rejects.toThrow(/refused by a plugin/);
    expect((await history.getMessages()).map((m) => m.content)).toEqual(["one", "two"]);
    expect(await store.refs.get(`langchain/history/${history.sessionId}/head`)).toEqual(head);
  });

  it("two writers on two store objects: batches never interleave and nothing is lost", async () => {
    const store = tier.open();
    const other = tier.twin(store);
    const sessionId = session("race");
    const writers = [new DgentChatMessageHistory({ sessionId, store, retry: { attempts: 500 } }), new DgentChatMessageHistory({ sessionId, store: other, retry: { attempts: 500 } })];
    const batches = 12;
    await Promise.all(
      writers.map((w, wi) =>
        Promise.all(Array.from({ length: batches }, (_, b) => w.addMessages([0, 1, 2].map((k) => new HumanMessage(`w${wi}-b${b}-${k}`)))))),
    );
    const got = (await writers[0]!.getMessages()).map((m) => String(m.content));
    expect(got).toHaveLength(2 * batches * 3);
    expect(new Set(got).size).toBe(got.length);
    for (let i = 0; i < got.length; i += 3) {
      const [w, b] = (got[i] as string).split("-");
      expect(got.slice(i, i + 3)).toEqual([0, 1, 2].map((k) => `${w}-${b}-${k}`));
    }
    // The other store object reads the same list.
    expect((await writers[1]!.getMessages()).map((m) => String(m.content))).toEqual(got);
  });

  if (tier.reopen !== null) it("finds the history again after the store is closed and reopened", async () => {
    const store = tier.open();
    const sessionId = session();
    const messages = sampleMessages("persist");
    await new DgentChatMessageHistory({ sessionId, store }).addMessages(messages);
    await store.close();
    const again = (tier.reopen as (s: Store) => Store)(store);
    const history = new DgentChatMessageHistory({ sessionId, store: again });
    expect(dicts(await history.getMessages())).toEqual(await asLangChainStores(messages));
    await history.addMessage(new HumanMessage("after restart"));
    expect((await history.getMessages()).at(-1)?.content).toBe("after restart");
  });

  it("serves RunnableWithMessageHistory: each call sees the history before it and is recorded", async () => {
    const store = tier.open();
    const seen: string[][] = [];
    const model = RunnableLambda.from((messages: BaseMessage[]) => {
      seen.push(messages.map((m) => String(m.content)));
      return new AIMessage(`reply ${seen.length}`);
    });
    const histories = new Map<string, DgentChatMessageHistory>();
    const chain = new RunnableWithMessageHistory({
      runnable: model,
      getMessageHistory: (sessionId: string) => {
        if (!histories.has(sessionId)) histories.set(sessionId, new DgentChatMessageHistory({ sessionId, store }));
        return histories.get(sessionId) as DgentChatMessageHistory;
      },
    });
    const sessionId = session("chain");
    const config = { configurable: { sessionId } };
    expect((await chain.invoke([new HumanMessage("hi")], config)).content).toBe("reply 1");
    expect((await chain.invoke([new HumanMessage("again")], config)).content).toBe("reply 2");
    expect(seen).toEqual([["hi"], ["hi", "reply 1", "again"]]);
    const fresh = new DgentChatMessageHistory({ sessionId, store: tier.twin(store) });
    expect((await fresh.getMessages()).map((m) => m.content)).toEqual(["hi", "reply 1", "again", "reply 2"]);
  });
});

/** The cases of LangChain's standard key-value store suite (langchain-tests `BaseStoreAsyncTests`), and more. */
describe.each(Object.keys(tiers))("DgentKVStore on %s", (name) => {
  const tier = tiers[name] as Tier;
  const enc = (s: string) => new TextEncoder().encode(s);
  const [foo, bar, buzz] = [enc("foo-value"), enc("bar-value"), enc("buzz-value")];
  let prefixes = 0;
  const kv = (store: Store) => new DgentKVStore({ store, keyPrefix: `kv-${++prefixes}/` });
  const keys = async (s: DgentKVStore, prefix?: string) => {
    const out: string[] = [];
    for await (const k of s.yieldKeys(prefix)) out.push(k);
    return out.sort();
  };
  const bytes = (values: (Uint8Array | undefined)[]) => values.map((v) => (v === undefined ? undefined : Buffer.from(v).toString("utf8")));

  it("standard cases: empty, set and get, delete, bulk delete, missing keys, idempotent set, repeated get, overwrite, yield keys", async () => {
    const store = tier.open();
    let s = kv(store);
    expect(await s.mget(["foo", "bar", "buzz"])).toEqual([undefined, undefined, undefined]);
    await s.mset([["foo", foo], ["bar", bar]]);
    expect(bytes(await s.mget(["foo", "bar"]))).toEqual(["foo-value", "bar-value"]);

    s = kv(store); // store still empty under a new prefix
    expect(await s.mget(["foo"])).toEqual([undefined]);

    await s.mset([["foo", foo], ["bar", bar]]);
    await s.mdelete(["foo"]);
    expect(bytes(await s.mget(["foo", "bar"]))).toEqual([undefined, "bar-value"]);

    s = kv(store);
    await s.mset([["foo", foo], ["bar", bar], ["buz", buzz]]);
    await s.mdelete(["foo", "buz"]);
    expect(bytes(await s.mget(["foo", "bar", "buz"]))).toEqual([undefined, "bar-value", undefined]);

    s = kv(store);
    await s.mdelete(["foo"]);
    await s.mdelete(["foo", "bar", "baz"]);

    await s.mset([["foo", foo], ["bar", bar]]);
    await s.mset([["foo", foo], ["bar", bar]]);
    expect(bytes(await s.mget(["foo", "bar"]))).toEqual(["foo-value", "bar-value"]);
    expect(await keys(s)).toEqual(["bar", "foo"]);
    expect(bytes(await s.mget(["foo", "bar", "foo", "bar"]))).toEqual(["foo-value", "bar-value", "foo-value", "bar-value"]);

    await s.mset([["foo", buzz]]);
    expect(bytes(await s.mget(["foo", "bar"]))).toEqual(["buzz-value", "bar-value"]);

    expect(await keys(s)).toEqual(["bar", "foo"]);
    expect(await keys(s, "foo")).toEqual(["foo"]);
    expect(await keys(s, "nothing")).toEqual([]);
  });

  it("keys of any shape: slashes, percent signs, control characters, emoji, lone surrogates; prefixes match as strings do", async () => {
    const s = kv(tier.open());
    const odd = ["a/b", "a%2Fb", "a%2fb", "%25", "100%ab", "%u0041", "a%", "tab\there", "nl\n", "\u0000zero", "😀", "😀x", "\ud83d", "\ude00 low", "user:1:name", "user:10:name", "é"];
    await s.mset(odd.map((k, i) => [k, enc(`v${i}`)]));
    expect(bytes(await s.mget(odd))).toEqual(odd.map((_, i) => `v${i}`));
    expect(await keys(s)).toEqual([...odd].sort());
    for (const p of ["a", "a%", "a/", "user:1", "user:1:", "😀", "\ud83d", "\u0000", ""]) {
      expect(await keys(s, p)).toEqual(odd.filter((k) => k.startsWith(p)).sort());
    }
    for (const k of odd) expect(unescapeStoreKey(escapeStoreKey(k))).toBe(k);
  });

  it("mset is all or nothing, and the last value given for a key wins", async () => {
    const refuse = definePlugin({
      name: "refuse-boom",
      apply(api) {
        api.hooks.beforePut.tap({ name: "refuse-boom" }, (d: Datum) => {
          if (Buffer.from(d.content).toString("utf8") === "BOOM") throw new Error("refused by a plugin");
          return d;
        });
      },
    });
    const s = kv(tier.open([{ plugin: refuse, options: {} }]));
    await s.mset([["a", enc("1")], ["b", enc("2")], ["a", enc("3")]]);
    expect(bytes(await s.mget(["a", "b"]))).toEqual(["3", "2"]);
    const attempt = s.mset([["a", enc("changed")], ["c", enc("BOOM")], ["b", enc("changed")]]);
    await expect(attempt).rejects.toThrow(/refused by a plugin/);
    if (name !== "refs without transactions") {
      expect(bytes(await s.mget(["a", "b", "c"]))).toEqual(["3", "2", undefined]);
    }
  });

  it("does what LangChain's InMemoryStore does, for random sequences of mset, mdelete, mget and yieldKeys", async () => {
    const store = tier.open();
    const keyArb = fc.constantFrom("k1", "k2", "k/3", "k%4", "x", "xy", "");
    const op = fc.oneof(
      fc.record({ op: fc.constant("mset" as const), pairs: fc.array(fc.tuple(keyArb, fc.string({ maxLength: 4 })), { maxLength: 4 }) }),
      fc.record({ op: fc.constant("mdelete" as const), keys: fc.array(keyArb, { maxLength: 3 }) }),
      fc.record({ op: fc.constant("mget" as const), keys: fc.array(keyArb, { maxLength: 4 }) }),
      fc.record({ op: fc.constant("keys" as const), prefix: fc.constantFrom(undefined, "k", "x", "k/", "") }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        const s = kv(store);
        const reference = new InMemoryStore<string>();
        for (const o of ops) {
          const pairs = o.op === "mset" ? o.pairs.filter(([k]) => k !== "") : [];
          if (o.op === "mset") {
            await s.mset(pairs.map(([k, v]) => [k, enc(v)]));
            await reference.mset(pairs);
          } else if (o.op === "mdelete") {
            const ks = o.keys.filter((k) => k !== "");
            await s.mdelete(ks);
            await reference.mdelete(ks);
          } else if (o.op === "mget") {
            const ks = o.keys.filter((k) => k !== "");
            expect(bytes(await s.mget(ks))).toEqual(await reference.mget(ks));
          } else {
            const expected: string[] = [];
            for await (const k of reference.yieldKeys(o.prefix)) expected.push(k);
            expect(await keys(s, o.prefix)).toEqual(expected.sort());
          }
        }
      }),
      { numRuns: name === "memory" ? 100 : 15 },
    );
  });
});

describe("beyond one page", () => {
  it("a history of 10 050 messages (two pages of the log) comes back whole and in order", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    opened.push(store);
    const history = new DgentChatMessageHistory({ sessionId: "long", store });
    const n = 10_050;
    await history.addMessages(Array.from({ length: n - 50 }, (_, i) => new HumanMessage(`m${i}`)));
    await history.addMessages(Array.from({ length: 50 }, (_, i) => new HumanMessage(`m${n - 50 + i}`)));
    const got = await history.getMessages();
    expect(got).toHaveLength(n);
    expect(got.every((m, i) => m.content === `m${i}`)).toBe(true);
  });

  it("mget of 10 050 keys (two getMany calls) and yieldKeys over 11 pages", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    opened.push(store);
    const s = new DgentKVStore({ store });
    const ks = Array.from({ length: 10_050 }, (_, i) => `key-${String(i).padStart(5, "0")}`);
    await s.mset(ks.map((k) => [k, new TextEncoder().encode(k)]));
    const got = await s.mget(ks);
    expect(got).toHaveLength(ks.length);
    expect(got.every((v, i) => v !== undefined && Buffer.from(v).toString() === ks[i])).toBe(true);
    let n = 0;
    for await (const k of s.yieldKeys("key-1")) if (k.startsWith("key-1")) n++;
    expect(n).toBe(ks.filter((k) => k.startsWith("key-1")).length);
  });
});

describe("opening a store from a URL, and the peer", () => {
  it("fromUrl(sqlite:///…) opens that file; close() closes what it opened; another history finds the messages", async () => {
    const url = `sqlite://${join(dir, "from-url.db")}`;
    const history = await DgentChatMessageHistory.fromUrl(url, { sessionId: "u1" });
    await history.addMessages([new HumanMessage("kept in a file")]);
    const store = await history.store();
    await history.close();
    await expect(store.get("x")).rejects.toMatchObject({ code: "DGENT_CLOSED" });
    const again = new DgentChatMessageHistory({ sessionId: "u1", url });
    expect((await again.getMessages()).map((m) => m.content)).toEqual(["kept in a file"]);
    await again.close();
    const kv = await DgentKVStore.fromUrl(url, { keyPrefix: "cache/" });
    await kv.mset([["a", new Uint8Array([1, 2, 3])]]);
    await kv.close();
    const kv2 = new DgentKVStore({ url, keyPrefix: "cache/" });
    expect(await kv2.mget(["a"])).toEqual([new Uint8Array([1, 2, 3])]);
    await kv2.close();
  });

  it("a store you pass stays open after close(); bad options are refused when made", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    opened.push(store);
    const history = new DgentChatMessageHistory({ sessionId: "mine", store });
    await history.addMessage(new HumanMessage("x"));
    await history.close();
    expect(await store.count({})).toBe(1);
    expect(() => new DgentChatMessageHistory({ sessionId: "", store })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => new DgentKVStore({ store, url: "memory:" })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => new DgentKVStore({ store: {} as Store })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });

  it("a missing @langchain/core is DGENT_MISSING_DEPENDENCY naming the package; other load failures pass through", async () => {
    const notFound = Object.assign(new Error("Cannot find package '@langchain/core' imported from /x/dist/integrations/langchain/peers.js"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(loadPeers(() => Promise.reject(notFound))).rejects.toMatchObject({
      code: "DGENT_MISSING_DEPENDENCY",
      details: { package: "@langchain/core" },
      message: expect.stringContaining("npm install @langchain/core"),
    });
    const broken = new SyntaxError("Unexpected token");
    await expect(loadPeers(() => Promise.reject(broken))).rejects.toBe(broken);
    const otherMissing = Object.assign(new Error("Cannot find package 'zod' imported from /x/node_modules/@langchain/core/dist/x.js"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(loadPeers(() => Promise.reject(otherMissing))).rejects.toBe(otherMissing);
  });
});
