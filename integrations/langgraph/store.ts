/**
 * `DgentStore`: LangGraph's long-term memory (`BaseStore`) on a dgent store. An item is one datum,
 * `<prefix><namespace labels…>/<key>`, its value JSON (dgent's `json` codec), each top-level field
 * tagged `v.<field>` so `search` filters are the store's query filters (README "Long-term memory").
 */
import type { GetOperation, Item, ListNamespacesOperation, MatchCondition, Operation, OperationResults, PutOperation, SearchItem, SearchOperation } from "@langchain/langgraph-checkpoint";
import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { QueryOptions, TagFilter } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import { CODEC_KEY, decodeWith, encodeWith, jsonCodec } from "../../patterns/codec/index.js";
import { defaultStore, storeForConfig, storeForUrl, type OpenOptions } from "./connect.js";
import { canonicalJson, part, unpart, valueTag } from "./keys.js";
import { INTEGRATION, lg } from "./peers.js";

export const DEFAULT_STORE_PREFIX = "langgraph-store/";
/** Field `f` of an item's value is the tag `v.f`. */
export const VALUE_TAG_PREFIX = "v.";
/** When the item was first put (epoch ms); the datum's `createdAt` is when it was last put. */
export const CREATED_TAG = "lg.created";

export interface DgentStoreOptions extends OpenOptions {
  /** The dgent store to keep items in (default: the embedded default, closed by `end()`). */
  store?: Store | Promise<Store>;
  /** Ids of items start with this (default `"langgraph-store/"`). */
  prefix?: string;
}

type Value = Record<string, unknown>;

const codec = jsonCodec<Value>({ strict: false });
const owned = new WeakSet<Promise<Store>>();
const OPERATORS = new Set(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]);
/** Items read per query page while searching or listing namespaces. */
const PAGE = 1000;

function isGet(op: Operation): op is GetOperation {
  return "key" in op && "namespace" in op && !("value" in op);
}
function isPut(op: Operation): op is PutOperation {
  return "value" in op;
}
function isSearch(op: Operation): op is SearchOperation {
  return "namespacePrefix" in op;
}
function isListNamespaces(op: Operation): op is ListNamespacesOperation {
  return "limit" in op && "offset" in op && !("namespacePrefix" in op);
}

/** MemoryStore's test of an operator object: every key a known operator. */
function isOperators(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).every((k) => OPERATORS.has(k));
}

/** The comparison LangGraph's stores apply, for conditions the store's query cannot express. */
function holds(op: string, itemValue: unknown, operand: unknown): boolean {
  switch (op) {
    case "$ne":
      return canonicalJson(itemValue) !== canonicalJson(operand);
    case "$gt":
      return itemValue !== undefined && Number(itemValue) > Number(operand);
    case "$gte":
      return itemValue !== undefined && Number(itemValue) >= Number(operand);
    case "$lt":
      return itemValue !== undefined && Number(itemValue) < Number(operand);
    case "$lte":
      return itemValue !== undefined && Number(itemValue) <= Number(operand);
    case "$nin":
      return Array.isArray(operand) ? !operand.some((v) => canonicalJson(v) === canonicalJson(itemValue)) : true;
    default:
      return false;
  }
}

/** A search filter split into what the store's query answers (equality, one-of) and the rest. */
interface Plan {
  readonly where: Record<string, TagFilter>;
  readonly rest: ReadonlyArray<readonly [field: string, op: string, operand: unknown]>;
  /** A condition nothing can meet (an empty `$in`, a value JSON cannot hold). */
  readonly none: boolean;
}

function plan(filter: Record<string, unknown> | undefined): Plan {
  const where: Record<string, TagFilter> = {};
  const rest: Array<readonly [string, string, unknown]> = [];
  let none = false;
  const pushEq = (tag: string, value: unknown): boolean => {
    const t = valueTag(value);
    if (t === undefined) {
      none = true;
      return true;
    }
    if (tag in where) return false;
    where[tag] = t;
    return true;
  };
  for (const [field, condition] of Object.entries(filter ?? {})) {
    const tag = VALUE_TAG_PREFIX + field;
    if (!isOperators(condition)) {
      if (!pushEq(tag, condition)) rest.push([field, "$eq", condition]);
      continue;
    }
    for (const [op, operand] of Object.entries(condition)) {
      if (op === "$eq") {
        if (!pushEq(tag, operand)) rest.push([field, op, operand]);
      } else if (op === "$in" && Array.isArray(operand) && !(tag in where)) {
        const values = [...new Set(operand.map((v) => valueTag(v)).filter((v): v is string => v !== undefined))];
        if (values.length === 0) none = true;
        else if (values.length <= 1000) where[tag] = { in: values };
        else rest.push([field, op, operand]);
      } else if (op === "$in") {
        rest.push([field, op, operand]);
      } else {
        rest.push([field, op, operand]);
      }
    }
  }
  return { where, rest, none };
}

