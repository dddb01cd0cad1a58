/**
 * `DgentSaver`: LangGraph's checkpointer (`BaseCheckpointSaver`) on a dgent store, any tier.
 * The layout is in keys.ts, pending writes in writes.ts, and the why of both in README.md.
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointPendingWrite,
  CheckpointTuple,
  DeltaChannelHistory,
  PendingWrite,
  SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import type { QueryOptions, Where } from "../../core/query.js";
import type { TxOp } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import { decode, dumpsTyped, encode, serdeTags } from "./codec.js";
import { defaultStore, storeForConfig, storeForUrl, type OpenOptions } from "./connect.js";
import { checkpointTime, DEFAULT_PREFIX, Layout, unpart, valueTag } from "./keys.js";
import { INTEGRATION, lg } from "./peers.js";
import { callOf, entriesOf, mergeCalls, newEntries, supersededBy, type CallBody, type WriteCall, type WriteEntry } from "./writes.js";

/** How the saver finds a thread's latest checkpoint (README "The latest checkpoint"). */
export type LatestBy = "query" | "ref";

export interface DgentSaverOptions extends OpenOptions {
  /** The store to keep checkpoints in (default: the embedded default, opened on first use and closed by `end()`). */
  store?: Store | Promise<Store>;
  /** Ids of everything the saver writes start with this (default `"langgraph/"`). */
  prefix?: string;
  /** `"query"` (default): the newest checkpoint by an indexed query. `"ref"`: a ref per thread and namespace, moved by every put. */
  latest?: LatestBy;
  /** How values are serialized (default: LangGraph's `JsonPlusSerializer`). */
  serde?: SerializerProtocol;
  /**
   * A channel value whose serialized JSON is at most this many bytes is kept in the checkpoint's
   * own datum, every checkpoint holding its small channels whole (default 4096); a larger one is
   * a datum of its own, stored once per version. `0`: every value is a datum of its own.
   */
  inlineLimit?: number;
}

/** The tag every checkpoint datum carries: `[checkpoint_ns, thread_id]` as JSON. */
export const CHECKPOINT_TAG = "lg.checkpoint";
/** The tag every writes datum carries: `[checkpoint_ns, thread_id, checkpoint_id]` as JSON. */
export const WRITES_TAG = "lg.writes";
/** Metadata key `k` of a checkpoint is the tag `m.k` (its canonical JSON, or its hash when long). */
export const METADATA_TAG_PREFIX = "m.";

/** A page of checkpoints read at once by `list` (one query for their writes, one getMany for their values). */
const LIST_PAGE = 100;
/** Writes read per query page. */
const WRITES_PAGE = 1000;
/** Values read per getMany. */
const BLOBS_PER_READ = 10_000;
/** Tries of a putWrites that races other writers of the same task. */
const WRITE_ATTEMPTS = 16;

/** The stores this module opened (and so closes). */
const owned = new WeakSet<Promise<Store>>();

/** Channel values up to this many bytes of JSON live in the checkpoint datum by default. */
export const DEFAULT_INLINE_LIMIT = 4096;

/** What a checkpoint datum holds. */
interface CheckpointBody {
  readonly checkpoint: Omit<Checkpoint, "channel_values">;
  readonly metadata: CheckpointMetadata;
  readonly parent: string | null;
  /** The channel values kept in the checkpoint itself (absent in the blob-per-version layout: `inlineLimit: 0`, and checkpoints written before inlining). */
  readonly values?: Record<string, unknown>;
  /** With `values`: the channels whose value is a datum of its own, at the checkpoint's version of them. */
  readonly apart?: readonly string[];
}

/** Where a checkpoint's channel values are, as its children's puts need it (README "Channel values"). */
interface Stored {
  readonly versions: ChannelVersions;
  /** Channel → its JSON kept in the checkpoint (the bytes, or the decoded value when read back). */
  readonly inline: ReadonlyMap<string, Uint8Array | { readonly value: unknown }>;
  readonly apart: ReadonlySet<string>;
}

/** Checkpoints whose `Stored` a saver remembers (the parents of its next puts). */
const RECENT = 256;
/** Threads whose newest checkpoint a saver remembers. */
const NEWEST = 4096;

interface Place {
  readonly threadId: string;
  readonly ns: string;
}

interface Decoded extends Place {
  readonly datum: Datum;
  readonly body: CheckpointBody;
}

function invalid(message: string): never {
  throw dgentError("DGENT_INVALID_OPTIONS", message, { unit: INTEGRATION });
}

function text(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  return invalid(`${what} must be a string, got ${typeof value}`);
}

function configurableOf(config: RunnableConfig | undefined): Record<string, unknown> {
  return (config?.configurable ?? {}) as Record<string, unknown>;
}

