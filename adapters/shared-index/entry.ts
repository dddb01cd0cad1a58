import { compareIds } from "../../core/order.js";

/**
 * What the indexes keep per datum: its header (id, time, parent, tags), never its content. The
 * memory tier's entries add the datum, the JSONL tier's the record's place in the log. The same
 * object sits in every index that holds it; it is not changed while indexed (only a JSONL
 * entry's offset, which no index orders by).
 */
export interface IndexedEntry {
  readonly id: string;
  readonly createdAt: number;
  readonly causalParent: string | null;
  readonly metadata: Readonly<Record<string, string>>;
}

/** What the time order compares: an entry, or a cursor's position. */
export interface TimeKey {
  readonly id: string;
  readonly createdAt: number;
}

/** Ascending (createdAt, id): oldest first; ids in code point order. */
export function compareTime(a: TimeKey, b: TimeKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return compareIds(a.id, b.id);
}

/** Descending (createdAt, id): newest first. */
export function compareTimeDesc(a: TimeKey, b: TimeKey): number {
  return compareTime(b, a);
}

/** Ascending id, code point order. */
export function compareEntryIds(a: IndexedEntry, b: IndexedEntry): number {
  return compareIds(a.id, b.id);
}
