import { randomBytes } from "node:crypto";
import { dgentError } from "../../core/errors.js";
import { compareIds } from "../../core/order.js";
import { REFLOG_LIMIT, meets, refConflict, type Ref, type RefExpectation, type RefMove, type ReflogEntry } from "../../core/refs.js";
import type { ObjectBackend, VersionedBody } from "./backend.js";
import { sha256Hex } from "./keys.js";
import { mapLimit } from "./list.js";

/**
 * Refs on an object store: one object per ref name, moved only by conditional writes.
 *
 * ```
 * <root>refs/<hex of the name's UTF-8, in 200-digit segments>          names up to 300 bytes
 * <root>refs/<hex of its first 300 bytes, in segments>/~<sha256(name)>  longer names
 * ```
 *
 * The body (JSON, `"v": 1`) holds the ref (`null` once deleted) and the ref's reflog, the last
 * `REFLOG_LIMIT` moves: a move rewrites the object with the new ref and the log with the move
 * appended, in one write conditional on the version read (`If-Match` on the ETag, or
 * `ifGenerationMatch`), or, for a name never used, on there being no object (`If-None-Match: *`,
 * `ifGenerationMatch=0`). So a move and its reflog entry are one atomic write; a writer that lost
 * the race gets HTTP 412 and reads the ref again. A delete is such a write too, leaving the ref
 * `null` and its reflog in place (a deleted ref's history stays readable, as on every tier).
 *
 * Hex keeps keys in `[0-9a-f/~]` (safe for any service, and servers that keep objects as files),
 * sorts like the names' UTF-8 bytes (which is code point order), and makes a name prefix a key
 * prefix, so `listRefs(prefix)` lists only the keys that can match. Segments keep each path part
 * short (file-backed servers limit a file name to 255 bytes).
 */
export const REF_LAYOUT_VERSION = 1;

const INLINE_BYTES = 300;
const SEGMENT = 200;
/** Rounds of read-and-retry before a move that keeps losing races gives up (retryable). */
const MAX_ROUNDS = 64;

export function refsPrefix(root: string): string {
  return `${root}refs/`;
}

function segments(hex: string): string {
  const parts: string[] = [];
  for (let i = 0; i < hex.length; i += SEGMENT) parts.push(hex.slice(i, i + SEGMENT));
  return parts.join("/");
}

/** The key of ref `name` under `prefix` (`refsPrefix(root)`). */
export function refKey(prefix: string, name: string): string {
  const bytes = Buffer.from(name, "utf8");
  if (bytes.length <= INLINE_BYTES) return prefix + segments(bytes.toString("hex"));
  return `${prefix}${segments(bytes.subarray(0, INLINE_BYTES).toString("hex"))}/~${sha256Hex(name)}`;
}

/** The listing prefix that covers every ref whose name starts with `namePrefix`. */
export function refListingPrefix(prefix: string, namePrefix: string): string {
  const bytes = Buffer.from(namePrefix, "utf8");
  if (bytes.length <= INLINE_BYTES) return prefix + segments(bytes.toString("hex"));
  return `${prefix}${segments(bytes.subarray(0, INLINE_BYTES).toString("hex"))}/~`;
}

/** A reflog entry as stored: the name is the object's; `w` is the id of the write that made it. */
interface StoredEntry {
  readonly from: string | null;
  readonly to: string | null;
  readonly version: number;
  readonly at: number;
  readonly by: string;
  readonly w: string;
}

interface RefBody {
  readonly v: 1;
  readonly name: string;
  readonly ref: { readonly target: string; readonly version: number; readonly updatedAt: number } | null;
  /** Oldest first, at most REFLOG_LIMIT. */
  readonly log: readonly StoredEntry[];
}

interface Current {
  readonly body: RefBody | null;
  /** The version the next write must match; null: no object yet. */
  readonly version: string | null;
}

export interface RefsContext {
  readonly backend: ObjectBackend & Required<Pick<ObjectBackend, "read" | "write">>;
  readonly prefix: string;
  readonly unit: string;
  readonly concurrency: number;
  /** Runs a backend call with the tier's retry policy. */
  attempt<T>(fn: () => Promise<T>): Promise<T>;
}

function refOf(name: string, body: RefBody | null): Ref | null {
  return body?.ref ? { name, target: body.ref.target, version: body.ref.version, updatedAt: body.ref.updatedAt } : null;
}

/** The refs of one namespace on an object store (see the comment at the top). */
export class ObjectRefs {
  readonly #c: RefsContext;

  constructor(context: RefsContext) {
    this.#c = context;
  }