function threadOf(config: RunnableConfig, op: string): string {
  if (config?.configurable === undefined) invalid(`${op}: config.configurable is missing; pass { configurable: { thread_id } }`);
  const threadId = text(configurableOf(config).thread_id, "config.configurable.thread_id");
  if (threadId === undefined || threadId === "") {
    invalid(`${op}: config.configurable.thread_id is missing; a checkpointer keeps state per thread, e.g. graph.invoke(input, { configurable: { thread_id: "1" } })`);
  }
  return threadId;
}

function nsOf(config: RunnableConfig | undefined): string | undefined {
  return text(configurableOf(config).checkpoint_ns, "config.configurable.checkpoint_ns");
}

function checkpointIdOf(config: RunnableConfig | undefined): string | undefined {
  const id = text(configurableOf(config).checkpoint_id, "config.configurable.checkpoint_id");
  return id === "" ? undefined : id;
}

function configOf(threadId: string, ns: string, checkpointId: string): RunnableConfig {
  return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpointId } };
}

/** `[ns, thread]` of a checkpoint datum, from its tag. */
function whereOf(datum: Datum): Place {
  const [ns, threadId] = JSON.parse(datum.metadata[CHECKPOINT_TAG] as string) as [string, string];
  return { threadId, ns };
}

/** The checkpoint id in a checkpoint datum's id (`…/c/<id>[ <ns>]`). */
function checkpointIdIn(datumId: string): string {
  const tail = datumId.slice(datumId.lastIndexOf("/c/") + 3);
  const space = tail.indexOf(" ");
  return unpart(space < 0 ? tail : tail.slice(0, space));
}

/** True when the store's tag filters use an index (SQL, memory, JSONL), not a scan (object stores). */
function indexed(store: Store): boolean {
  return store.capabilities.queryCost === "indexed";
}

function isConflict(error: unknown): boolean {
  return isDgentError(error, "DGENT_CONFLICT");
}

/**
 * LangGraph's checkpointer on a dgent store. Checkpoints, channel values and pending writes are
 * datums under one prefix per thread; the metadata filter, `before` and `limit` of `list` are
 * the store's query filters; `getTuple` reads a checkpoint in two round trips whatever its size.
 */
export class DgentSaver extends lg.BaseCheckpointSaver {
  readonly layout: Layout;
  readonly latest: LatestBy;
  readonly inlineLimit: number;
  readonly #store: Promise<Store>;
  /** The `Stored` of the checkpoints this saver put last, by datum id, oldest first. */
  readonly #recent = new Map<string, Stored>();
  /** The newest checkpoint id this saver put, by `thread\0ns` (the guess of `getTuple`'s latest), oldest first. */
  readonly #newest = new Map<string, string>();

  constructor(options: DgentSaverOptions = {}) {
    super(options.serde);
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== "string") invalid(`prefix must be a string, got ${typeof prefix}`);
    const latest = options.latest ?? "query";
    if (latest !== "query" && latest !== "ref") invalid(`latest must be "query" or "ref", got ${JSON.stringify(latest)}`);
    const inlineLimit = options.inlineLimit ?? DEFAULT_INLINE_LIMIT;
    if (typeof inlineLimit !== "number" || !(inlineLimit >= 0)) invalid(`inlineLimit must be a number ≥ 0, got ${String(inlineLimit)}`);
    this.layout = new Layout(prefix);
    this.latest = latest;
    this.inlineLimit = inlineLimit;
    if (options.store !== undefined) {
      this.#store = Promise.resolve(options.store);
    } else {
      this.#store = defaultStore(options);
      owned.add(this.#store);
    }
    // A store that fails to open fails the first call, not an unobserved promise.
    this.#store.catch(() => undefined);
  }

  /** A saver on the one tier a URL names: `sqlite:///path.db`, `postgres://…`, `s3://bucket/prefix/`, `memory:` (the official savers' `fromConnString`). */
  static fromConnString(url: string, options: Omit<DgentSaverOptions, "store"> = {}): DgentSaver {
    const store = storeForUrl(url, options);
    owned.add(store);
    return new DgentSaver({ ...options, store });
  }

  /** The same as `fromConnString`. */
  static fromUrl(url: string, options: Omit<DgentSaverOptions, "store"> = {}): DgentSaver {
    return DgentSaver.fromConnString(url, options);
  }

  /** A saver on the store of a dgent config file (a path or the object; default: the file dgent finds, else the embedded default). */
  static fromConfig(pathOrObject?: string | object, options: Omit<DgentSaverOptions, "store"> = {}): DgentSaver {
    const store = storeForConfig(pathOrObject, options);
    owned.add(store);
    return new DgentSaver({ ...options, store });
  }

  /** The store the saver writes to. */
  store(): Promise<Store> {
    return this.#store;
  }

