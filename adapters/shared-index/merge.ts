import type { Walker } from "./sorted-list.js";

/**
 * Merges walkers that each yield keys in `compare` order into one walker in that order (a binary
 * heap of their heads). The lists merged hold disjoint keys (one tag value each), so nothing is
 * deduplicated.
 */
export function mergeWalkers<T>(walkers: readonly Walker<T>[], compare: (a: T, b: T) => number): Walker<T> {
  if (walkers.length === 1) return walkers[0] as Walker<T>;
  const heads: T[] = [];
  const sources: Walker<T>[] = [];
  for (const w of walkers) {
    const head = w.next();
    if (head === undefined) continue;
    heads.push(head);
    sources.push(w);
    siftUp(heads, sources, heads.length - 1, compare);
  }
  return {
    next: () => {
      if (heads.length === 0) return undefined;
      const top = heads[0] as T;
      const following = (sources[0] as Walker<T>).next();
      if (following === undefined) {
        const lastHead = heads.pop() as T;
        const lastSource = sources.pop() as Walker<T>;
        if (heads.length > 0) {
          heads[0] = lastHead;
          sources[0] = lastSource;
        }
      } else {
        heads[0] = following;
      }
      siftDown(heads, sources, 0, compare);
      return top;
    },
  };
}

function siftUp<T>(heads: T[], sources: Walker<T>[], at: number, compare: (a: T, b: T) => number): void {
  let i = at;
  while (i > 0) {
    const parent = (i - 1) >>> 1;
    if (compare(heads[parent] as T, heads[i] as T) <= 0) break;
    swap(heads, sources, i, parent);
    i = parent;
  }
}

function siftDown<T>(heads: T[], sources: Walker<T>[], at: number, compare: (a: T, b: T) => number): void {
  let i = at;
  const n = heads.length;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let least = i;
    if (l < n && compare(heads[l] as T, heads[least] as T) < 0) least = l;
    if (r < n && compare(heads[r] as T, heads[least] as T) < 0) least = r;
    if (least === i) return;
    swap(heads, sources, i, least);
    i = least;
  }
}

function swap<T>(heads: T[], sources: Walker<T>[], a: number, b: number): void {
  const h = heads[a] as T;
  heads[a] = heads[b] as T;
  heads[b] = h;
  const s = sources[a] as Walker<T>;
  sources[a] = sources[b] as Walker<T>;
  sources[b] = s;
}