function restHolds(rest: Plan["rest"], value: Value): boolean {
  return rest.every(([field, op, operand]) => {
    const v = value[field];
    if (op === "$eq") return canonicalJson(v) === canonicalJson(operand);
    if (op === "$in") return Array.isArray(operand) && operand.some((o) => canonicalJson(o) === canonicalJson(v));
    return holds(op, v, operand);
  });
}

function matches(condition: MatchCondition, namespace: readonly string[]): boolean {
  const { matchType, path } = condition;
  if (path.length > namespace.length) return false;
  const offset = matchType === "prefix" ? 0 : namespace.length - path.length;
  return path.every((label, i) => label === "*" || label === namespace[offset + i]);
}

/** The most hits the recall plugin returns for one search. */
const MAX_RECALL_K = 1000;

/** What semantic search uses of the recall plugin's handle (dgent/plugins/recall). */
interface RecallSearch {
  attach(store: Store): Promise<unknown>;
  search(query: string, options: { k: number; filter: { prefix: string; where?: QueryOptions["where"] } }): Promise<ReadonlyArray<{ id: string; score: number }>>;
}

/** The store's recall plugin, attached; `DGENT_UNSUPPORTED` when the store has none. */
async function recallOf(store: Store): Promise<RecallSearch> {
  let handle: RecallSearch;
  try {
    handle = (await store.plugin("recall")) as RecallSearch;
  } catch (error) {
    if ((error as { code?: unknown }).code !== "DGENT_UNKNOWN_PLUGIN") throw error;
    throw dgentError(
      "DGENT_UNSUPPORTED",
      "semantic search (search with a `query`) needs the recall plugin on the store (`plugins: [recallPlugin()]` from dgent/plugins/recall, or `recall` in a config file); search with `filter` alone works without it",
      { unit: INTEGRATION, details: { capability: "semantic search", plugin: "recall" } },
    );
  }
  await handle.attach(store);
  return handle;
}

/**
 * LangGraph's long-term memory on a dgent store: namespaces are id prefixes, `search` filters are
 * pushed down to the store's query (equality and `$in` as tag filters, the rest checked on the
 * page), pages are the store's pages. Semantic search (`query`) goes through the store's recall plugin.
 */
export class DgentStore extends lg.BaseStore {
  readonly prefix: string;
  readonly #store: Promise<Store>;

