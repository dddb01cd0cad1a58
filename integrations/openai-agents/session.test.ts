/**
 * dgent/integrations/openai-agents on memory, SQLite, Postgres (a throwaway cluster) and a tier
 * with refs but no transactions (as S3 and GCS are): the Session checked against the SDK's own
 * `MemorySession` (random operation sequences, and real `Runner` runs on a scripted model —
 * tools, output guardrails, history transactions), the last N items, atomic pops and appends
 * racing from two store objects, the optional capabilities, and reopening.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, MemorySession, OutputGuardrailTripwireTriggered, Runner, tool, type AgentInputItem, type Session } from "@openai/agents-core";
import { assistantMessage, functionCall, ScriptedModel } from "@openai/agents-core/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, type Adapter, type Datum, type Store } from "../../compose/index.js";
import { definePlugin } from "../../core/registry.js";
import { decodeDatum, builtInCodecs } from "../../patterns/codec/codec.js";
import { freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { DgentSession, ITEM_CODEC_NAME, itemCodec } from "./index.js";
import { loadPeers } from "./peers.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-agents-"));
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
function refsWithoutTransactions(): Adapter {
  const inner = memoryAdapter() as Required<Adapter>;
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

type Plugins = Parameters<typeof createStore>[0]["plugins"];
/** `open()`: a store on fresh storage; `twin(store)`: another store object on the same storage (writers race by CAS). */
interface Tier {
  open(plugins?: Plugins): Store;
  twin(store: Store): Store;
  reopen: ((store: Store) => Store) | null;
  transactions: boolean;
  runs: number;
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
function onStorage(makeAdapter: () => () => Adapter, runs: number): Tier {
  const factories = new WeakMap<Store, () => Adapter>();
  const make = (factory: () => Adapter, plugins: Plugins = []): Store => {
    const store = createStore({ tiers: [factory()], plugins });
    factories.set(store, factory);
    opened.push(store);
    return store;
  };
  const again = (store: Store) => make(factories.get(store) as () => Adapter);
  return { open: (plugins) => make(makeAdapter(), plugins), twin: again, reopen: again, transactions: true, runs };
}
function inProcess(makeAdapter: () => Adapter, transactions: boolean, runs: number): Tier {
  return {
    open: (plugins = []) => {
      const store = createStore({ tiers: [makeAdapter()], plugins });
      opened.push(store);
      return store;
    },
    twin: face,
    reopen: null,
    transactions,
    runs,
  };
}
const tiers: Record<string, Tier> = {
  memory: inProcess(() => memoryAdapter(), true, 150),
  sqlite: onStorage(() => {
    const path = join(dir, `oa-${Math.random().toString(36).slice(2)}.db`);
    return () => sqliteAdapter({ path });
  }, 25),
  postgres: onStorage(() => {
    const namespace = freshSchema("oa");
    return () => postgresAdapter({ url: (server as PostgresServer).url, namespace });
  }, 10),
  "refs without transactions": inProcess(() => refsWithoutTransactions(), false, 60),
};

const user = (text: string): AgentInputItem => ({ role: "user", content: text });
const said = (text: string): AgentInputItem => ({ role: "assistant", status: "completed", content: [{ type: "output_text", text }] });
const call = (callId: string, args: string): AgentInputItem => ({ type: "function_call", callId, name: "weather", arguments: args, status: "completed" });
const text = (items: readonly (AgentInputItem | undefined)[]) =>
  items.map((i) => {
    if (i === undefined) return undefined;
    const c = (i as { content?: unknown }).content;
    return typeof c === "string" ? c : Array.isArray(c) ? (c[0] as { text: string }).text : `${(i as { type: string }).type}:${(i as { arguments?: string }).arguments ?? ""}`;
  });

let n = 0;
const sid = (label = "s") => `${label}-${++n}`;

describe.each(Object.keys(tiers))("DgentSession on %s", (name) => {
  const tier = tiers[name] as Tier;

  it("getItems, with and without limit; addItems in order; popItem the newest; clearSession", async () => {
    const session = new DgentSession({ sessionId: sid(), store: tier.open() });
    expect(await session.getSessionId()).toBe(session.sessionId);
    expect(await session.getItems()).toEqual([]);
    expect(await session.popItem()).toBeUndefined();
    await session.addItems([user("a"), said("b")]);
    await session.addItems([]);
    await session.addItems([user("c"), call("k1", '{"city":"Lisbon"}'), said("d")]);
    expect(text(await session.getItems())).toEqual(["a", "b", "c", "function_call:{\"city\":\"Lisbon\"}", "d"]);
    expect(text(await session.getItems(2))).toEqual(["function_call:{\"city\":\"Lisbon\"}", "d"]);
    expect(text(await session.getItems(5))).toEqual(["a", "b", "c", "function_call:{\"city\":\"Lisbon\"}", "d"]);
    expect(text(await session.getItems(50))).toHaveLength(5);
    expect(await session.getItems(0)).toEqual([]);
    expect(await session.getItems(-3)).toEqual([]);
    expect(await session.popItem()).toEqual(said("d"));
    expect(text(await session.getItems(1))).toEqual(["function_call:{\"city\":\"Lisbon\"}"]);
    await session.addItems([user("e")]);
    expect(text(await session.getItems())).toEqual(["a", "b", "c", "function_call:{\"city\":\"Lisbon\"}", "e"]);
    await session.clearSession();
    expect(await session.getItems()).toEqual([]);
    expect(await session.popItem()).toBeUndefined();
    await session.addItems([user("after clear")]);
    expect(text(await session.getItems())).toEqual(["after clear"]);
  });

  it("does what MemorySession does, for random sequences of every operation", async () => {
    const store = tier.open();
    const item = fc.oneof(
      fc.string({ maxLength: 5 }).map(user),
      fc.string({ maxLength: 5 }).map(said),
      fc.constantFrom("k1", "k2").chain((k) => fc.string({ maxLength: 3 }).map((a) => call(k, a))),
    );
    const op = fc.oneof(
      fc.record({ op: fc.constant("add" as const), items: fc.array(item, { maxLength: 4 }) }),
      fc.record({ op: fc.constant("pop" as const) }),
      fc.record({ op: fc.constant("get" as const), limit: fc.option(fc.integer({ min: -1, max: 6 }), { nil: undefined }) }),
      fc.record({ op: fc.constant("clear" as const) }),
      fc.record({ op: fc.constant("compact" as const), items: fc.array(item, { maxLength: 3 }) }),
      fc.record({ op: fc.constant("mutate" as const), callId: fc.constantFrom("k1", "k2"), args: fc.string({ maxLength: 3 }) }),
      fc.record({ op: fc.constant("append-tx" as const), id: fc.constantFrom("op1", "op2", "op3"), items: fc.array(item, { maxLength: 2 }) }),
      fc.record({ op: fc.constant("suffix-tx" as const), id: fc.constantFrom("op4", "op5"), k: fc.integer({ min: 0, max: 2 }), items: fc.array(item, { maxLength: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 14 }), async (ops) => {
        let compactions = 0;
        const session = new DgentSession({ sessionId: sid("prop"), store });
        const reference = new MemorySession({ sessionId: session.sessionId });
        for (const o of ops) {
          const both = async <R>(f: (s: DgentSession | MemorySession) => Promise<R>, ref: (s: MemorySession) => Promise<R> = f): Promise<void> => {
            const expected = await ref(reference).then((v) => ({ ok: v }), (e: unknown) => ({ error: e }));
            if ("error" in expected) {
              await expect(f(session)).rejects.toBeDefined();
            } else {
              expect(await f(session)).toEqual(expected.ok);
            }
          };
          if (o.op === "add") await both((s) => s.addItems(o.items));
          else if (o.op === "pop") await both((s) => s.popItem());
          else if (o.op === "get") await both((s) => s.getItems(o.limit));
          else if (o.op === "clear") await both((s) => s.clearSession());
          else if (o.op === "compact") {
            // MemorySession has no replaceHistoryWithCompaction; the reference replaces the whole history by a
            // suffix transaction, which (like compaction, unlike clearSession) keeps the applied operations.
            await both(
              () => session.replaceHistoryWithCompaction(o.items),
              async (m) => m.applyHistoryTransaction({ operationId: `compact-${++compactions}`, transaction: { type: "replace_suffix", expectedSuffix: await m.getItems(), replacement: o.items } }),
            );
          }
          else if (o.op === "mutate") {
            await both((s) => s.applyHistoryMutations({ mutations: [{ type: "replace_function_call", callId: o.callId, replacement: call(o.callId, `new ${o.args}`) as Extract<AgentInputItem, { type: "function_call" }> }] }) as Promise<void>);
          } else if (tier.transactions) {
            const current = await reference.getItems();
            const transaction =
              o.op === "append-tx"
                ? { type: "append_items" as const, items: o.items }
                : { type: "replace_suffix" as const, expectedSuffix: current.slice(Math.max(0, current.length - o.k)), replacement: o.items };
            await both((s) => s.applyHistoryTransaction({ operationId: o.id, transaction }) as Promise<void>);
          }
          expect(await session.getItems()).toEqual(await reference.getItems());
        }
      }),
      { numRuns: tier.runs },
    );
  });

  it("two store objects pop at once: no item is returned twice, none is lost", async () => {
    const store = tier.open();
    const sessionId = sid("pop");
    const a = new DgentSession({ sessionId, store, retry: { attempts: 500 } });
    const b = new DgentSession({ sessionId, store: tier.twin(store), retry: { attempts: 500 } });
    await a.addItems(Array.from({ length: 20 }, (_, i) => user(`m${i}`)));
    const popped = await Promise.all(Array.from({ length: 15 }, (_, i) => (i % 2 === 0 ? a : b).popItem()).concat(Array.from({ length: 15 }, (_, i) => (i % 2 === 0 ? b : a).popItem())));
    const got = text(popped).filter((t) => t !== undefined);
    expect(got).toHaveLength(20);
    expect(new Set(got)).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `m${i}`)));
    expect(popped.filter((p) => p === undefined)).toHaveLength(10);
    expect(await a.getItems()).toEqual([]);
    expect(await b.getItems()).toEqual([]);
  });

