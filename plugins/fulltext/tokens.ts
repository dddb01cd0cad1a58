/**
 * Tokens and the in-process inverted index (BM25, k1 = 1.2, b = 0.75) used on every tier without
 * a native full-text index (memory, JSONL, object stores, third-party tiers).
 */
import { matchesQuery, type DatumHeader, type ResolvedQuery } from "../../core/query.js";

/** Lower-cased runs of letters and digits (Unicode), diacritics removed — FTS5's `unicode61 remove_diacritics 2` and Postgres' `simple` agree on plain words. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) out.push(m[0]);
  return out;
}

/** Distinct tokens of a query, in order, at most 64. */
export function queryTerms(query: string): string[] {
  return [...new Set(tokenize(query))].slice(0, 64);
}

export interface Hit {
  readonly id: string;
  readonly score: number;
}

interface Doc {
  id: string;
  header: DatumHeader;
  len: number;
  terms: Map<string, number>;
}

export const K1 = 1.2;
export const B = 0.75;

/** An inverted index with BM25 scores; filters are checked on the headers it keeps, during the search. */
export class InvertedIndex {
  readonly #docs = new Map<string, Doc>();
  readonly #postings = new Map<string, Map<string, number>>();
  #totalLen = 0;

  get size(): number {
    return this.#docs.size;
  }

  set(header: DatumHeader, text: string): void {
    this.delete(header.id);
    const terms = new Map<string, number>();
    const tokens = tokenize(text);
    for (const t of tokens) terms.set(t, (terms.get(t) ?? 0) + 1);
    const doc: Doc = { id: header.id, header, len: tokens.length, terms };
    this.#docs.set(header.id, doc);
    this.#totalLen += doc.len;
    for (const [t, tf] of terms) {
      let p = this.#postings.get(t);
      if (!p) this.#postings.set(t, (p = new Map()));
      p.set(header.id, tf);
    }
  }

  delete(id: string): boolean {
    const doc = this.#docs.get(id);
    if (!doc) return false;
    this.#docs.delete(id);
    this.#totalLen -= doc.len;
    for (const t of doc.terms.keys()) {
      const p = this.#postings.get(t);
      p?.delete(id);
      if (p && p.size === 0) this.#postings.delete(t);
    }
    return true;
  }

  /** The `k` best documents for `terms` by BM25, only those meeting `q` when given; `avgdl`: instead of the live average length. */
  search(terms: readonly string[], k: number, q: ResolvedQuery | null, avgdl?: number): Hit[] {
    const n = this.#docs.size;
    if (n === 0 || terms.length === 0) return [];
    const avg = avgdl ?? (this.#totalLen / n || 1);
    const scores = new Map<string, number>();
    const rejected = new Set<string>();
    for (const t of terms) {
      const p = this.#postings.get(t);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.size + 0.5) / (p.size + 0.5));
      for (const [id, tf] of p) {
        if (rejected.has(id)) continue;
        const doc = this.#docs.get(id) as Doc;
        if (q !== null && !scores.has(id) && !matchesQuery(q, doc.header)) {
          rejected.add(id);
          continue;
        }
        const s = (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * doc.len) / avg));
        scores.set(id, (scores.get(id) ?? 0) + s);
      }
    }
    const all: Hit[] = [];
    for (const [id, score] of scores) all.push({ id, score });
    all.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return all.slice(0, k);
  }
}