  constructor(options: DgentStoreOptions = {}) {
    super();
    this.prefix = options.prefix ?? DEFAULT_STORE_PREFIX;
    if (options.store !== undefined) {
      this.#store = Promise.resolve(options.store);
    } else {
      this.#store = defaultStore(options);
      owned.add(this.#store);
    }
    this.#store.catch(() => undefined);
  }

  /** A long-term store on the one tier a URL names (`sqlite:///path.db`, `postgres://…`, `memory:`…). */
  static fromConnString(url: string, options: Omit<DgentStoreOptions, "store"> = {}): DgentStore {
    const store = storeForUrl(url, options);
    owned.add(store);
    return new DgentStore({ ...options, store });
  }

  /** A long-term store on the store of a dgent config file (default: the file dgent finds, else the embedded default). */
  static fromConfig(pathOrObject?: string | object, options: Omit<DgentStoreOptions, "store"> = {}): DgentStore {
    const store = storeForConfig(pathOrObject, options);
    owned.add(store);
    return new DgentStore({ ...options, store });
  }

  store(): Promise<Store> {
    return this.#store;
  }

  async setup(): Promise<void> {
    await (await this.#store).open();
  }

  /** Closes the dgent store if this opened it. */
  async end(): Promise<void> {
    if (owned.has(this.#store)) await (await this.#store).close();
  }

  override async stop(): Promise<void> {
    await this.end();
  }

  #dir(namespace: readonly string[]): string {
    return this.prefix + namespace.map((label) => `${part(label)}/`).join("");
  }

  #id(namespace: readonly string[], key: string): string {
    return this.#dir(namespace) + part(key);
  }

  /** The namespace and key of an item's id. */
  #parse(id: string): { namespace: string[]; key: string } {
    const parts = id.slice(this.prefix.length).split("/").map(unpart);
    const key = parts.pop() as string;
    return { namespace: parts, key };
  }

  #item(datum: Datum): Item {
    const { namespace, key } = this.#parse(datum.id);
    const created = Number(datum.metadata[CREATED_TAG] ?? datum.createdAt);
    return { namespace, key, value: decodeWith(datum, codec), createdAt: new Date(created), updatedAt: new Date(datum.createdAt) };
  }

  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    const store = await this.#store;
    const results: unknown[] = new Array(operations.length).fill(null);
    let i = 0;
    while (i < operations.length) {
      const op = operations[i] as Operation;
      // Runs of gets are one getMany, runs of puts one transaction; each run sees the ones before it.
      let j = i + 1;
      if (isGet(op)) while (j < operations.length && isGet(operations[j] as Operation)) j++;
      else if (isPut(op)) while (j < operations.length && isPut(operations[j] as Operation)) j++;
      const run = operations.slice(i, j);
      if (isGet(op)) {
        const found = await store.getMany((run as GetOperation[]).map((g) => this.#id(g.namespace, g.key)));
        found.forEach((d, k) => (results[i + k] = d === null ? null : this.#item(d)));
      } else if (isPut(op)) {
        await this.#put(store, run as PutOperation[]);
      } else if (isSearch(op)) {
        results[i] = await this.#search(store, op);
      } else if (isListNamespaces(op)) {
        results[i] = await this.#listNamespaces(store, op);
      } else {
        throw dgentError("DGENT_INVALID_OPTIONS", `unknown store operation ${JSON.stringify(op)}`, { unit: INTEGRATION });
      }
      i = j;
    }
    return results as OperationResults<Op>;
  }

  /** Puts and deletes (value null), the last of each key winning: one transaction, or puts of new keys on a tier without them. */
  async #put(store: Store, ops: readonly PutOperation[]): Promise<void> {
    const last = new Map<string, PutOperation>();
    for (const op of ops) {
      if (op.value !== null) lg.validateNamespace(op.namespace, { allowReservedRoot: true });
      if (typeof op.key !== "string") throw dgentError("DGENT_INVALID_OPTIONS", `an item's key must be a string, got ${typeof op.key}`, { unit: INTEGRATION });
      const id = this.#id(op.namespace, op.key);
      last.delete(id);
      last.set(id, op);
    }
    const ids = [...last.keys()];
    const existing = await store.getMany(ids);
    const now = Date.now();
    const deletes: string[] = [];
    const puts: Datum[] = [];
    ids.forEach((id, k) => {
      const op = last.get(id) as PutOperation;
      const old = existing[k] ?? null;
      if (old !== null) deletes.push(id);
      if (op.value === null) return;
      const value = op.value as Value;
      const metadata: Record<string, string> = { [CODEC_KEY]: codec.name, [CREATED_TAG]: old?.metadata[CREATED_TAG] ?? String(old?.createdAt ?? now) };
      for (const [field, v] of Object.entries(value)) {
        const tag = valueTag(v);
        if (tag !== undefined && !field.includes("\u0000")) metadata[VALUE_TAG_PREFIX + field] = tag;
      }
      puts.push({ id, content: encodeWith(value, codec, id), createdAt: Math.max(now, (old?.createdAt ?? 0) + 1), causalParent: null, metadata });
    });
    if (store.capabilities.transactions) {
      if (deletes.length + puts.length === 0) return;
      await store.transaction([...deletes.map((id) => ({ op: "delete", id }) as const), ...puts.map((datum) => ({ op: "put", datum }) as const)]);
      return;
    }
    const replaced = puts.filter((d) => deletes.includes(d.id));
    if (replaced.length > 0) {
      throw dgentError(
        "DGENT_UNSUPPORTED",
        `replacing the item ${JSON.stringify(replaced[0]?.id)} needs a tier with transactions (memory, jsonl, sqlite, postgres), so that no reader ever finds it missing; ${store.tiers[0]?.name ?? "this tier"} has none`,
        { unit: INTEGRATION, details: { tier: store.tiers[0]?.name, capability: "transactions" } },
      );
    }
    for (const id of deletes) await store.delete(id);
    if (puts.length > 0) await store.putMany(puts);
  }

  async #search(store: Store, op: SearchOperation): Promise<SearchItem[]> {
    const limit = op.limit ?? 10;
    const offset = op.offset ?? 0;
    if (limit <= 0) return [];
    const { where, rest, none } = plan(op.filter as Record<string, unknown> | undefined);
    if (none) return [];
    const base: QueryOptions = { prefix: this.#dir(op.namespacePrefix), ...(Object.keys(where).length > 0 ? { where } : {}) };
    if (op.query !== undefined && op.query !== null && op.query !== "") return this.#semantic(store, op.query, base, rest, offset, limit);
    let cursor: string | null = null;
    if (rest.length === 0) {
      // Everything is pushed down: skip `offset` items reading ids only, then read one page.
      let skipped = 0;
      while (skipped < offset) {
        const page: { items: string[]; cursor: string | null } = await store.query({ ...base, select: "ids", limit: Math.min(offset - skipped, 100_000), ...(cursor !== null ? { cursor } : {}) });
        skipped += page.items.length;
        cursor = page.cursor;
        if (cursor === null) return []; // a short page: fewer than `offset` items in all
      }
      const page: { items: Datum[]; cursor: string | null } = await store.query({ ...base, select: "full", limit, ...(cursor !== null ? { cursor } : {}) });
      return page.items.map((d) => ({ ...this.#item(d), score: undefined }));
    }
    // Range, `$ne` and `$nin` conditions are checked on the pages the pushed-down filters give.
    const out: SearchItem[] = [];
    let skipped = 0;
    do {
      const page: { items: Datum[]; cursor: string | null } = await store.query({ ...base, select: "full", limit: PAGE, ...(cursor !== null ? { cursor } : {}) });
      cursor = page.cursor;
      for (const d of page.items) {
        const item = this.#item(d);
        if (!restHolds(rest, item.value)) continue;
        if (skipped < offset) {
          skipped++;
          continue;
        }
        out.push({ ...item, score: undefined });
        if (out.length >= limit) return out;
      }
    } while (cursor !== null);
    return out;
  }

  /**
   * Semantic search through the store's recall plugin: the nearest items to `query`, best first,
   * with the namespace prefix and pushed-down filters applied during the search and the rest
   * checked on the hits (asking the index for more, up to its limit, until `offset + limit` pass).
   */
  async #semantic(store: Store, query: string, base: QueryOptions, rest: Plan["rest"], offset: number, limit: number): Promise<SearchItem[]> {
    const recall = await recallOf(store);
    const want = offset + limit;
    const filter = { prefix: base.prefix as string, ...(base.where !== undefined ? { where: base.where } : {}) };
    for (let k = Math.min(MAX_RECALL_K, rest.length === 0 ? want : want * 4); ; k = Math.min(MAX_RECALL_K, k * 4)) {
      const hits = await recall.search(query, { k, filter });
      const datums = await store.getMany(hits.map((h) => h.id));
      const passed: SearchItem[] = [];
      hits.forEach((hit, i) => {
        const d = datums[i];
        if (d === null || d === undefined) return; // deleted since the search
        const item = this.#item(d);
        if (restHolds(rest, item.value)) passed.push({ ...item, score: hit.score });
      });
      if (passed.length >= want || hits.length < k || k === MAX_RECALL_K) return passed.slice(offset, want);
    }
  }

  async #listNamespaces(store: Store, op: ListNamespacesOperation): Promise<string[][]> {
    const conditions = op.matchConditions ?? [];
    // The labels a prefix condition fixes before its first wildcard narrow the ids read.
    const fixed: string[] = [];
    const prefixCondition = conditions.find((c) => c.matchType === "prefix");
    for (const label of prefixCondition?.path ?? []) {
      if (label === "*") break;
      fixed.push(label);
    }
    const seen = new Map<string, string[]>();
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await store.query({ prefix: this.#dir(fixed), select: "ids", limit: PAGE * 10, ...(cursor !== null ? { cursor } : {}) });
      cursor = page.cursor;
      for (const id of page.items) {
        const { namespace } = this.#parse(id);
        if (!conditions.every((c) => matches(c, namespace))) continue;
        const shown = op.maxDepth !== undefined ? namespace.slice(0, op.maxDepth) : namespace;
        seen.set(JSON.stringify(shown), shown);
      }
    } while (cursor !== null);
    const all = [...seen.values()].sort((a, b) => {
      const x = a.join(":");
      const y = b.join(":");
      return x < y ? -1 : x > y ? 1 : 0;
    });
    const offset = op.offset ?? 0;
    return all.slice(offset, offset + (op.limit ?? all.length));
  }
}