  async get(name: string): Promise<Ref | null> {
    return refOf(name, (await this.#read(name)).body);
  }

  /** Lists the keys that can match, reads them (in parallel), keeps the live refs under `prefix`, sorted by name. */
  async list(prefix: string): Promise<Ref[]> {
    const { backend, attempt, concurrency } = this.#c;
    const listing = refListingPrefix(this.#c.prefix, prefix);
    const keys: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await attempt(() => backend.list(listing, cursor, 1000));
      for (const o of page.objects) keys.push(o.key);
      cursor = page.cursor;
    } while (cursor !== null);
    const refs = await mapLimit(keys, concurrency, async (key) => {
      const found = await attempt(() => backend.read(key));
      if (found === null) return null; // removed by hand since the listing
      const body = this.#decode(found.body, key, null);
      return body.name.startsWith(prefix) ? refOf(body.name, body) : null;
    });
    return refs.filter((r): r is Ref => r !== null).sort((a, b) => compareIds(a.name, b.name));
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    const { body } = await this.#read(name);
    if (body === null) return [];
    return body.log
      .slice(-limit)
      .reverse()
      .map((e) => ({ name, from: e.from, to: e.to, version: e.version, at: e.at, by: e.by }));
  }

  async set(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    const done = await this.#move(name, expect, move, (ref) => ({ target, version: (ref?.version ?? 0) + 1, updatedAt: move.at }));
    return { name, target: done.to as string, version: done.version, updatedAt: done.at };
  }

  async delete(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    const done = await this.#move(name, expect, move, () => null);
    return done !== NOTHING;
  }

  /**
   * Read, check `expect`, write the next body conditional on the version read; on a lost race
   * (412) read again and start over. Every write of this call carries the same id `w`, so when a
   * write whose answer was lost (a timeout, a reset) did land, the next read finds it in the
   * reflog and the call reports that move instead of making a second one.
   */
  async #move(name: string, expect: RefExpectation | undefined, move: RefMove, next: (ref: Ref | null) => RefBody["ref"]): Promise<StoredEntry> {
    const { backend, attempt, unit } = this.#c;
    const key = refKey(this.#c.prefix, name);
    const w = randomBytes(12).toString("hex");
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const current = await this.#read(name);
      const landed = current.body?.log.find((e) => e.w === w);
      if (landed !== undefined) return landed;
      const ref = refOf(name, current.body);
      if (!meets(ref, expect)) throw refConflict(name, expect, ref, unit);
      const after = next(ref);
      if (ref === null && after === null) return NOTHING; // deleting what is not there: nothing to write
      const entry: StoredEntry = {
        from: ref?.target ?? null,
        to: after?.target ?? null,
        version: after?.version ?? (ref as Ref).version,
        at: move.at,
        by: move.by,
        w,
      };
      const log = [...(current.body?.log ?? []), entry];
      const body: RefBody = { v: REF_LAYOUT_VERSION, name, ref: after, log: log.length > REFLOG_LIMIT ? log.slice(log.length - REFLOG_LIMIT) : log };
      const written = await attempt(() => backend.write(key, Buffer.from(JSON.stringify(body), "utf8"), current.version));
      if (written !== null) return entry;
    }
    throw dgentError("DGENT_UNAVAILABLE", `ref ${JSON.stringify(name)} kept moving under ${MAX_ROUNDS} tries to move it; try again`, {
      unit,
      details: { name },
    });
  }

  async #read(name: string): Promise<Current> {
    const key = refKey(this.#c.prefix, name);
    const found: VersionedBody | null = await this.#c.attempt(() => this.#c.backend.read(key));
    if (found === null) return { body: null, version: null };
    return { body: this.#decode(found.body, key, name), version: found.version };
  }

  #decode(bytes: Uint8Array, key: string, name: string | null): RefBody {
    let body: RefBody | null = null;
    try {
      body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8")) as RefBody;
    } catch {
      body = null;
    }
    if (typeof body?.v === "number" && body.v > REF_LAYOUT_VERSION) {
      throw dgentError("DGENT_SCHEMA_TOO_NEW", `${this.#c.backend.location}/${key} was written by a newer dgent (ref layout ${body.v}); upgrade dgent`, {
        unit: this.#c.unit,
        details: { key },
      });
    }
    if (body === null || body.v !== REF_LAYOUT_VERSION || typeof body.name !== "string" || !Array.isArray(body.log) || (name !== null && body.name !== name)) {
      throw dgentError("DGENT_BACKEND_ERROR", `${this.#c.backend.location}/${key} is not a dgent ref${name === null ? "" : ` of ${JSON.stringify(name)}`}`, {
        unit: this.#c.unit,
        details: { key },
      });
    }
    return body;
  }
}

/** What `#move` returns when a delete found nothing to delete. */
const NOTHING: StoredEntry = Object.freeze({ from: null, to: null, version: 0, at: 0, by: "", w: "" });
