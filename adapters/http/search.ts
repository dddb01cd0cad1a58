/**
 * The search routes' client: `httpSearch({ url, token, namespace })` is a handle with the shape
 * of the search plugins' (`search(query, { k, filter })` → `[{ id, score }]`, best first), served
 * by a remote `dgent serve` (`POST /v1/ns/{ns}/search`, server/README.md). Errors come back as
 * the server raised them (501 `DGENT_UNSUPPORTED` when the store has no search plugin).
 */
import type { Datum } from "../../core/datum.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "../../core/paths.js";
import type { DatumHeader, QueryFilter } from "../../core/query.js";
import { fromWireItem } from "../../server/wire.js";
import { HttpClient } from "./client.js";

export interface RemoteSearchOptions {
  /** Results wanted, 1–1000 (default 10). */
  readonly k?: number;
  readonly filter?: QueryFilter;
  /** `auto` (default): hybrid when the server's store has both plugins, else the one it has. */
  readonly mode?: "auto" | "vector" | "text" | "hybrid";
  /** Vector search only. */
  readonly metric?: "cosine" | "dot" | "l2";
  /** Also bring each hit's header (`meta`) or whole datum (`full`) in the same answer. */
  readonly select?: "ids" | "meta" | "full";
}

export interface RemoteHit {
  readonly id: string;
  readonly score: number;
  readonly ranks?: { readonly vector: number | null; readonly text: number | null };
  /** With `select: "meta"` / `"full"`: the header / the datum; null when it was deleted since. */
  readonly datum?: Datum | DatumHeader | null;
}

export interface RemoteSearch {
  /** A text, or a vector (vector mode) of the server's embedder's size. */
  search(query: string | Float32Array | readonly number[], options?: RemoteSearchOptions): Promise<RemoteHit[]>;
  /** Closes the kept-alive connections. */
  close(): void;
}

/** As `httpAdapter`'s options of the same names. */
export interface HttpSearchOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7411`. */
  readonly url: string;
  /** A bearer token with the read right on the namespace. */
  readonly token?: string;
  /** The namespace on the server (default `"default"`). */
  readonly namespace?: string;
  /** Per request (default 30 000). */
  readonly timeoutMs?: number;
  /** PEM certificates to trust for `https`. */
  readonly ca?: string | Buffer;
}

export function httpSearch(options: HttpSearchOptions): RemoteSearch {
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  assertNamespace(namespace);
  const client = new HttpClient({ url: options.url, token: options.token, namespace, timeoutMs: options.timeoutMs ?? 30_000, ...(options.ca !== undefined ? { ca: options.ca } : {}) });
  return {
    async search(query, searchOptions = {}) {
      const body = { ...searchOptions, query: typeof query === "string" ? query : Array.from(query) };
      const answer = (await client.call<{ items: Array<{ id: string; score: number; ranks?: RemoteHit["ranks"]; datum?: unknown }> }>("POST", "/search", body)) as {
        items: Array<{ id: string; score: number; ranks?: RemoteHit["ranks"]; datum?: unknown }>;
      };
      return answer.items.map((h) => {
        const hit: RemoteHit = { id: h.id, score: h.score, ...(h.ranks !== undefined ? { ranks: h.ranks } : {}) };
        if (h.datum === undefined) return hit;
        return { ...hit, datum: h.datum === null ? null : (fromWireItem(h.datum) as Datum | DatumHeader) };
      });
    },
    close: () => client.destroy(),
  };
}