  it("two store objects append at once: batches stay whole and in one order for every reader", async () => {
    const store = tier.open();
    const sessionId = sid("add");
    const writers = [new DgentSession({ sessionId, store, retry: { attempts: 500 } }), new DgentSession({ sessionId, store: tier.twin(store), retry: { attempts: 500 } })];
    await Promise.all(writers.flatMap((w, wi) => Array.from({ length: 10 }, (_, bi) => w.addItems([0, 1, 2, 3].map((k) => user(`w${wi}-b${bi}-${k}`))))));
    const got = text(await writers[0]!.getItems()) as string[];
    expect(got).toHaveLength(80);
    for (let i = 0; i < 80; i += 4) {
      const [w, bi] = got[i]!.split("-");
      expect(got.slice(i, i + 4)).toEqual([0, 1, 2, 3].map((k) => `${w}-${bi}-${k}`));
    }
    expect(text(await writers[1]!.getItems())).toEqual(got);
    expect(text(await writers[1]!.getItems(6))).toEqual(got.slice(-6));
  });

  it("adds all or nothing: a put refused midway leaves the session as it was", async () => {
    const refuse = definePlugin({
      name: "refuse-boom",
      apply(api) {
        api.hooks.beforePut.tap({ name: "refuse-boom" }, (d: Datum) => {
          if (Buffer.from(d.content).toString("utf8").includes("BOOM")) throw new Error("refused by a plugin");
          return d;
        });
      },
    });
    const session = new DgentSession({ sessionId: sid(), store: tier.open([{ plugin: refuse, options: {} }]) });
    await session.addItems([user("one")]);
    await expect(session.addItems([user("two"), user("BOOM"), user("three")])).rejects.toThrow(/refused by a plugin/);
    expect(text(await session.getItems())).toEqual(["one"]);
    expect(await session.popItem()).toEqual(user("one"));
  });