  /** Opens the store (idempotent). The official savers' `setup()`; dgent's tiers create their schema themselves. */
  async setup(): Promise<void> {
    await (await this.#store).open();
  }

  /** Closes the store if the saver opened it (`new DgentSaver()`, `fromConnString`, `fromConfig`); a store passed in stays open. */
  async end(): Promise<void> {
    if (owned.has(this.#store)) await (await this.#store).close();
  }

  /**
   * Channel versions are numbers, as LangGraph's default, with a random fraction: a branch made
   * by time travel never gives a channel a version the original branch gave it a different value
   * under, so a value is stored once per version and never overwritten (README "Channel values").
   */
  override getNextVersion(current: number | undefined): number {
    const whole = typeof current === "number" ? Math.floor(current) : typeof current === "string" ? Number.parseInt(current, 10) || 0 : 0;
    return whole + 1 + Math.floor(Math.random() * 1e9) / 1e9;
  }

  // ---- reading -------------------------------------------------------------------------------

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = text(configurableOf(config).thread_id, "config.configurable.thread_id");
    if (threadId === undefined) return undefined;
    const ns = nsOf(config) ?? "";
    const checkpointId = checkpointIdOf(config);
    const store = await this.#store;
    let datum: Datum | null;
    let writes: Promise<WriteCall[]> | null = null;
    if (checkpointId !== undefined) {
      // The checkpoint and its writes at once: both ids are known.
      writes = this.#writesOf(store, threadId, ns, checkpointId);
      writes.catch(() => undefined);
      datum = await store.get(this.layout.checkpoint(threadId, ns, checkpointId));
    } else {
      // The newest checkpoint this saver put in the thread is most likely the newest still: its
      // writes are read alongside (a round trip less on a remote tier), and read again if not.
      const guess = this.#newest.get(`${threadId}\u0000${ns}`);
      if (guess !== undefined) {
        writes = this.#writesOf(store, threadId, ns, guess);
        writes.catch(() => undefined);
      }
      datum = await this.#latestOf(store, threadId, ns);
      if (datum !== null && checkpointIdIn(datum.id) !== guess) writes = null;
    }
    if (datum === null) return undefined;
    const decoded: Decoded = { datum, threadId, ns, body: await decode<CheckpointBody>(this.serde, datum) };
    const id = decoded.body.checkpoint.id;
    const [values, calls] = await Promise.all([this.#valuesOf(store, [decoded]), writes ?? this.#writesOf(store, threadId, ns, id)]);
    return this.#tuple(store, decoded, values, calls);
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const { limit, before, filter } = options;
    if (limit !== undefined && limit <= 0) return;
    const threadId = text(configurableOf(config).thread_id, "config.configurable.thread_id") || undefined;
    const ns = nsOf(config);
    const checkpointId = checkpointIdOf(config);
    const beforeId = checkpointIdOf(before);
    const store = await this.#store;
    const query = this.#listQuery(threadId, ns, checkpointId, beforeId, filter, indexed(store));
    if (query === null) return;
    // Without a thread, ids of different threads do not compare by checkpoint id: `before` is a
    // time bound, exact but for checkpoints of the bound's own millisecond, checked here.
    const keep = (d: Datum): boolean =>
      (threadId !== undefined || beforeId === undefined || checkpointIdIn(d.id) < beforeId) &&
      (threadId !== undefined || checkpointId === undefined || checkpointIdIn(d.id) === checkpointId);
    let remaining = limit ?? Number.POSITIVE_INFINITY;
    let cursor: string | null = null;
    do {
      const page: { items: Datum[]; cursor: string | null } = await store.query({
        ...query,
        select: "full",
        limit: Math.min(LIST_PAGE, remaining),
        ...(cursor !== null ? { cursor } : {}),
      });
      cursor = page.cursor;
      const items = page.items.filter(keep).slice(0, remaining);
      if (items.length === 0) continue;
      remaining -= items.length;
      const decoded = await Promise.all(
        items.map(async (datum): Promise<Decoded> => ({ datum, ...whereOf(datum), body: await decode<CheckpointBody>(this.serde, datum) })),
      );
      const [values, calls] = await Promise.all([this.#valuesOf(store, decoded), this.#writesOfMany(store, decoded, threadId)]);
      for (const d of decoded) {
        const mine = calls.get(this.layout.writes(d.threadId, d.ns, d.body.checkpoint.id)) ?? [];
        yield await this.#tuple(store, d, values, mine);
      }
    } while (cursor !== null && remaining > 0);
  }

  /** The query of a `list` call, every condition pushed down; `null` when nothing can match. */
  #listQuery(
    threadId: string | undefined,
    ns: string | undefined,
    checkpointId: string | undefined,
    beforeId: string | undefined,
    filter: Record<string, unknown> | undefined,
    tagIndexed: boolean,
  ): QueryOptions | null {
    const where: Record<string, Where[string]> = {};
    for (const [key, value] of Object.entries(filter ?? {})) {
      if (value === undefined) continue;
      const tag = valueTag(value);
      if (tag === undefined) return null; // a function or a symbol: no stored metadata equals it
      where[METADATA_TAG_PREFIX + key] = tag;
    }
    const q: { -readonly [K in keyof QueryOptions]: QueryOptions[K] } = {};
    if (threadId !== undefined) {
      // A thread's namespace is one tag value (an index range on SQL); a whole thread, or an object store, its prefix.
      // With a metadata filter the prefix goes along: a candidate the metadata tag yields in another
      // thread is then refused by its id, before its namespace tag is probed (README "Speed").
      const filtered = Object.keys(where).length > 0;
      if (ns !== undefined) where[CHECKPOINT_TAG] = JSON.stringify([ns, threadId]);
      if (ns === undefined || !tagIndexed || filtered) q.prefix = this.layout.checkpoints(threadId);
      let gte: string | undefined;
      let lt: string | undefined;
      if (checkpointId !== undefined) ({ gte, lt } = this.layout.checkpointAnyNs(threadId, checkpointId));
      if (beforeId !== undefined) {
        const bound = this.layout.checkpointsBefore(threadId, beforeId);
        if (lt === undefined || bound < lt) lt = bound;
      }
      if (gte !== undefined || lt !== undefined) q.idRange = { ...(gte !== undefined ? { gte } : {}), ...(lt !== undefined ? { lt } : {}) };
    } else {
      if (this.layout.prefix !== "") q.prefix = this.layout.prefix;
      where[CHECKPOINT_TAG] = ns !== undefined ? { prefix: `${JSON.stringify([ns]).slice(0, -1)},` } : { exists: true };
    }
    // Checkpoint ids that are UUIDs carry their time: `before` is also a time bound the indexes use.
    if (beforeId !== undefined) {
      const ms = checkpointTime(beforeId);
      if (ms > 0) q.before = ms + 1;
    }
    if (checkpointId !== undefined) {
      const ms = checkpointTime(checkpointId);
      q.after = ms - 1;
      q.before = Math.min(q.before ?? Number.POSITIVE_INFINITY, ms + 1);
    }
    if (Object.keys(where).length > 0) q.where = where;
    return q;
  }

  /**
   * The writes and seed of delta channels along the ancestors of a checkpoint (LangGraph's
   * `getDeltaChannelHistory`, same result as its default walk): the ancestors come by the causal
   * chain, a growing batch at a time, each batch's channel values in one getMany and its writes
   * in one query, instead of two reads per ancestor.
   */
  override async getDeltaChannelHistory(options: { config: RunnableConfig; channels: string[] }): Promise<Record<string, DeltaChannelHistory>> {
    const { config, channels } = options;
    if (channels.length === 0) return {};
    const threadId = text(configurableOf(config).thread_id, "config.configurable.thread_id");
    const result: Record<string, DeltaChannelHistory> = {};
    const collected = new Map<string, CheckpointPendingWrite[]>(channels.map((ch) => [ch, []]));
    const seeds = new Map<string, unknown>();
    if (threadId !== undefined) {
      const ns = nsOf(config) ?? "";
      const store = await this.#store;
      const checkpointId = checkpointIdOf(config);
      const target = checkpointId !== undefined ? await store.get(this.layout.checkpoint(threadId, ns, checkpointId)) : await this.#latestOf(store, threadId, ns);
      const remaining = new Set(channels);
      let cursor = target?.causalParent ?? null;
      let batch = 8;
      while (cursor !== null && remaining.size > 0) {
        const chain = (await store.causalChain(cursor, { tail: batch })).reverse(); // nearest first
        if (chain.length === 0) break;
        const decoded = await Promise.all(chain.map(async (datum): Promise<Decoded> => ({ datum, threadId, ns, body: await decode<CheckpointBody>(this.serde, datum) })));
        const [values, calls] = await Promise.all([this.#valuesOf(store, decoded, remaining), this.#writesOfMany(store, decoded, threadId)]);
        for (const d of decoded) {
          const writes = mergeCalls(calls.get(this.layout.writes(threadId, ns, d.body.checkpoint.id)) ?? []);
          for (let i = writes.length - 1; i >= 0; i--) {
            const write = writes[i] as CheckpointPendingWrite;
            if (remaining.has(write[1])) collected.get(write[1])?.push(write);
          }
          for (const ch of [...remaining]) {
            const version = d.body.checkpoint.channel_versions?.[ch];
            if (version !== undefined && d.body.values !== undefined && Object.hasOwn(d.body.values, ch)) {
              seeds.set(ch, d.body.values[ch]);
              remaining.delete(ch);
              continue;
            }
            const id = version === undefined ? null : this.layout.blob(threadId, ns, ch, version);
            if (id !== null && values.has(id)) {
              seeds.set(ch, values.get(id));
              remaining.delete(ch);
            }
          }
          if (remaining.size === 0) break;
        }
        cursor = (chain.at(-1) as Datum).causalParent;
        batch = Math.min(batch * 2, 256);
      }
    }
    for (const ch of channels) {
      const entry: DeltaChannelHistory = { writes: (collected.get(ch) ?? []).reverse() };
      if (seeds.has(ch)) entry.seed = seeds.get(ch);
      result[ch] = entry;
    }
    return result;
  }

  /** The newest checkpoint of a thread's namespace. */
  async #latestOf(store: Store, threadId: string, ns: string): Promise<Datum | null> {
    if (this.latest === "ref") {
      const ref = await store.refs.get(this.layout.latestRef(threadId, ns));
      return ref === null ? null : store.get(ref.target);
    }
    // An indexed tier seeks the tag's newest entry; a scanning one (object stores) walks the thread's own listing.
    const where = { [CHECKPOINT_TAG]: JSON.stringify([ns, threadId]) };
    const page = await store.query(indexed(store) ? { where, limit: 1 } : { prefix: this.layout.checkpoints(threadId), where, limit: 1 });
    return page.items[0] ?? null;
  }

  /** The channel values of checkpoints, by value id: one getMany for all of them. */
  async #valuesOf(store: Store, checkpoints: readonly Decoded[], only?: ReadonlySet<string>): Promise<Map<string, unknown>> {
    const ids = new Set<string>();
    for (const { threadId, ns, body } of checkpoints) {
      for (const [channel, version] of Object.entries(body.checkpoint.channel_versions ?? {})) {
        if ((only === undefined || only.has(channel)) && (body.values === undefined || (body.apart ?? []).includes(channel))) {
          ids.add(this.layout.blob(threadId, ns, channel, version));
        }
      }
    }
    const all = [...ids];
    const values = new Map<string, unknown>();
    for (let i = 0; i < all.length; i += BLOBS_PER_READ) {
      const found = await store.getMany(all.slice(i, i + BLOBS_PER_READ));
      await Promise.all(found.map(async (d) => d !== null && values.set(d.id, await decode(this.serde, d))));
    }
    return values;
  }

  /** Every writes datum of one checkpoint, decoded. */
  async #writesOf(store: Store, threadId: string, ns: string, checkpointId: string): Promise<WriteCall[]> {
    if (indexed(store)) return this.#readCalls(store, { where: { [WRITES_TAG]: JSON.stringify([ns, threadId, checkpointId]) } });
    // Object stores: the writes' own listing, from the checkpoint's instant (they share its createdAt).
    const ms = checkpointTime(checkpointId);
    return this.#readCalls(store, { prefix: this.layout.writes(threadId, ns, checkpointId), after: ms - 1, before: ms + 1 });
  }

  /** The writes of many checkpoints, by their writes prefix: one query (per 1000 checkpoints). */
  async #writesOfMany(store: Store, checkpoints: readonly Decoded[], threadId: string | undefined): Promise<Map<string, WriteCall[]>> {
    const byPrefix = new Map<string, WriteCall[]>();
    if (checkpoints.length === 0) return byPrefix;
    const times = checkpoints.map((d) => d.datum.createdAt);
    const keys = checkpoints.map((d) => JSON.stringify([d.ns, d.threadId, d.body.checkpoint.id]));
    // One checkpoint (a filtered `list`, mostly): an equality, which the SQL tiers plan as a plain index seek.
    const where = { [WRITES_TAG]: keys.length === 1 ? (keys[0] as string) : { in: keys } };
    const calls = await this.#readCalls(
      store,
      indexed(store)
        ? { where }
        : {
            prefix: threadId !== undefined ? `${this.layout.thread(threadId)}w/` : this.layout.prefix,
            where,
            after: Math.min(...times) - 1,
            before: Math.max(...times) + 1,
          },
    );
    for (const call of calls) {
      // `<writes prefix><task>/<generation>`
      const prefix = call.id.slice(0, call.id.lastIndexOf("/", call.id.lastIndexOf("/") - 1) + 1);
      const list = byPrefix.get(prefix) ?? [];
      list.push(call);
      byPrefix.set(prefix, list);
    }
    return byPrefix;
  }

  async #readCalls(store: Store, query: QueryOptions): Promise<WriteCall[]> {
    const calls: WriteCall[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Datum[]; cursor: string | null } = await store.query({ ...query, select: "full", order: "oldest", limit: WRITES_PAGE, ...(cursor !== null ? { cursor } : {}) });
      cursor = page.cursor;
      calls.push(...(await Promise.all(page.items.map(async (d) => callOf(d, await decode<CallBody>(this.serde, d))))));
    } while (cursor !== null);
    return calls;
  }

