import type { Datum } from "./datum.js";

/**
 * Orders ids by Unicode code point, which is also the byte order of their UTF-8 encoding: the
 * order SQLite's BINARY collation and Postgres' `COLLATE "C"` use, so every tier agrees. (Plain
 * `<` on JS strings compares UTF-16 code units and puts U+E000..U+FFFF after astral characters.)
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/** Newest first: createdAt descending, then id descending (code point order, see `compareIds`). */
export function compareNewestFirst(a: Datum, b: Datum): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return compareIds(b.id, a.id);
}
