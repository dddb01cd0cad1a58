import { randomBytes } from "node:crypto";
import { walkCausalChain } from "../../core/causal.js";
import { sameValue, type Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { Lifecycle } from "../../core/lifecycle.js";
import type {
  Adapter,
  AdapterContext,
  AdapterEvents,
  AdapterStats,
  Capabilities,
  ResolvedListOptions,
} from "../../core/protocol.js";
import type { Ref, RefExpectation, RefMove, ReflogEntry } from "../../core/refs.js";
import type { DatumHeader, ResolvedQuery } from "../../core/query.js";
import { walkTail } from "../../core/router-query.js";
import { conflictError } from "../../core/tiers.js";
import type { ListedObject, ObjectBackend } from "./backend.js";
import { decodeEnvelope, encodeEnvelope } from "./envelope.js";
import { KeyLayout, sha256Hex, timeKey } from "./keys.js";
import { listNewestFirst, mapLimit } from "./list.js";
import { loadManifest } from "./manifest.js";
import type { ObjectStoreConfig } from "./options.js";
import { countMatching, deleteMatching, newTally, queryPage, type QueryContext, type QueryTally } from "./query.js";
import { ObjectRefs, refsPrefix, type RefsContext } from "./refs.js";
import { withRetry } from "./retry.js";

/** Facts shared by the object-store tiers. */
export const OBJECT_STORE_CAPABILITIES: Capabilities = Object.freeze({
  persistent: true,
  multiProcess: true,
  nativeCausalChain: false,
  batch: false,
  scan: true,
  evicts: false,
  // Queries are native, but a tag or parent filter reads the envelope of every datum it walks.
  query: true,
  queryCost: "scan",
});

/** How a concrete tier (s3, gcs) plugs into the shared logic. */
export interface ObjectStoreTier {
  readonly name: string;
  readonly rank: number;
  readonly config: ObjectStoreConfig;
  /**
   * The backend implements `read` and `write` (conditional writes on a version), so the tier
   * declares `capabilities.refs`. Never `transactions`: an object store has no multi-object atomicity.
   */
  readonly refs?: boolean;
  /** Imports the SDK and builds the backend; called once, by the first `open`. */
  connect(): Promise<ObjectBackend>;
}

const NO_EVENTS: AdapterEvents = { evicted: () => undefined, warning: () => undefined, change: () => undefined };
const PROBE_TIMEOUT_MS = 3000;

interface Connection {
  readonly backend: ObjectBackend;
  readonly layout: KeyLayout;
  /** Null when the tier does not declare refs. */
  readonly refs: ObjectRefs | null;
}

/**
 * The protocol on an object store: datums as create-only objects, a time index of small marker
 * objects for `list`, parents walked with `get`. See adapters/object-store/README.md.
 */
export class ObjectStoreAdapter implements Adapter {
  readonly name: string;
  readonly rank: number;
  readonly capabilities: Capabilities;
  readonly #tier: ObjectStoreTier;
  readonly #life: Lifecycle;
  #events: AdapterEvents = NO_EVENTS;
  #connection: Connection | null = null;

  constructor(tier: ObjectStoreTier) {
    this.#tier = tier;
    this.name = tier.name;
    this.rank = tier.rank;
    this.capabilities = tier.refs ? Object.freeze({ ...OBJECT_STORE_CAPABILITIES, refs: true }) : OBJECT_STORE_CAPABILITIES;
    this.#life = new Lifecycle(tier.name);
  }

  /** `<prefix><namespace>/`: where this instance's objects live in the bucket. */
  get root(): string {
    return this.#tier.config.root;
  }

  /** The key layout, once open (tests and tools use it to find objects). */
  get layout(): KeyLayout | null {
    return this.#connection?.layout ?? null;
  }

  open(context?: AdapterContext): Promise<void> {
    return this.#life.open(() => this.#connect(context));
  }

  async #connect(context?: AdapterContext): Promise<void> {
    const { config } = this.#tier;
    const backend = await this.#tier.connect();
    try {
      await this.#attempt(() => backend.open(config.createBucket));
      const probe = new KeyLayout(config.root, 0);
      const manifest = await loadManifest(backend, probe.manifestKey, config.indexDepth, this.name, (fn) => this.#attempt(fn));
      this.#connection = { backend, layout: new KeyLayout(config.root, manifest.indexDepth), refs: this.#refsOn(backend) };
    } catch (error) {
      await backend.close().catch(() => undefined);
      throw error;
    }
    this.#events = context?.events ?? NO_EVENTS;
  }

  #refsOn(backend: ObjectBackend): ObjectRefs | null {
    if (!this.#tier.refs) return null;
    if (backend.read === undefined || backend.write === undefined) {
      throw dgentError("DGENT_BACKEND_ERROR", `the ${this.name} tier declares refs but its backend has no read/write (conditional writes)`, { unit: this.name });
    }
    return new ObjectRefs({
      backend: backend as RefsContext["backend"],
      prefix: refsPrefix(this.#tier.config.root),
      unit: this.name,
      concurrency: this.#tier.config.concurrency,
      attempt: (fn) => this.#attempt(fn),
    });
  }

  close(): Promise<void> {
    return this.#life.close(() => this.#release());
  }

  async #release(): Promise<void> {
    const connection = this.#connection;
    this.#connection = null;
    if (connection) await connection.backend.close();
  }

  #open(): Connection {
    this.#life.check();
    return this.#connection as Connection;
  }

  #attempt<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(this.#tier.config.retry, fn);
  }

  async put(datum: Datum): Promise<string> {
    const { backend, layout } = this.#open();
    const body = encodeEnvelope(datum);
    const key = layout.dataKey(datum.id);
    const markers = layout.markerKeys(datum.id, datum.createdAt);
    // Markers first, then the datum with a create-only precondition: the index always covers
    // every datum, and a writer that dies in between leaves only a marker that readers skip.
    for (let round = 1; ; round++) {
      const started = Date.now();
      const versions = await Promise.all(markers.map((m) => this.#attempt(() => backend.put(m, nonce()))));
      if (await this.#attempt(() => backend.create(key, body))) {
        // A very slow upload could outlive the repair grace of its markers: write them again.
        if (Date.now() - started > this.#tier.config.repairAfterMs / 2) {
          await Promise.all(markers.map((m) => this.#attempt(() => backend.put(m, nonce()))));
        }
        return datum.id;
      }
      const existing = await this.#read(datum.id);
      if (existing === null) {
        if (round < 3) continue; // deleted between our 412 and our read: try again
        throw dgentError("DGENT_UNAVAILABLE", `put of ${JSON.stringify(datum.id)} kept racing with deletes of the same id`, {
          unit: this.name,
        });
      }
      if (timeKey(existing.createdAt) !== timeKey(datum.createdAt)) {
        // Our markers point at a time the stored datum does not have: take back exactly the
        // versions we wrote, so a concurrent writer's fresh marker under the same key survives.
        await this.#dropMarkers(markers.map((k, i) => ({ key: k, version: versions[i] as string })));
      }
      if (sameValue(existing, datum)) return datum.id;
      throw conflictError(datum.id, this.name);
    }
  }

  async get(id: string): Promise<Datum | null> {
    return this.#read(id);
  }

  async #read(id: string): Promise<Datum | null> {
    const datum = await this.#readKey(this.#open().layout.dataKey(id));
    if (datum !== null && datum.id !== id) {
      throw dgentError("DGENT_BACKEND_ERROR", `the object for ${JSON.stringify(id)} holds ${JSON.stringify(datum.id)}`, {
        unit: this.name,
      });
    }
    return datum;
  }

  async #readKey(key: string): Promise<Datum | null> {
    const { backend } = this.#open();
    const body = await this.#attempt(() => backend.get(key));
    return body === null ? null : decodeEnvelope(body, `${backend.location}/${key}`, this.name);
  }

  async delete(id: string): Promise<boolean> {
    const { backend, layout } = this.#open();
    // The datum only: its markers now point at nothing, which `list` skips and later repairs.
    // Deleting them here could race with a put of the same id and time and unindex it.
    return this.#attempt(() => backend.delete(layout.dataKey(id)));
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    const { backend, layout } = this.#open();
    const result = await listNewestFirst(
      {
        backend,
        layout,
        concurrency: this.#tier.config.concurrency,
        attempt: (fn) => this.#attempt(fn),
        readKey: (key) => this.#readKey(key),
      },
      options,
    );
    if (result.garbage.length > 0) await this.#repair(result.garbage);
    return result.datums;
  }

  /** Deletes markers that point at nothing, once they are older than the repair grace. */
  async #repair(garbage: readonly ListedObject[]): Promise<void> {
    const cutoff = Date.now() - this.#tier.config.repairAfterMs;
    await this.#dropMarkers(garbage.filter((m) => m.modifiedAt <= cutoff));
  }

  async #dropMarkers(markers: readonly { key: string; version: string }[]): Promise<void> {
    const { backend } = this.#open();
    const settled = await Promise.allSettled(markers.map((m) => this.#attempt(() => backend.delete(m.key, m.version))));
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed.length > 0) {
      this.#events.warning(`could not delete ${failed.length} stale index marker(s); a later list will try again`, {
        unit: this.name,
        error: String((failed[0]?.reason as Error)?.message ?? failed[0]?.reason),
      });
    }
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#open();
    return walkCausalChain(id, (next) => this.#read(next), maxDepth, this.name);
  }

  /** With `capabilities.query`: one page, walking one directory's time index (query.ts). */
  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    return this.#querying((ctx, tally) => queryPage(ctx, q, tally));
  }

  async count(q: ResolvedQuery): Promise<number> {
    return this.#querying((ctx, tally) => countMatching(ctx, q, tally));
  }

  /** Not atomic: found by a walk, then deleted in batches (S3) or one by one (see query.ts). */
  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    return this.#querying((ctx, tally) => deleteMatching(ctx, q, tally));
  }

  /** One GET per distinct id, `concurrency` at a time: an object store has no multi-object read. */
  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    this.#open();
    const distinct = [...new Set(ids)];
    const found = await mapLimit(distinct, this.#tier.config.concurrency, (id) => this.#read(id));
    const byId = new Map(distinct.map((id, i) => [id, found[i] ?? null]));
    const given = new Set<string>();
    // A repeated id gets its own copy: no two slots share an object a caller might change.
    return ids.map((id) => {
      const d = byId.get(id) ?? null;
      if (d === null || !given.has(id)) {
        given.add(id);
        return d;
      }
      return { ...d, content: d.content.slice(), metadata: { ...d.metadata } };
    });
  }

  /** `n` GETs at most, one per step back: the depth limit never applies. */
  async chainTail(id: string, n: number): Promise<Datum[]> {
    this.#open();
    return walkTail(id, (next) => this.#read(next), n, this.name);
  }

  async #querying<T>(run: (ctx: QueryContext, tally: QueryTally) => Promise<T>): Promise<T> {
    const { backend, layout } = this.#open();
    const tally = newTally();
    const ctx: QueryContext = {
      backend,
      layout,
      concurrency: this.#tier.config.concurrency,
      unit: this.name,
      attempt: (fn) => this.#attempt(fn),
    };
    const result = await run(ctx, tally);
    if (tally.garbage.length > 0) await this.#repair(tally.garbage);
    return result;
  }

  async *scan(): AsyncIterable<Datum> {
    const { backend, layout } = this.#open();
    let cursor: string | null = null;
    do {
      const page = await this.#attempt(() => backend.list(layout.dataPrefix, cursor, 1000));
      const datums = await mapLimit(page.objects, this.#tier.config.concurrency, async (o) => {
        const hash = layout.hashOfDataKey(o.key);
        if (hash === null) return null;
        const datum = await this.#readKey(o.key);
        return datum !== null && sha256Hex(datum.id) === hash ? datum : null;
      });
      for (const d of datums) if (d !== null) yield d;
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /** Counts datums by listing the data keys: one request per 1000 datums. */
  async stats(): Promise<AdapterStats> {
    const { backend, layout } = this.#open();
    let count = 0;
    let bytes = 0;
    let cursor: string | null = null;
    do {
      const page = await this.#attempt(() => backend.list(layout.dataPrefix, cursor, 1000));
      for (const o of page.objects) {
        if (layout.hashOfDataKey(o.key) === null) continue;
        count++;
        bytes += o.size;
      }
      cursor = page.cursor;
    } while (cursor !== null);
    return { count, bytes };
  }

  /** With `capabilities.refs`: refs are objects moved by conditional writes (see refs.ts). */
  async getRef(name: string): Promise<Ref | null> {
    return this.#refs().get(name);
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    return this.#refs().list(prefix);
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    return this.#refs().reflog(name, limit);
  }

  async setRef(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    return this.#refs().set(name, target, expect, move);
  }

  async deleteRef(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    return this.#refs().delete(name, expect, move);
  }

  #refs(): ObjectRefs {
    const refs = this.#open().refs;
    if (refs === null) {
      throw dgentError("DGENT_UNSUPPORTED", `the ${this.name} tier does not support refs (its capabilities.refs is false)`, {
        unit: this.name,
        details: { tier: this.name, capability: "refs" },
      });
    }
    return refs;
  }

  async probe(): Promise<boolean> {
    const connection = this.#connection;
    if (!this.#life.isOpen || connection === null) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([connection.backend.ping().then(() => true, () => false), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function nonce(): Buffer {
  return Buffer.from(randomBytes(8).toString("hex"), "latin1");
}
