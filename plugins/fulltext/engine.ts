/**
 * The full-text index of one store: the storage it lives in, the hooks that keep it current, and
 * the catch-up that makes it agree with the datums after a crash, a restart, or writes made while
 * nothing was indexing.
 */
import type { Datum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import { filtersNothing, resolveQuery, type DatumHeader, type QueryFilter, type ResolvedQuery } from "../../core/query.js";
import type { Store } from "../../core/store.js";
import { MemoryStorage, PostgresFtsStorage, PostgresImpactStorage, SqliteFtsStorage, type FtsStorage, type StorageKind } from "./storage.js";
import { queryTerms, type Hit } from "./tokens.js";

const UNIT = "fulltext";
const MAX_K = 1000;
/** Ids of other plugins' own datums (recall's vectors and artefacts): never text of the user's. */
const RESERVED = ["dgent.vec/"];

export interface FulltextConfig {
  readonly prefix: string;
  readonly field: string | null;
  readonly text: ((datum: Datum) => string | null) | null;
  readonly storage: "auto" | StorageKind;
  readonly postgresUrl: string | null;
  readonly language: string;
  readonly batchSize: number;
}

export interface TextSearchOptions {
  /** How many results, 1–1000 (default 10). */
  readonly k?: number;
  /** Only datums meeting these filters (core/QUERIES.md), applied during the search. */
  readonly filter?: QueryFilter;
}

export interface CatchUpReport {
  readonly checked: number;
  /** Datums (re)indexed because they were missing or stale. */
  readonly indexed: number;
  /** Entries whose datum is gone, removed. */
  readonly removed: number;
  readonly ms: number;
}

export interface FulltextStats {
  readonly storage: StorageKind | null;
  readonly storageNote: string | null;
  readonly attached: boolean;
  /** Datums indexed (text or not). */
  readonly entries: number;
  readonly lastCatchUp: CatchUpReport | null;
}

function invalidQuery(field: string, message: string): Error {
  return dgentError("DGENT_INVALID_QUERY", `${field}: ${message}`, { unit: UNIT, details: { field } });
}

export function checkSearchOptions(options: TextSearchOptions | undefined): { k: number; q: ResolvedQuery | null; filter: QueryFilter | null } {
  const o = options ?? {};
  if (typeof o !== "object" || o === null) throw invalidQuery("options", "must be an object");
  for (const key of Object.keys(o)) if (!["k", "filter"].includes(key)) throw invalidQuery(key, "unknown search option (k, filter)");
  const k = o.k ?? 10;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw invalidQuery("k", `must be an integer from 1 to ${MAX_K}, got ${String(k)}`);
  if (o.filter === undefined) return { k, q: null, filter: null };
  const q = resolveQuery(o.filter, { paged: false });
  return filtersNothing(q) ? { k, q: null, filter: null } : { k, q, filter: o.filter };
}

async function idsMeeting(store: Store, filter: QueryFilter): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: string[]; cursor: string | null } = await store.query({ ...filter, select: "ids", limit: 5000, ...(cursor ? { cursor } : {}) });
    ids.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return ids;
}

export class FulltextIndex {
  readonly config: FulltextConfig;
  readonly #warn: (message: string) => void;
  #store: Store | null = null;
  #storage: FtsStorage | null = null;
  #storageOpen: Promise<FtsStorage> | null = null;
  #storageNote: string | null = null;
  #ready: Promise<void> | null = null;
  #closed = false;
  readonly #catalog = new Map<string, number>();
  #touched: Set<string> | null = null;
  #lastCatchUp: CatchUpReport | null = null;
  #jobs: Promise<void> = Promise.resolve();

  constructor(config: FulltextConfig, warn: (message: string) => void) {
    this.config = config;
    this.#warn = warn;
  }

  attach(store: Store): Promise<void> {
    if (this.#store !== null && this.#store !== store) return Promise.reject(dgentError("DGENT_INVALID_OPTIONS", "this fulltext plugin is already attached to another store", { unit: UNIT }));
    if (this.#closed) return Promise.reject(dgentError("DGENT_CLOSED", "the store of this fulltext plugin is closed", { unit: UNIT }));
    this.#store = store;
    this.#ready ??= this.#attach(store).catch((error: unknown) => {
      this.#ready = null;
      this.#store = null;
      this.#storageOpen = null;
      throw error;
    });
    return this.#ready;
  }

