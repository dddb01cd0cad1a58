import type { Datum } from "../../core/datum.js";
import type { DatumHeader } from "../../core/query.js";

/** The datum columns, in the order every statement selects them. */
export const COLUMNS = "id, content, created_at, causal_parent, metadata";

/** A row of the datum table (`content` absent when a statement did not select it). */
export interface Row {
  id: string;
  content: Buffer;
  created_at: number;
  causal_parent: string | null;
  metadata: Record<string, string>;
}

export function toDatum(row: Row): Datum {
  return { id: row.id, content: row.content, createdAt: row.created_at, causalParent: row.causal_parent, metadata: row.metadata };
}

export function toHeader(row: Omit<Row, "content">): DatumHeader {
  return { id: row.id, createdAt: row.created_at, causalParent: row.causal_parent, metadata: row.metadata };
}

export function bytes(content: Uint8Array): Buffer {
  return Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
}

// JSONB cannot hold U+0000, and lone surrogates are not UTF-8. The regex is a cheap first look.
const SUSPECT = /[\u0000\ud800-\udfff]/;
/** True when Postgres can store `s` in JSONB (no U+0000, no lone surrogate). */
export function storable(s: string): boolean {
  return !SUSPECT.test(s) || (!s.includes("\u0000") && s.isWellFormed());
}