  it("keeps bytes as bytes and leaves undefined fields out; the datums say which codec wrote them", async () => {
    const store = tier.open();
    const session = new DgentSession({ sessionId: sid(), store });
    const output: AgentInputItem = {
      type: "function_call_result",
      callId: "k9",
      name: "chart",
      status: "completed",
      output: [{ type: "image", image: { data: new Uint8Array([0, 159, 255, 1]), mediaType: "image/png" } }],
      providerData: undefined,
    } as unknown as AgentInputItem;
    await session.addItems([output]);
    const [back] = await session.getItems();
    const image = ((back as unknown as { output: { image: { data: Uint8Array } }[] }).output[0] as { image: { data: Uint8Array } }).image.data;
    expect(image).toBeInstanceOf(Uint8Array);
    expect([...image]).toEqual([0, 159, 255, 1]);
    expect(Object.hasOwn(back as object, "providerData")).toBe(false);
    const page = await store.query({ prefix: `openai-agents/session/${session.sessionId}/item/` });
    expect(page.items[0]?.metadata).toMatchObject({ session: session.sessionId, type: "function_call_result", "dgent.codec": ITEM_CODEC_NAME });
    expect(decodeDatum(page.items[0] as Datum, { ...builtInCodecs, [ITEM_CODEC_NAME]: itemCodec() }).value).toEqual(back);
  });

