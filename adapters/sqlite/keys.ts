/**
 * Id prefixes as index ranges. SQLite compares TEXT with memcmp over UTF-8 (the BINARY collation),
 * which is Unicode code-point order: the order dgent defines for ids (`compareIds` in
 * core/order.ts), so `ORDER BY id` needs no correction. A prefix becomes a range in that order.
 */

/** A prefix as the half-open id range `[lower, upper)` in SQLite's order; `upper` null = unbounded. */
export interface IdRange {
  readonly lower: string;
  readonly upper: string | null;
}

/** The string right after every string that starts with `s` in code-point order, or null (none). */
function successor(s: string): string | null {
  let end = s.length;
  while (end > 0) {
    const low = s.charCodeAt(end - 1);
    const start = low >= 0xdc00 && low <= 0xdfff && end >= 2 ? end - 2 : end - 1;
    const cp = s.codePointAt(start) as number;
    if (cp === 0x10ffff) {
      end = start; // nothing follows U+10FFFF: carry into the previous character
      continue;
    }
    return s.slice(0, start) + String.fromCodePoint(cp === 0xd7ff ? 0xe000 : cp + 1);
  }
  return null;
}

/**
 * The id range holding exactly the ids that start with `prefix` (as JavaScript's `startsWith`
 * sees it), or null when no valid id can: ids are well-formed UTF-16, so a prefix may end in the
 * high half of a surrogate pair but hold no other lone surrogate.
 */
export function prefixRange(prefix: string): IdRange | null {
  if (prefix.isWellFormed()) return { lower: prefix, upper: successor(prefix) };
  const high = prefix.charCodeAt(prefix.length - 1);
  const head = prefix.slice(0, -1);
  if (high < 0xd800 || high > 0xdbff || !head.isWellFormed()) return null;
  const first = 0x10000 + ((high - 0xd800) << 10);
  return { lower: head + String.fromCodePoint(first), upper: successor(head + String.fromCodePoint(first + 0x3ff)) };
}