  async #tuple(store: Store, d: Decoded, values: ReadonlyMap<string, unknown>, calls: readonly WriteCall[]): Promise<CheckpointTuple> {
    const { threadId, ns, body } = d;
    const channelValues: Record<string, unknown> = { ...body.values };
    for (const [channel, version] of Object.entries(body.checkpoint.channel_versions ?? {})) {
      if (Object.hasOwn(channelValues, channel)) continue;
      const id = this.layout.blob(threadId, ns, channel, version);
      if (values.has(id)) channelValues[channel] = values.get(id);
    }
    const checkpoint = { ...body.checkpoint, channel_values: channelValues } as Checkpoint;
    if (checkpoint.v < 4 && body.parent !== null) await this.#migratePendingSends(store, checkpoint, threadId, ns, body.parent);
    const tuple: CheckpointTuple = {
      config: configOf(threadId, ns, body.checkpoint.id),
      checkpoint,
      metadata: body.metadata,
      pendingWrites: mergeCalls(calls),
    };
    if (body.parent !== null) tuple.parentConfig = configOf(threadId, ns, body.parent);
    return tuple;
  }

  /** Checkpoints before format 4 kept pending sends as the parent's writes to `__pregel_tasks`. */
  async #migratePendingSends(store: Store, checkpoint: Checkpoint, threadId: string, ns: string, parent: string): Promise<void> {
    const sends = mergeCalls(await this.#writesOf(store, threadId, ns, parent)).filter(([, channel]) => channel === lg.TASKS);
    const values = checkpoint.channel_values as Record<string, unknown>;
    values[lg.TASKS] = sends.map(([, , value]) => value);
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[lg.TASKS] = versions.length > 0 ? lg.maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  // ---- writing -------------------------------------------------------------------------------

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    const threadId = threadOf(config, "put");
    const ns = nsOf(config) ?? "";
    const parent = checkpointIdOf(config) ?? null;
    const id = checkpoint.id;
    const createdAt = checkpointTime(id);
    const { channel_values: values, ...rest } = checkpoint;
    const body: CheckpointBody = { checkpoint: rest, metadata, parent };
    const datumId = this.layout.checkpoint(threadId, ns, id);
    const parentId = parent !== null && parent !== id ? this.layout.checkpoint(threadId, ns, parent) : null;
    const store = await this.#store;
    const { encoded, datums, stored } = await this.#encodePut(store, threadId, ns, createdAt, body, (values ?? {}) as Record<string, unknown>, newVersions ?? {}, parentId);
    const tags: Record<string, string> = { ...encoded.tags, [CHECKPOINT_TAG]: JSON.stringify([ns, threadId]) };
    for (const [key, value] of Object.entries(metadata ?? {})) {
      const tag = valueTag(value);
      if (tag !== undefined && !key.includes("\u0000")) tags[METADATA_TAG_PREFIX + key] = tag;
    }
    const datum: Datum = { id: datumId, content: encoded.content, createdAt, causalParent: parentId, metadata: tags };
    const ref = this.latest === "ref" ? this.layout.latestRef(threadId, ns) : null;
    try {
      await this.#commit(store, datums, datum, ref, false);
    } catch (error) {
      if (!isConflict(error)) throw error;
      const conflicting = (error as { details?: { id?: unknown } }).details?.id;
      if (conflicting !== datumId) {
        // A channel value: its version was given another value before (a version not unique in the thread).
        throw dgentError(
          "DGENT_CONFLICT",
          `a channel value of thread ${JSON.stringify(threadId)} is already stored under the same version with other content (${String(conflicting)}); ` +
            "versions must be unique in a thread, as DgentSaver.getNextVersion makes them",
          { unit: INTEGRATION, cause: error, details: { thread_id: threadId, checkpoint_ns: ns, id: conflicting } },
        );
      }
      if (!store.capabilities.transactions) {
        throw dgentError(
          "DGENT_CONFLICT",
          `checkpoint ${JSON.stringify(id)} of thread ${JSON.stringify(threadId)} is already stored with other content, and this tier has no transactions to replace it atomically`,
          { unit: INTEGRATION, cause: error, details: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: id } },
        );
      }
      // The official savers replace a checkpoint put again under its id: so does this, atomically.
      await this.#commit(store, datums, datum, ref, true);
    }
    this.#remember(datumId, stored);
    const place = `${threadId}\u0000${ns}`;
    const before = this.#newest.get(place);
    if (before === undefined || createdAt > checkpointTime(before) || (createdAt === checkpointTime(before) && id > before)) {
      this.#newest.delete(place);
      this.#newest.set(place, id);
      if (this.#newest.size > NEWEST) this.#newest.delete(this.#newest.keys().next().value as string);
    }
    return configOf(threadId, ns, id);
  }

  /**
   * The checkpoint's content and the channel values stored apart (README "Channel values"). A
   * value in `newVersions` is serialized; at most `inlineLimit` bytes of JSON, it is spliced into
   * the checkpoint's JSON (`values`), else it is a datum of its own (`apart`). A value not in
   * `newVersions` is where the parent's record puts it at the same version: in `values` (the
   * parent's bytes, not serialized again), `apart`, or nowhere (never stored). So a checkpoint of
   * small channels is one datum, read whole by one `get`, and holds what the blob-per-version
   * layout would read for it.
   */
  async #encodePut(
    store: Store,
    threadId: string,
    ns: string,
    createdAt: number,
    body: CheckpointBody,
    values: Record<string, unknown>,
    newVersions: ChannelVersions,
    parentId: string | null,
  ): Promise<{ encoded: { content: Uint8Array; tags: Record<string, string> }; datums: Datum[]; stored: Stored | null }> {
    const datums: Datum[] = [];
    const blob = (channel: string, version: string | number, type: string, content: Uint8Array): void => {
      datums.push({ id: this.layout.blob(threadId, ns, channel, version), content, createdAt, causalParent: null, metadata: serdeTags(type) });
    };
    const changed = Object.keys(newVersions).filter((channel) => Object.hasOwn(values, channel));
    const encoded = await encode(this.serde, body);
    if (this.inlineLimit === 0 || Object.keys(encoded.tags).length > 0) {
      // The blob-per-version layout (also when the serde writes the checkpoint in another format than JSON).
      await Promise.all(
        changed.map(async (channel) => {
          const [type, content] = await dumpsTyped(this.serde, values[channel]);
          blob(channel, newVersions[channel] as string | number, type, content);
        }),
      );
      return { encoded, datums, stored: null };
    }
    const parentRecord = parentId === null ? null : (this.#recent.get(parentId) ?? (await this.#storedOf(store, parentId)));
    const versions = body.checkpoint.channel_versions ?? {};
    const inline = new Map<string, Uint8Array | { readonly value: unknown }>();
    const apart = new Set<string>();
    await Promise.all(
      changed.map(async (channel) => {
        const [type, content] = await dumpsTyped(this.serde, values[channel]);
        if (type === "json" && content.byteLength <= this.inlineLimit) inline.set(channel, content);
        else {
          blob(channel, newVersions[channel] as string | number, type, content);
          apart.add(channel);
        }
      }),
    );
    for (const [channel, version] of Object.entries(versions)) {
      if (Object.hasOwn(newVersions, channel)) continue;
      if (parentRecord === null || parentRecord.versions[channel] !== version) {
        apart.add(channel); // not known from the parent: read as the blob-per-version layout would
      } else if (parentRecord.inline.has(channel)) {
        inline.set(channel, parentRecord.inline.get(channel) as Uint8Array | { readonly value: unknown });
      } else if (parentRecord.apart.has(channel)) {
        apart.add(channel);
      }
    }
    const parts: Uint8Array[] = [];
    for (const [channel, held] of inline) {
      let bytes: Uint8Array;
      if (held instanceof Uint8Array) bytes = held;
      else {
        const [type, content] = await dumpsTyped(this.serde, Object.hasOwn(values, channel) ? values[channel] : held.value);
        if (type !== "json" || content.byteLength > this.inlineLimit) {
          // Another saver's record (another serde or limit): this value goes apart.
          blob(channel, versions[channel] as string | number, type, content);
          inline.delete(channel);
          apart.add(channel);
          continue;
        }
        bytes = content;
        inline.set(channel, bytes);
      }
      parts.push(Buffer.from(`${parts.length === 0 ? "" : ","}${JSON.stringify(channel)}:`), bytes);
    }
    // `{…}` + `,"values":{…},"apart":[…]}`: the JSON the serde would write for the body with them.
    const content = Buffer.concat([
      encoded.content.subarray(0, encoded.content.byteLength - 1),
      Buffer.from(',"values":{'),
      ...parts,
      Buffer.from(`},"apart":${JSON.stringify([...apart])}}`),
    ]);
    return { encoded: { content, tags: encoded.tags }, datums, stored: { versions: { ...versions }, inline, apart } };
  }

  /** The record of a stored checkpoint (the parent of a put this saver has not seen); `null` when absent or of the blob-per-version layout. */
  async #storedOf(store: Store, datumId: string): Promise<Stored | null> {
    const datum = await store.get(datumId);
    if (datum === null) return null;
    const body = await decode<CheckpointBody>(this.serde, datum);
    if (body.values === undefined) return null;
    const inline = new Map(Object.entries(body.values).map(([channel, value]) => [channel, { value }] as const));
    const stored: Stored = { versions: body.checkpoint.channel_versions ?? {}, inline, apart: new Set(body.apart ?? []) };
    this.#remember(datumId, stored);
    return stored;
  }

  #remember(datumId: string, stored: Stored | null): void {
    this.#recent.delete(datumId);
    if (stored === null) return;
    this.#recent.set(datumId, stored);
    if (this.#recent.size > RECENT) this.#recent.delete(this.#recent.keys().next().value as string);
  }

  /**
   * Puts channel values, then the checkpoint: all or nothing where the tier has transactions. With
   * `latest: "ref"` the thread's ref moves to the checkpoint in the same transaction, by
   * compare-and-set, and only forward: to a checkpoint id above the one it names (a fork made
   * from an old checkpoint has a new, higher id; a checkpoint put again does not move it).
   */
  async #commit(store: Store, blobs: readonly Datum[], checkpoint: Datum, ref: string | null, replace: boolean): Promise<void> {
    const id = checkpointIdIn(checkpoint.id);
    const move = async (): Promise<TxOp | null> => {
      const head = await store.refs.get(ref as string);
      if (head !== null && !(checkpointIdIn(head.target) < id)) return null;
      return { op: "setRef", name: ref as string, target: checkpoint.id, expect: head === null ? { absent: true } : { version: head.version } };
    };
    if (store.capabilities.transactions) {
      if (ref === null && !replace) {
        if (blobs.length === 0) await store.put(checkpoint);
        else await store.putMany([...blobs, checkpoint]);
        return;
      }
      for (let attempt = 1; ; attempt++) {
        const ops: TxOp[] = blobs.map((datum) => ({ op: "put", datum }) as const);
        if (replace) ops.push({ op: "delete", id: checkpoint.id });
        ops.push({ op: "put", datum: checkpoint });
        const moved = ref === null ? null : await move();
        if (moved !== null) ops.push(moved);
        try {
          await store.transaction(ops);
          return;
        } catch (error) {
          if (!isDgentError(error, "DGENT_REF_CONFLICT") || attempt >= WRITE_ATTEMPTS) throw error;
        }
      }
    }
    // Object stores: values first, so a checkpoint is never visible before what it reads.
    if (blobs.length > 0) await store.putMany(blobs);
    await store.put(checkpoint);
    for (let attempt = 1; ref !== null; attempt++) {
      const moved = await move();
      if (moved === null || moved.op !== "setRef") return;
      try {
        await store.refs.set(moved.name, moved.target, moved.expect ? { expect: moved.expect } : {});
        return;
      } catch (error) {
        if (!isDgentError(error, "DGENT_REF_CONFLICT") || attempt >= WRITE_ATTEMPTS) throw error;
      }
    }
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId = threadOf(config, "putWrites");
    const checkpointId = checkpointIdOf(config);
    if (checkpointId === undefined) invalid("putWrites: config.configurable.checkpoint_id is missing; writes belong to a checkpoint");
    const ns = nsOf(config) ?? "";
    if (typeof taskId !== "string") invalid(`putWrites: taskId must be a string, got ${typeof taskId}`);
    if (writes.length === 0) return;
    const entries = entriesOf(writes);
    const store = await this.#store;
    const prefix = this.layout.taskWrites(threadId, ns, checkpointId, taskId);
    const make = async (generation: number, list: readonly WriteEntry[]): Promise<Datum> => {
      const body: CallBody = { t: taskId, p: taskPath ?? "", w: list };
      const { content, tags } = await encode(this.serde, body);
      return {
        id: `${prefix}${generation}`,
        content,
        createdAt: checkpointTime(checkpointId),
        causalParent: this.layout.checkpoint(threadId, ns, checkpointId),
        metadata: { ...tags, [WRITES_TAG]: JSON.stringify([ns, threadId, checkpointId]) },
      };
    };
    // Regular writes only (a task's result): generation 0, first write wins, one put.
    if (entries.every(([idx]) => idx >= 0)) {
      try {
        await store.put(await make(0, entries));
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    let lastError: unknown = null;
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const stored = await this.#readCalls(store, { prefix, after: checkpointTime(checkpointId) - 1, before: checkpointTime(checkpointId) + 1 });
      const add = newEntries(stored, entries);
      if (add.length === 0) return;
      const generation = stored.reduce((max, c) => Math.max(max, c.generation), -1) + 1;
      const datum = await make(generation, add);
      const dropped = supersededBy(stored, { id: datum.id, taskId, taskPath: taskPath ?? "", generation, entries: add });
      try {
        if (store.capabilities.transactions) {
          await store.transaction([{ op: "put", datum }, ...dropped.map((c) => ({ op: "delete", id: c.id }) as const)]);
        } else {
          // One object is the whole call: readers see the new generation at once, and skip the
          // generations it supersedes until they are gone.
          await store.put(datum);
          for (const c of dropped) await store.delete(c.id);
        }
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
        lastError = error; // another writer took this generation: read again
      }
    }
    throw dgentError("DGENT_CONFLICT", `putWrites of task ${JSON.stringify(taskId)} lost ${WRITE_ATTEMPTS} races for a generation of its writes`, {
      unit: INTEGRATION,
      cause: lastError,
    });
  }

  /** Deletes every checkpoint, value, write and ref of a thread: one transaction where the tier has them. */
  async deleteThread(threadId: string): Promise<void> {
    const id = text(threadId, "threadId");
    if (id === undefined || id === "") invalid("deleteThread: threadId is missing");
    const store = await this.#store;
    const prefix = this.layout.thread(id);
    for (const key of [...this.#recent.keys()]) if (key.startsWith(prefix)) this.#recent.delete(key);
    for (const key of [...this.#newest.keys()]) if (key.startsWith(`${id}\u0000`)) this.#newest.delete(key);
    if (store.capabilities.refs) {
      const refs = await store.refs.list(prefix);
      if (refs.length > 0) {
        if (store.capabilities.transactions) await store.transaction(refs.map((r) => ({ op: "deleteRef", name: r.name }) as const));
        else for (const r of refs) await store.refs.delete(r.name);
      }
    }
    await store.deleteMany({ prefix });
  }
}
