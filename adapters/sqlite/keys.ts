/**
 * Id ranges and orders. SQLite compares TEXT with memcmp over UTF-8 (the BINARY collation), which
 * is code-point order; dgent's order is JavaScript's UTF-16 code-unit order. The two agree except
 * between characters above U+FFFF (surrogate pairs, code units D800–DFFF) and characters in
 * U+E000–U+FFFF: code points put U+10000 after U+FFFF, code units put it before U+E000.
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

/** Characters whose code-point and code-unit orders can disagree: D800–DFFF and E000–FFFF. */
const ORDER_SENSITIVE = /[\ud800-\uffff]/;

interface Keyed {
  readonly id: string;
  readonly createdAt: number;
}

/**
 * Whether a newest-first page from SQLite may differ from dgent's order: only ids that tie on
 * `createdAt` are ordered by id, and only order-sensitive characters order differently. When the
 * page is full (`rows.length === limit`), the tie group at its end may also have lost a member
 * to the limit. Cheap when createdAt values are distinct (the usual case): no regex runs except
 * on the last row of a full page.
 */
export function needsReorder(rows: readonly Keyed[], limit: number): boolean {
  const n = rows.length;
  if (n === 0) return false;
  const lastTime = n === limit ? (rows[n - 1] as Keyed).createdAt : NaN;
  for (let i = 0; i < n; i++) {
    const row = rows[i] as Keyed;
    const t = row.createdAt;
    const tied =
      t === lastTime ||
      (i > 0 && (rows[i - 1] as Keyed).createdAt === t) ||
      (i + 1 < n && (rows[i + 1] as Keyed).createdAt === t);
    if (tied && ORDER_SENSITIVE.test(row.id)) return true;
  }
  return false;
}
