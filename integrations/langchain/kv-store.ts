/**
 * LangChain's key-value `BaseStore<string, Uint8Array>` on a dgent store: a key is the datum
 * `<prefix><key>` (with `%`, control characters and lone surrogates escaped), its value the
 * datum's content. `mget` is one `getMany`; `mset` and `mdelete` are one transaction on tiers
 * that have them; `yieldKeys` pages through the ids under the prefix.
 */
import { dgentError, isDgentError } from "../../core/errors.js";
import { makeDatum } from "../../core/datum.js";
import type { TxOp } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import { CODEC_KEY } from "../../patterns/codec/codec.js";
import { StoreHandle, type StoreSource } from "./connect.js";
import { INTEGRATION, lc } from "./peers.js";

/** Where keys live by default: `langchain/kv/<key>`. */
export const DEFAULT_KV_PREFIX = "langchain/kv/";
/** Ids per `getMany` (the store's limit). */
const GET_MANY = 10_000;
/** Ids per page of `yieldKeys`. */
const KEYS_PAGE = 1_000;
/** Tries of a delete-then-put on a tier without transactions when another writer puts the key in between. */
const OVERWRITE_TRIES = 16;

export interface DgentKVStoreInput extends StoreSource {
  /** Ids start with it (default `langchain/kv/`): two stores with different prefixes never see each other's keys. */
  keyPrefix?: string;
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f%]/g;

/** A key as it appears in an id: `%` → `%25`, a control character → `%XX`, a lone surrogate → `%uXXXX`. */
export function escapeStoreKey(key: string): string {
  const escaped = key.replace(CONTROL, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return escaped.isWellFormed() ? escaped : escaped.replace(/[\ud800-\udfff]/g, (c, i: number, s: string) => (isLone(s, i) ? `%u${c.charCodeAt(0).toString(16)}` : c));
}

/** The inverse of `escapeStoreKey`. */
export function unescapeStoreKey(escaped: string): string {
  return escaped.replace(/%(u[0-9a-f]{4}|[0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex.startsWith("u") ? hex.slice(1) : hex, 16)));
}

/** The bytes as a plain `Uint8Array` (a tier may hand out a Buffer): a view, not a copy. */
function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function isLone(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff) return !(i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff);
  return !(i > 0 && s.charCodeAt(i - 1) >= 0xd800 && s.charCodeAt(i - 1) <= 0xdbff);
}

/**
 * A `BaseStore<string, Uint8Array>` on dgent: `new DgentKVStore({ store })`,
 * `{ url: "sqlite:///…" }`, or `{}` for the embedded default.
 */
export class DgentKVStore extends lc.stores.BaseStore<string, Uint8Array> {
  lc_namespace = ["langchain", "storage", "dgent"];

  readonly keyPrefix: string;
  readonly #handle: StoreHandle;
  #noTransactions = false;

  constructor(fields: DgentKVStoreInput = {}) {
    super(fields);
    this.#handle = new StoreHandle(fields, INTEGRATION);
    this.keyPrefix = fields.keyPrefix ?? DEFAULT_KV_PREFIX;
  }

  /** A key-value store on the one tier `url` names, opened now; `close()` closes it. */
  static async fromUrl(url: string, fields: Omit<DgentKVStoreInput, "url" | "store"> = {}): Promise<DgentKVStore> {
    const kv = new DgentKVStore({ ...fields, url });
    await kv.store();
    return kv;
  }

  /** The store the keys live in. */
  store(): Promise<Store> {
    return this.#handle.get();
  }

  #id(key: string): string {
    if (typeof key !== "string") throw dgentError("DGENT_INVALID_OPTIONS", `a key is a string, got ${typeof key}`, { unit: INTEGRATION });
    return this.keyPrefix + escapeStoreKey(key);
  }

  /** The values of `keys`, in order, `undefined` where there is none: one `getMany` (per 10 000 keys). */
  async mget(keys: string[]): Promise<(Uint8Array | undefined)[]> {
    const store = await this.store();
    const ids = keys.map((k) => this.#id(k));
    const out: (Uint8Array | undefined)[] = [];
    for (let i = 0; i < ids.length; i += GET_MANY) {
      for (const datum of await store.getMany(ids.slice(i, i + GET_MANY))) out.push(datum === null ? undefined : plain(datum.content));
    }
    return out;
  }

  /** Sets every pair (the last one wins for a key given twice): one transaction where the tier has them. */
  async mset(keyValuePairs: [string, Uint8Array][]): Promise<void> {
    const byId = new Map<string, Uint8Array>();
    for (const [key, value] of keyValuePairs) {
      if (!(value instanceof Uint8Array)) throw dgentError("DGENT_INVALID_CONTENT", `the value of key ${JSON.stringify(key)} is not a Uint8Array`, { unit: INTEGRATION });
      const id = this.#id(key);
      byId.delete(id);
      byId.set(id, value);
    }
    if (byId.size === 0) return;
    const datums = [...byId].map(([id, content]) => makeDatum({ id, content, metadata: { [CODEC_KEY]: "bytes" } }));
    const store = await this.store();
    if (await this.#transact(store, datums.flatMap((datum): TxOp[] => [{ op: "delete", id: datum.id }, { op: "put", datum }]))) return;
    for (const datum of datums) {
      for (let attempt = 1; ; attempt++) {
        await store.delete(datum.id);
        try {
          await store.put(datum);
          break;
        } catch (error) {
          // Another writer set the key between the delete and the put: the later write wins.
          if (!isDgentError(error, "DGENT_CONFLICT") || attempt >= OVERWRITE_TRIES) throw error;
        }
      }
    }
  }

  /** Deletes the keys (missing ones are fine): one transaction where the tier has them. */
  async mdelete(keys: string[]): Promise<void> {
    const ids = [...new Set(keys.map((k) => this.#id(k)))];
    if (ids.length === 0) return;
    const store = await this.store();
    if (await this.#transact(store, ids.map((id): TxOp => ({ op: "delete", id })))) return;
    for (const id of ids) await store.delete(id);
  }

  /** The keys starting with `prefix` (all keys without one), a page of ids at a time. */
  async *yieldKeys(prefix = ""): AsyncGenerator<string> {
    const store = await this.store();
    // A prefix ending inside a surrogate pair is escaped differently from the key it begins: ask for less, filter here.
    const last = prefix.charCodeAt(prefix.length - 1);
    const cut = last >= 0xd800 && last <= 0xdbff ? prefix.slice(0, -1) : prefix;
    const idPrefix = this.keyPrefix + escapeStoreKey(cut);
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await store.query({ prefix: idPrefix, select: "ids", order: "oldest", limit: KEYS_PAGE, ...(cursor !== null ? { cursor } : {}) });
      for (const id of page.items) {
        const key = unescapeStoreKey(id.slice(this.keyPrefix.length));
        if (cut === prefix || key.startsWith(prefix)) yield key;
      }
      cursor = page.cursor;
    } while (cursor !== null);
  }

  /** Closes the store when this object opened it (from `url`, `fromUrl` or the default). */
  async close(): Promise<void> {
    await this.#handle.close();
  }

  /** Commits `ops` in one transaction; false (and nothing done) when the tier has no transactions. */
  async #transact(store: Store, ops: TxOp[]): Promise<boolean> {
    if (this.#noTransactions) return false;
    try {
      await store.transaction(ops);
      return true;
    } catch (error) {
      if (isDgentError(error, "DGENT_UNSUPPORTED") && error.details.capability === "transactions") {
        this.#noTransactions = true;
        return false;
      }
      throw error;
    }
  }
}
