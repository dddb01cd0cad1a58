/**
 * A small labelled set for ranking sanity: 16 short documents and 8 queries, each with the
 * documents a reader would call relevant (graded 2 = the answer, 1 = related). Built by hand here.
 */
export const DOCS: ReadonlyArray<{ id: string; text: string; topic: string }> = [
  { id: "d01", topic: "cooking", text: "Boil the pasta in salted water for nine minutes, then drain it." },
  { id: "d02", topic: "cooking", text: "A tomato sauce simmered slowly with garlic and olive oil goes with any pasta." },
  { id: "d03", topic: "cooking", text: "Bread dough rises best in a warm kitchen; knead it ten minutes." },
  { id: "d04", topic: "cooking", text: "Roast the vegetables with olive oil at two hundred degrees." },
  { id: "d05", topic: "travel", text: "The night train from Vienna to Venice leaves at nine and arrives at breakfast." },
  { id: "d06", topic: "travel", text: "Book a window seat on the train to see the mountains of the Alps." },
  { id: "d07", topic: "travel", text: "Flights to Lisbon are cheapest in November; the airport bus runs all night." },
  { id: "d08", topic: "travel", text: "Venice canals flood in autumn: pack boots for the acqua alta." },
  { id: "d09", topic: "software", text: "The database index speeds up queries but slows down every write." },
  { id: "d10", topic: "software", text: "A write ahead log lets the database recover after a crash." },
  { id: "d11", topic: "software", text: "Full text search ranks documents with BM25 over an inverted index." },
  { id: "d12", topic: "software", text: "Vector search finds the nearest embeddings by cosine similarity." },
  { id: "d13", topic: "garden", text: "Water the tomato plants in the morning and stake them as they grow." },
  { id: "d14", topic: "garden", text: "Prune the roses in late winter before the new buds appear." },
  { id: "d15", topic: "garden", text: "Compost kitchen scraps to feed the vegetables in the garden." },
  { id: "d16", topic: "garden", text: "Mountains of autumn leaves make good mulch for the roses." },
];

export const QUERIES: ReadonlyArray<{ query: string; relevant: Readonly<Record<string, number>> }> = [
  { query: "pasta sauce", relevant: { d02: 2, d01: 1 } },
  { query: "train to Venice", relevant: { d05: 2, d06: 1, d08: 1 } },
  { query: "database crash recovery", relevant: { d10: 2, d09: 1 } },
  { query: "tomato plants", relevant: { d13: 2, d02: 1 } },
  { query: "search ranking index", relevant: { d11: 2, d12: 1, d09: 1 } },
  { query: "roses pruning", relevant: { d14: 2, d16: 1 } },
  { query: "olive oil vegetables", relevant: { d04: 2, d02: 1, d15: 1 } },
  { query: "cheap flights Lisbon", relevant: { d07: 2 } },
];

/** nDCG@k of a ranked id list against graded relevance (gain 2^rel − 1, log2 discount). */
export function ndcg(ranked: readonly string[], relevant: Readonly<Record<string, number>>, k = 10): number {
  const dcg = (rels: number[]) => rels.slice(0, k).reduce((sum, rel, i) => sum + (2 ** rel - 1) / Math.log2(i + 2), 0);
  const ideal = dcg(Object.values(relevant).sort((a, b) => b - a));
  return ideal === 0 ? 0 : dcg(ranked.map((id) => relevant[id] ?? 0)) / ideal;
}