  async #attach(store: Store): Promise<void> {
    this.#touched = new Set();
    this.#storageOpen = this.#openStorage(store);
    this.#storage = await this.#storageOpen;
    for (const [id, at] of await this.#storage.load()) if (!this.#touched.has(id)) this.#catalog.set(id, at);
    await this.#catchUp(store);
  }

  async #openStorage(store: Store): Promise<FtsStorage> {
    const { storage: wanted, postgresUrl, language } = this.config;
    const tiers = store.tiers;
    const only = tiers.length === 1 ? (tiers[0] as { name: string; path?: unknown; schema?: unknown }) : null;
    const sqlitePath = only?.name === "sqlite" && typeof only.path === "string" && only.path !== ":memory:" ? only.path : null;
    const pgSchema = only && only.name.startsWith("postgres") && typeof only.schema === "string" ? only.schema : null;
    if (wanted === "sqlite" || (wanted === "auto" && sqlitePath !== null)) {
      if (sqlitePath === null) throw dgentError("DGENT_UNSUPPORTED", 'storage "sqlite" needs a store whose one tier is SQLite with a file (not :memory:)', { unit: UNIT });
      return SqliteFtsStorage.open(`${sqlitePath}-fulltext`);
    }
    if (wanted === "postgres" || (wanted === "auto" && pgSchema !== null && postgresUrl !== null)) {
      if (pgSchema === null || postgresUrl === null) throw dgentError("DGENT_UNSUPPORTED", 'storage "postgres" needs a store whose one tier is Postgres, and the postgresUrl option', { unit: UNIT });
      // `simple` (no stemming): impact-ordered postings and BM25; another configuration stems, which only to_tsvector does.
      return language === "simple" ? PostgresImpactStorage.open(postgresUrl, pgSchema) : PostgresFtsStorage.open(postgresUrl, pgSchema, language);
    }
    if (wanted === "auto" && pgSchema !== null) this.#storageNote = "the postgres storage is not used without the postgresUrl option: the index is kept in process";
    return new MemoryStorage();
  }

  #indexable(id: string): boolean {
    return id.startsWith(this.config.prefix) && !RESERVED.some((r) => id.startsWith(r));
  }

  /** The text of a datum, or null when it has none (documented in the README). */
  textOf(d: Datum): string | null {
    if (this.config.text) return this.config.text(d);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(d.content);
    } catch {
      return null;
    }
    if (this.config.field !== null) {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        return null;
      }
      for (const part of this.config.field.split(".")) {
        value = value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>)[part] : undefined;
      }
      text = typeof value === "string" ? value : "";
    }
    return text.trim().length > 0 ? text : null;
  }

  /** Compares the index with the datums (headers only), indexes what is missing or stale, removes what is gone. */
  async #catchUp(store: Store): Promise<CatchUpReport> {
    const started = performance.now();
    const touched = (this.#touched ??= new Set());
    const storage = this.#storage as FtsStorage;
    const memory = storage.kind === "memory";
    const seen = new Set<string>();
    let checked = 0;
    let indexed = 0;
    let pending: string[] = [];
    const flush = async (): Promise<void> => {
      const ids = pending.filter((id) => !touched.has(id));
      pending = [];
      if (ids.length === 0) return;
      const items: Array<{ header: Datum; text: string | null }> = [];
      for (const d of await store.getMany(ids)) if (d !== null && !touched.has(d.id)) items.push({ header: d, text: this.textOf(d) });
      await storage.putMany(items);
      for (const { header } of items) {
        // A put or delete of the same id during the write: its hook may have written first; write its current state again.
        if (touched.has(header.id)) {
          const now = await store.get(header.id);
          if (now === null) await storage.delete(header.id);
          else if (this.#catalog.get(header.id) === now.createdAt) await storage.put(now, this.textOf(now));
          continue;
        }
        this.#catalog.set(header.id, header.createdAt);
        indexed++;
      }
    };
    let cursor: string | null = null;
    // The in-process index is rebuilt from full pages (one read); the others read headers, then the stale contents.
    do {
      const page: { items: Array<Datum | DatumHeader>; cursor: string | null } = await store.query({ prefix: this.config.prefix, select: memory ? "full" : "meta", order: "oldest", limit: 5000, ...(cursor ? { cursor } : {}) });
      for (const h of page.items) {
        if (!this.#indexable(h.id)) continue;
        checked++;
        seen.add(h.id);
        if (touched.has(h.id) || this.#catalog.get(h.id) === h.createdAt) continue;
        if (memory) {
          await storage.put(h, this.textOf(h as Datum));
          this.#catalog.set(h.id, h.createdAt);
          indexed++;
          continue;
        }
        pending.push(h.id);
        if (pending.length >= this.config.batchSize) await flush();
      }
      cursor = page.cursor;
    } while (cursor);
    await flush();
    if (indexed >= 1000) await storage.optimize?.();
    let removed = 0;
    for (const id of [...this.#catalog.keys()]) {
      if (seen.has(id) || touched.has(id)) continue;
      this.#catalog.delete(id);
      await storage.delete(id);
      removed++;
    }
    this.#touched = null;
    const report = { checked, indexed, removed, ms: performance.now() - started };
    this.#lastCatchUp = report;
    return report;
  }

  async onPut(stored: Datum, input: Datum): Promise<void> {
    const id = stored.id;
    if (!this.#indexable(id) || this.#store === null) return;
    this.#touched?.add(id);
    if (this.#catalog.get(id) === stored.createdAt) return;
    const text = this.textOf(input);
    const storage = await (this.#storageOpen as Promise<FtsStorage>);
    this.#catalog.set(id, stored.createdAt);
    try {
      await storage.put(stored, text);
    } catch (error) {
      this.#catalog.delete(id);
      if (!isDgentError(error, "DGENT_CLOSED")) throw error;
    }
  }

  async onDelete(id: string): Promise<void> {
    if (!this.#indexable(id) || this.#store === null) return;
    this.#touched?.add(id);
    const storage = await (this.#storageOpen as Promise<FtsStorage>);
    this.#catalog.delete(id);
    await storage.delete(id);
  }

  /** Another process's change (Postgres LISTEN/NOTIFY), applied in the background. */
  onExternal(op: "put" | "delete", id: string): void {
    const store = this.#store;
    if (!this.#indexable(id) || store === null) return;
    this.#touched?.add(id);
    this.#jobs = this.#jobs
      .then(async () => {
        await this.#ready;
        const storage = this.#storage as FtsStorage;
        if (op === "delete") {
          this.#catalog.delete(id);
          if (storage.kind === "memory") await storage.delete(id);
          return;
        }
        const d = await store.get(id);
        if (d === null || this.#catalog.get(id) === d.createdAt) return;
        this.#catalog.set(id, d.createdAt);
        if (storage.kind === "memory") await storage.put(d, this.textOf(d));
      })
      .catch((error: unknown) => this.#warn(`could not apply another process's ${op} of ${JSON.stringify(id)}: ${(error as Error)?.message ?? String(error)}`));
  }

  async search(query: string, options?: TextSearchOptions): Promise<Hit[]> {
    const { k, q, filter } = checkSearchOptions(options);
    if (typeof query !== "string") throw invalidQuery("query", "must be a string");
    const store = this.#requireStore();
    await this.#ready;
    const storage = this.#storage as FtsStorage;
    const terms = queryTerms(query);
    if (terms.length === 0) return [];
    if (q === null || filter === null) return storage.search(terms, k, null, null);
    if (storage.filtersByHeader) return storage.search(terms, k, null, q);
    return storage.search(terms, k, await idsMeeting(store, filter), null);
  }

  #requireStore(): Store {
    if (this.#store === null) throw dgentError("DGENT_NOT_OPEN", "the fulltext plugin is not attached to its store yet: call `await textIndex(store)` (or `handle.attach(store)`) once after creating the store", { unit: UNIT });
    return this.#store;
  }

  async reindex(full: boolean): Promise<CatchUpReport> {
    const store = this.#requireStore();
    await this.#ready;
    await this.idle();
    if (full) {
      await (this.#storage as FtsStorage).drop();
      this.#catalog.clear();
    }
    return this.#catchUp(store);
  }

  async idle(): Promise<void> {
    let last: Promise<void>;
    do {
      last = this.#jobs;
      await last;
    } while (last !== this.#jobs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
    await this.#storage?.close();
  }

  stats(): FulltextStats {
    return { storage: this.#storage?.kind ?? null, storageNote: this.#storageNote, attached: this.#store !== null, entries: this.#catalog.size, lastCatchUp: this.#lastCatchUp };
  }
}
