import { compareIds } from "../../core/order.js";
import { compareTime, type IndexedEntry } from "./entry.js";
import { SortedList, type Walker } from "./sorted-list.js";

/**
 * The index of one tag key: for each value, the entries holding it in time order (a posting
 * list), the values themselves in code point order (for `prefix`), and every entry holding the
 * key at all (for `exists` and broad prefixes). Built the first time a query names the key.
 */
export class TagIndex<T extends IndexedEntry> {
  readonly key: string;
  /** Every entry that holds the key, in time order. */
  readonly present: SortedList<T>;
  readonly #postings = new Map<string, SortedList<T>>();
  readonly #values: SortedList<string>;
  readonly #chunk: number | undefined;

  constructor(key: string, chunk?: number) {
    this.key = key;
    this.#chunk = chunk;
    this.present = new SortedList<T>(compareTime, chunk);
    this.#values = new SortedList<string>(compareIds, chunk);
  }

  add(entry: T, value: string): void {
    let list = this.#postings.get(value);
    if (list === undefined) {
      list = new SortedList<T>(compareTime, this.#chunk);
      this.#postings.set(value, list);
      this.#values.insert(value);
    }
    list.insert(entry);
    this.present.insert(entry);
  }

  remove(entry: T, value: string): void {
    const list = this.#postings.get(value);
    if (list === undefined || !list.remove(entry)) return;
    this.present.remove(entry);
    if (list.size === 0) {
      this.#postings.delete(value);
      this.#values.remove(value);
    }
  }

  /** Removes many entries at once: one pass over each posting list they are on, and over `present`. */
  removeAll(doomed: ReadonlySet<T>): void {
    const values = new Set<string>();
    for (const e of doomed) if (Object.hasOwn(e.metadata, this.key)) values.add(e.metadata[this.key] as string);
    if (values.size === 0) return;
    const gone = (e: T): boolean => doomed.has(e);
    for (const value of values) {
      const list = this.#postings.get(value);
      if (list === undefined) continue;
      list.removeIf(gone);
      if (list.size === 0) {
        this.#postings.delete(value);
        this.#values.remove(value);
      }
    }
    this.present.removeIf(gone);
  }

  /** The entries holding `value`, in time order. */
  postings(value: string): SortedList<T> | undefined {
    return this.#postings.get(value);
  }

  /** How many distinct values the key has. */
  get distinctValues(): number {
    return this.#values.size;
  }

  /** The values that start with `prefix`, in code point order. */
  valuesWithPrefix(prefix: string): Walker<string> {
    const values = this.#values;
    const walker = values.walk(values.seek((v) => compareIds(v, prefix) >= 0), values.end, true);
    let done = false;
    return {
      next: () => {
        if (done) return undefined;
        const v = walker.next();
        if (v === undefined || !v.startsWith(prefix)) {
          done = true;
          return undefined;
        }
        return v;
      },
    };
  }
}