  if (tier.transactions) {
    it("applyHistoryTransaction: once per operation id, refuses another transaction under it and a suffix that moved, changing nothing", async () => {
      const session = new DgentSession({ sessionId: sid(), store: tier.open() });
      await session.addItems([user("a"), said("b")]);
      const append = { operationId: "op-1", transaction: { type: "append_items" as const, items: [user("c")] } };
      await session.applyHistoryTransaction(append);
      await session.applyHistoryTransaction(append); // a retry: nothing more
      expect(text(await session.getItems())).toEqual(["a", "b", "c"]);
      await expect(session.applyHistoryTransaction({ operationId: "op-1", transaction: { type: "append_items", items: [user("other")] } })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
      const replace = { operationId: "op-2", transaction: { type: "replace_suffix" as const, expectedSuffix: [said("b"), user("c")], replacement: [said("B")] } };
      await session.applyHistoryTransaction(replace);
      expect(text(await session.getItems())).toEqual(["a", "B"]);
      await session.applyHistoryTransaction(replace);
      expect(text(await session.getItems())).toEqual(["a", "B"]);
      await expect(session.applyHistoryTransaction({ operationId: "op-3", transaction: { type: "replace_suffix", expectedSuffix: [said("b")], replacement: [] } })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
      expect(text(await session.getItems())).toEqual(["a", "B"]);
      // The failed op-3 was not recorded: with a matching suffix it applies.
      await session.applyHistoryTransaction({ operationId: "op-3", transaction: { type: "replace_suffix", expectedSuffix: [said("B")], replacement: [] } });
      expect(text(await session.getItems())).toEqual(["a"]);
      await expect(session.applyHistoryTransaction({ operationId: " ", transaction: { type: "append_items", items: [] } })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
      await expect(session.applyHistoryTransaction({ operationId: "op-4", transaction: { type: "append_items", items: [{ nonsense: true } as unknown as AgentInputItem] } })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
      // clearSession forgets applied operations, as MemorySession does.
      await session.clearSession();
      await session.applyHistoryTransaction(append);
      expect(text(await session.getItems())).toEqual(["c"]);
    });

    it("the same operation from two store objects at once is applied once", async () => {
      const store = tier.open();
      const sessionId = sid("op");
      const a = new DgentSession({ sessionId, store, retry: { attempts: 500 } });
      const b = new DgentSession({ sessionId, store: tier.twin(store), retry: { attempts: 500 } });
      await a.addItems([user("start")]);
      const args = { operationId: "once", transaction: { type: "append_items" as const, items: [said("x"), said("y")] } };
      await Promise.all([a.applyHistoryTransaction(args), b.applyHistoryTransaction(args), a.applyHistoryTransaction(args), b.applyHistoryTransaction(args)]);
      expect(text(await a.getItems())).toEqual(["start", "x", "y"]);
    });
  } else {
    it("applyHistoryTransaction needs a tier with transactions: DGENT_UNSUPPORTED, nothing changed", async () => {
      const session = new DgentSession({ sessionId: sid(), store: tier.open() });
      await session.addItems([user("a")]);
      await expect(session.applyHistoryTransaction({ operationId: "op", transaction: { type: "append_items", items: [user("b")] } })).rejects.toMatchObject({ code: "DGENT_UNSUPPORTED" });
      expect(text(await session.getItems())).toEqual(["a"]);
    });
  }

  if (tier.reopen !== null) {
    it("finds the session again after the store is closed and reopened", async () => {
      const store = tier.open();
      const sessionId = sid("reopen");
      await new DgentSession({ sessionId, store }).addItems([user("before"), said("restart")]);
      await store.close();
      const session = new DgentSession({ sessionId, store: (tier.reopen as (s: Store) => Store)(store) });
      expect(text(await session.getItems())).toEqual(["before", "restart"]);
      expect(await session.popItem()).toEqual(said("restart"));
      await session.addItems([user("after")]);
      expect(text(await session.getItems())).toEqual(["before", "after"]);
    });
  }

  it("serves the Runner as MemorySession does: turns, a tool call, an output guardrail, a blocked terminal tool output", async () => {
    const store = tier.open();
    const guardrail = { name: "no-secrets", execute: async ({ agentOutput }: { agentOutput: unknown }) => ({ tripwireTriggered: String(agentOutput).includes("SECRET"), outputInfo: {} }) };
    const weather = tool({ name: "weather", description: "weather by city", parameters: z.object({ city: z.string() }), execute: async ({ city }) => `24°C in ${city}` });
    const lookup = tool({ name: "lookup", description: "internal notes", parameters: z.object({ q: z.string() }), execute: async () => "SECRET notes" });
    // A failed session write during a blocked output reaches the caller as the tripwire error's cause.
    const outcome = (e: unknown) => {
      if (!(e instanceof OutputGuardrailTripwireTriggered)) return `error ${String(e)}`;
      const cause = (e as { cause?: { code?: string } }).cause;
      return cause === undefined ? "blocked" : `blocked, the write failed: ${String(cause)}`;
    };
    const conversation = async (session: Session) => {
      const model = new ScriptedModel([
        [assistantMessage("Hello Ada.")],
        [functionCall("weather", { city: "Lisbon" }, { callId: "call-1" })],
        [assistantMessage("Sunny, 24°C.")],
        [assistantMessage("SECRET plan")],
        [functionCall("lookup", { q: "plan" }, { callId: "call-2" })],
      ]);
      const agent = new Agent({ name: "assistant", instructions: "Be brief.", model, tools: [weather], outputGuardrails: [guardrail] });
      // Its tool's output is the final output: when the guardrail rejects it, the Runner stores a placeholder
      // through applyHistoryTransaction (the run's items and the redacted output, once per operation id).
      const notes = new Agent({ name: "notes", model, tools: [lookup], toolUseBehavior: "stop_on_first_tool", outputGuardrails: [guardrail] });
      const runner = new Runner({ tracingDisabled: true });
      const outputs: unknown[] = [];
      outputs.push((await runner.run(agent, "Hi, I'm Ada.", { session })).finalOutput);
      outputs.push((await runner.run(agent, "Weather in Lisbon?", { session })).finalOutput);
      outputs.push(await runner.run(agent, "Tell me the plan.", { session }).then(() => "not blocked", outcome));
      outputs.push(await runner.run(notes, "Look up the plan.", { session }).then(() => "not blocked", outcome));
      return { outputs, inputs: model.calls.map((c) => c.request.input), items: await session.getItems() };
    };
    const withMemory = await conversation(new MemorySession({ sessionId: "same" }));
    expect(withMemory.outputs).toEqual(["Hello Ada.", "Sunny, 24°C.", "blocked", "blocked"]);
    const session = new DgentSession({ sessionId: sid("runner"), store });
    const withDgent = await conversation(session);
    if (!tier.transactions) {
      // Without transactions the operation and the history cannot change together: refused, and the caller is told.
      expect(withDgent.outputs.slice(0, 3)).toEqual(["Hello Ada.", "Sunny, 24°C.", "blocked"]);
      expect(withDgent.outputs[3]).toMatch(/^blocked, the write failed: .*applyHistoryTransaction .* needs a tier with transactions; refs-only has none/);
      expect(withDgent.items).toEqual(withMemory.items.slice(0, withDgent.items.length));
      return;
    }
    expect(withDgent.outputs).toEqual(withMemory.outputs);
    expect(withDgent.inputs).toEqual(withMemory.inputs);
    expect(withDgent.items).toEqual(withMemory.items);
    expect(JSON.stringify(withDgent.items.at(-1))).toContain("Output withheld by an output guardrail.");
    expect(JSON.stringify(withDgent.items)).not.toContain("SECRET notes");
    // The second run's first model call saw the first turn, read from the session.
    expect(JSON.stringify(withDgent.inputs[1])).toContain("Hello Ada.");
    // The operation was recorded with the history.
    expect(await store.count({ prefix: `openai-agents/session/${session.sessionId}/op/` })).toBe(1);
    // A new session object on another store object reads the same history.
    expect(await new DgentSession({ sessionId: session.sessionId, store: tier.twin(store) }).getItems()).toEqual(withDgent.items);
  });
});

describe("popping on a tier without transactions", () => {
  it("a pop whose delete has not happened yet does not hand its item to a second pop", async () => {
    // The winner's delete waits until the second pop has moved the head: the item is still listed when
    // the second pop plans. It must take the head's target, not the newest item a query lists.
    const inner = refsWithoutTransactions() as Required<Adapter>;
    let moves = 0;
    let release = () => {};
    const secondMove = new Promise<void>((resolve) => (release = resolve));
    let gated = false;
    const adapter: Adapter = {
      ...inner,
      setRef: async (n, t, e, m) => {
        const ref = await inner.setRef(n, t, e, m);
        if (++moves === 3) release(); // 1: the items added, 2: the first pop, 3: the second pop
        return ref;
      },
      delete: async (id) => {
        if (!gated) {
          gated = true;
          await secondMove;
        }
        return inner.delete(id);
      },
    };
    const store = createStore({ tiers: [adapter] });
    opened.push(store);
    const a = new DgentSession({ sessionId: "gate", store });
    const b = new DgentSession({ sessionId: "gate", store: face(store) });
    await a.addItems([user("one"), user("two"), user("three")]);
    const popped = await Promise.all([a.popItem(), b.popItem()]);
    expect(text(popped).sort()).toEqual(["three", "two"]);
    expect(text(await a.getItems())).toEqual(["one"]);
  });
});

describe("opening a store from a URL, and the peer", () => {
  it("fromUrl(sqlite:///…) opens that file; close() closes what it opened; a session id defaults to a UUID", async () => {
    const url = `sqlite://${join(dir, "sessions.db")}`;
    const session = await DgentSession.fromUrl(url, { sessionId: "user-42" });
    await session.addItems([user("kept")]);
    const store = await session.store();
    await session.close();
    await expect(store.get("x")).rejects.toMatchObject({ code: "DGENT_CLOSED" });
    const again = new DgentSession({ sessionId: "user-42", url });
    expect(text(await again.getItems())).toEqual(["kept"]);
    await again.close();
    const anonymous = new DgentSession({ url: "memory:" });
    expect(await anonymous.getSessionId()).toMatch(/^[0-9a-f-]{36}$/);
    await anonymous.close();
    expect(() => new DgentSession({ sessionId: "" })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });

  it("a missing @openai/agents-core is DGENT_MISSING_DEPENDENCY naming the package; other load failures pass through", async () => {
    const notFound = Object.assign(new Error("Cannot find package '@openai/agents-core' imported from /x/dist/integrations/openai-agents/peers.js"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(loadPeers(() => Promise.reject(notFound))).rejects.toMatchObject({
      code: "DGENT_MISSING_DEPENDENCY",
      details: { package: "@openai/agents-core" },
      message: expect.stringContaining("npm install @openai/agents-core"),
    });
    const broken = new SyntaxError("Unexpected token");
    await expect(loadPeers(() => Promise.reject(broken))).rejects.toBe(broken);
  });
});
