/**
 * The HTTP tier: a store served by `dgent serve` (or `createServer`) as a tier of another
 * process's store. `httpAdapter({ url, token, namespace })`; URL form `dgent+http://host:port/ns`
 * or `dgent+https://…` with the token in `DGENT_HTTP_TOKEN`.
 */
import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { Lifecycle } from "../../core/lifecycle.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "../../core/paths.js";
import type { Adapter, AdapterStats, Capabilities, ResolvedListOptions } from "../../core/protocol.js";
import { encodeCursor, filtersNothing, MAX_LIST_LIMIT, type DatumHeader, type QueryFilter, type ResolvedQuery } from "../../core/query.js";
import type { Ref, RefExpectation, RefMove, ReflogEntry, TxOp, TxResult } from "../../core/refs.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { fromWire, fromWireItem, toWire, txOpToWire, type WireDatum } from "../../server/wire.js";
import { HttpClient, segment, UNIT } from "./client.js";

export const ADAPTER_NAME = UNIT;

export interface HttpOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7411`. */
  url: string;
  /** A bearer token with the rights the store needs (read; write to write; admin for `deleteMany({ all: true })`). */
  token?: string;
  /** The namespace on the server (default `"default"`). */
  namespace?: string;
  /** Per request (default 30 000). */
  timeoutMs?: number;
  /** `probe()` gives up after this (default 2 000). */
  probeTimeoutMs?: number;
  /** The lattice rank (default 35: shared; set it to what the server's landing tier is worth). */
  rank?: number;
  /** Whether the server's data outlives it (default true). */
  persistent?: boolean;
  /** PEM certificates to trust for `https` (a private CA or a self-signed server); default: Node's. */
  ca?: string | Buffer;
}

type Page = { items: unknown[]; cursor: string | null };

class HttpAdapter implements Adapter {
  readonly name = ADAPTER_NAME;
  readonly rank: number;
  readonly capabilities: Capabilities;
  readonly #client: HttpClient;
  readonly #life = new Lifecycle(UNIT);
  readonly #probeTimeoutMs: number;
  readonly #openTimeoutMs: number;

  constructor(options: HttpOptions) {
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    assertNamespace(namespace);
    if (!/^https?:\/\/[^/]/.test(options.url)) throw dgentError("DGENT_INVALID_OPTIONS", "the http tier's url must be http://host[:port] or https://…", { unit: UNIT });
    this.#client = new HttpClient({ url: options.url, token: options.token, namespace, timeoutMs: options.timeoutMs ?? 30_000, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 2000;
    this.#openTimeoutMs = Math.min(options.timeoutMs ?? 30_000, 10_000);
    this.rank = options.rank ?? 35;
    this.capabilities = Object.freeze({
      persistent: options.persistent ?? true,
      multiProcess: true,
      nativeCausalChain: true,
      batch: true,
      scan: true,
      evicts: false,
      refs: true,
      transactions: true,
      query: true,
      queryCost: "indexed",
    });
  }

  open(): Promise<void> {
    // One cheap authenticated call: the server is up, the token is valid, the namespace exists.
    return this.#life.open(async () => void (await this.#client.call("GET", "/datums?limit=0", undefined, { timeoutMs: this.#openTimeoutMs })));
  }

  close(): Promise<void> {
    return this.#life.close(() => this.#client.destroy());
  }

  async probe(): Promise<boolean> {
    if (this.#life.isClosed) return false;
    try {
      await this.#client.call("GET", "/healthz", undefined, { root: true, timeoutMs: this.#probeTimeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    return ((await this.#client.call<{ id: string }>("POST", "/datums", toWire(datum))) as { id: string }).id;
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    return ((await this.#client.call<{ ids: string[] }>("POST", "/datums/batch", { datums: datums.map(toWire) })) as { ids: string[] }).ids;
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    const wire = await this.#client.call<WireDatum>("GET", `/datums/${segment(id)}`, undefined, { nullOn404: true });
    return wire === null ? null : fromWire(wire);
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    return ((await this.#client.call<{ existed: boolean }>("DELETE", `/datums/${segment(id)}`)) as { existed: boolean }).existed;
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const qs = new URLSearchParams({ prefix: options.prefix, after: String(options.after), limit: String(options.limit) });
    return ((await this.#client.call<{ items: WireDatum[] }>("GET", `/datums?${qs}`)) as { items: WireDatum[] }).items.map(fromWire);
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    // The server walks with its own limit; asking one step more than ours tells a chain past it.
    const chain = await this.chainTail(id, maxDepth + 1);
    if (chain.length > maxDepth) {
      throw dgentError("DGENT_CAUSAL_DEPTH", `the causal chain of ${JSON.stringify(id)} is deeper than ${maxDepth}`, { unit: UNIT, details: { id, maxDepth } });
    }
    return chain;
  }

  async chainTail(id: string, n: number): Promise<Datum[]> {
    this.#life.check();
    return ((await this.#client.call<{ items: WireDatum[] }>("GET", `/datums/${segment(id)}/chain?tail=${n}`)) as { items: WireDatum[] }).items.map(fromWire);
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    let cursor: string | null = null;
    do {
      const page: Page = (await this.#client.call<Page>("POST", "/query", { order: "oldest", limit: 1000, ...(cursor ? { cursor } : {}) })) as Page;
      for (const item of page.items) yield fromWire(item);
      cursor = page.cursor;
    } while (cursor !== null);
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    const { count } = (await this.#client.call<{ count: number }>("POST", "/count", {})) as { count: number };
    return { count, url: this.#client.location };
  }

  async getRef(name: string): Promise<Ref | null> {
    this.#life.check();
    return this.#client.call<Ref>("GET", `/refs/${segment(name)}`, undefined, { nullOn404: true });
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    this.#life.check();
    return ((await this.#client.call<{ items: Ref[] }>("GET", `/refs?${new URLSearchParams({ prefix })}`)) as { items: Ref[] }).items;
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    this.#life.check();
    return ((await this.#client.call<{ items: ReflogEntry[] }>("GET", `/refs/${segment(name)}/log?limit=${limit}`)) as { items: ReflogEntry[] }).items;
  }

  async setRef(name: string, target: string, expect: RefExpectation | undefined, _move: RefMove): Promise<Ref> {
    this.#life.check();
    return (await this.#client.call<Ref>("PUT", `/refs/${segment(name)}`, { target, ...(expect ? { expect } : {}) })) as Ref;
  }

  async deleteRef(name: string, expect: RefExpectation | undefined, _move: RefMove): Promise<boolean> {
    this.#life.check();
    return ((await this.#client.call<{ existed: boolean }>("DELETE", `/refs/${segment(name)}`, expect ? { expect } : undefined)) as { existed: boolean }).existed;
  }

  async commit(ops: readonly TxOp[], _move: RefMove): Promise<TxResult> {
    this.#life.check();
    return (await this.#client.call<TxResult>("POST", "/transactions", { ops: ops.map(txOpToWire) })) as TxResult;
  }

  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    this.#life.check();
    const select = q.select === "full" ? "full" : "meta";
    const out: Array<Datum | DatumHeader> = [];
    let cursor = q.cursor === null ? null : encodeCursor(q, q.cursor);
    // A page of the server holds at most MAX_LIST_LIMIT; a larger limit is read page by page.
    while (out.length < q.limit) {
      const limit = Math.min(q.limit - out.length, MAX_LIST_LIMIT);
      const page = (await this.#client.call<Page>("POST", "/query", { ...filterOf(q), order: q.order, limit, select, ...(cursor ? { cursor } : {}) })) as Page;
      for (const item of page.items) out.push(fromWireItem(item) as Datum | DatumHeader);
      cursor = page.cursor;
      if (cursor === null || page.items.length < limit) break;
    }
    return out as Datum[] | DatumHeader[];
  }

  async count(q: ResolvedQuery): Promise<number> {
    this.#life.check();
    return ((await this.#client.call<{ count: number }>("POST", "/count", filterOf(q))) as { count: number }).count;
  }

  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    this.#life.check();
    const { items } = (await this.#client.call<{ items: Array<WireDatum | null> }>("POST", "/get-many", { ids })) as { items: Array<WireDatum | null> };
    return items.map((w) => (w === null ? null : fromWire(w)));
  }

  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    this.#life.check();
    // The ids first (the protocol returns them), then one deleteMany on the server: atomic there
    // where its tier is transactional; a datum put between the two calls is deleted, not listed.
    const ids = (await this.query({ ...q, cursor: null, limit: Number.MAX_SAFE_INTEGER, order: "newest", select: "ids" })).map((h) => h.id);
    const body = filtersNothing(q) ? { all: true } : filterOf(q);
    await this.#client.call("POST", "/delete-many", body);
    return ids;
  }
}

/** A resolved query's filters as the options the server's `query` takes. */
function filterOf(q: ResolvedQuery): QueryFilter {
  const f: { -readonly [K in keyof QueryFilter]: QueryFilter[K] } = {};
  if (q.prefix !== "") f.prefix = q.prefix;
  if (q.idGte !== null || q.idLt !== null) f.idRange = { ...(q.idGte !== null ? { gte: q.idGte } : {}), ...(q.idLt !== null ? { lt: q.idLt } : {}) };
  if (q.where.length > 0) {
    f.where = Object.fromEntries(q.where.map((w) => [w.key, w.op === "in" ? { in: [...w.values] } : w.op === "prefix" ? { prefix: w.value } : { exists: w.value }]));
  }
  if (q.parent !== null) f.parent = q.parent;
  if (q.after !== null) f.after = q.after;
  if (q.before !== null) f.before = q.before;
  return f;
}

export const http = defineAdapter<HttpOptions>({
  name: ADAPTER_NAME,
  rank: 35,
  urlSchemes: ["dgent+http", "dgent+https"],
  fromUrl: (url, context) => {
    const parsed = new URL(url.replace(/^dgent\+/, ""));
    const namespace = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, "")) || context.namespace;
    const token = process.env.DGENT_HTTP_TOKEN;
    return { url: `${parsed.protocol}//${parsed.host}`, namespace, ...(token ? { token } : {}) };
  },
  description: "A store served over HTTP by dgent serve, as a tier of this store.",
  optionsSchema: {
    type: "object",
    additionalProperties: false,
    required: ["url"],
    properties: {
      url: { type: "string", pattern: "^https?://" },
      token: { type: "string", minLength: 1 },
      namespace: { type: "string" },
      timeoutMs: { type: "integer", minimum: 1 },
      probeTimeoutMs: { type: "integer", minimum: 1 },
      rank: { type: "number" },
      persistent: { type: "boolean" },
      ca: { type: "string" },
    },
  },
  create: (options) => new HttpAdapter(options),
});

/** A tier that is a store served by `dgent serve`. */
export function httpAdapter(options: HttpOptions): Adapter {
  return instantiateAdapter(http, options);
}

export { httpSearch, type HttpSearchOptions, type RemoteHit, type RemoteSearch, type RemoteSearchOptions } from "./search.js";
