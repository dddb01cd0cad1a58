/**
 * Test support shared by the memory and JSONL tiers' query tests (no runtime dependency: the
 * caller passes fast-check in). Random datums built to hit the edges of the filters — ties in
 * createdAt, ids and tag values holding `%`, `_`, `\` and characters whose UTF-16 and code point
 * orders differ, parents that exist and parents that do not — random query options over them,
 * and a pager that walks a query to its end with cursors, natively or with core's reference
 * evaluation, so the two can be compared page by page.
 */
import type * as FastCheck from "fast-check";
import type { Datum } from "../../core/datum.js";
import {
  encodeCursor,
  evaluateQuery,
  resolveQuery,
  type DatumHeader,
  type QueryFilter,
  type QueryOptions,
  type ResolvedQuery,
  type TagFilter,
  type Where,
} from "../../core/query.js";

type FC = Omit<typeof FastCheck, "default">;

/** Characters of ids, prefixes and tag values: LIKE's specials and code point order's traps. */
export const QUERY_CHARS = ["a", "b", "%", "_", "\\", "é", "\ue000", "\u{1f989}"] as const;
/** Tag keys the datums carry (each optional) and the queries name. */
export const QUERY_KEYS = ["role", "s", "k%"] as const;
/** Tag values: prefixes of one another, LIKE specials, the empty string. */
export const QUERY_VALUES = ["", "u", "us", "user", "%", "_", "a\\", "\ue000", "\u{1f989}"] as const;

export interface QueryArbitraries {
  /** 0–`max` datums with distinct ids; createdAt in 0..6 (many ties); parents among the ids or absent. */
  datums(max?: number): FastCheck.Arbitrary<Datum[]>;
  /** Random filters (everything optional). */
  filter(): FastCheck.Arbitrary<QueryFilter>;
  /** Random filters plus order, a small limit and a projection. */
  options(): FastCheck.Arbitrary<QueryOptions>;
}

export function queryArbitraries(fc: FC): QueryArbitraries {
  const char = fc.constantFrom(...QUERY_CHARS);
  const text = (min: number, max: number) => fc.array(char, { minLength: min, maxLength: max }).map((cs) => cs.join(""));
  // Ids of one character are frequent, so a random parent filter often names a real parent.
  const id = fc.oneof({ weight: 2, arbitrary: char }, { weight: 3, arbitrary: text(1, 3) });
  // Two common values (so filters often match several datums) among all the tricky ones.
  const value = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("user", "u") }, { weight: 2, arbitrary: fc.constantFrom(...QUERY_VALUES) });
  const metadata = fc
    .record(Object.fromEntries(QUERY_KEYS.map((k) => [k, value])) as Record<string, FastCheck.Arbitrary<string>>, { requiredKeys: [] })
    .map((m) => m as Record<string, string>);
  const tagFilter: FastCheck.Arbitrary<TagFilter> = fc.oneof(
    value,
    value.map((eq) => ({ eq })),
    fc.uniqueArray(value, { minLength: 1, maxLength: 3 }).map((values) => ({ in: values })),
    fc.oneof(value, text(0, 1)).map((prefix) => ({ prefix })),
    fc.boolean().map((exists) => ({ exists })),
  );
  // Mostly one tag condition (so filters match often enough to page), sometimes several.
  const where = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...QUERY_KEYS), tagFilter).map(([k, f]): Where => ({ [k]: f })) },
    {
      weight: 1,
      arbitrary: fc
        .record(Object.fromEntries(QUERY_KEYS.map((k) => [k, tagFilter])) as Record<string, FastCheck.Arbitrary<TagFilter>>, { requiredKeys: [] })
        .map((w) => w as Where),
    },
  );
  const parts: { [K in keyof Required<QueryFilter>]: FastCheck.Arbitrary<Required<QueryFilter>[K]> } = {
    prefix: text(0, 2),
    idRange: fc.record({ gte: text(1, 2), lt: text(1, 2) }, { requiredKeys: [] }),
    where,
    parent: fc.oneof(char, id),
    after: fc.integer({ min: -1, max: 6 }),
    before: fc.integer({ min: 0, max: 8 }),
  };
  // No filter, one filter (each index alone, where plans are exact), two, or any mix.
  const single = fc.oneof(...Object.entries(parts).map(([key, a]) => (a as FastCheck.Arbitrary<unknown>).map((v): QueryFilter => ({ [key]: v }))));
  const filter: FastCheck.Arbitrary<QueryFilter> = fc.oneof(
    { weight: 1, arbitrary: fc.constant({}) },
    { weight: 5, arbitrary: single },
    { weight: 3, arbitrary: fc.tuple(single, single).map(([a, b]): QueryFilter => ({ ...a, ...b })) },
    { weight: 1, arbitrary: fc.record(parts, { requiredKeys: [] }) },
  );
  const options: FastCheck.Arbitrary<QueryOptions> = fc
    .tuple(filter, fc.constantFrom("newest" as const, "oldest" as const), fc.integer({ min: 1, max: 7 }), fc.constantFrom("full" as const, "meta" as const, "ids" as const))
    .map(([f, order, limit, select]) => ({ ...f, order, limit, select }));
  return {
    datums: (max = 40) =>
      fc
        .uniqueArray(
          fc.record({ id, createdAt: fc.integer({ min: 0, max: 6 }), parent: fc.option(fc.nat(), { nil: null }), metadata, content: fc.uint8Array({ maxLength: 4 }) }),
          { selector: (r) => r.id, maxLength: max },
        )
        .map((rows) =>
          rows.map((r): Datum => {
            // A parent among the other ids (or one no datum has: a child of a missing parent).
            let causalParent: string | null = null;
            if (r.parent !== null) causalParent = r.parent % (rows.length + 1) === rows.length ? "zz" : (rows[r.parent % (rows.length + 1)] as { id: string }).id;
            if (causalParent === r.id) causalParent = null;
            return { id: r.id, createdAt: r.createdAt, causalParent, metadata: r.metadata, content: r.content };
          }),
        ),
    filter: () => filter,
    options: () => options,
  };
}

export type Page = Datum[] | DatumHeader[];

/**
 * Walks `options` to its end: each page's cursor feeds the next query, until a page comes back
 * shorter than the limit. `answer` is a tier's `query`, or `referenceAnswer(datums)`.
 */
export async function pageThrough(answer: (q: ResolvedQuery) => Promise<Page> | Page, options: QueryOptions, maxPages = 1000): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | undefined;
  for (;;) {
    const q = resolveQuery(cursor === undefined ? options : { ...options, cursor });
    const page = await answer(q);
    pages.push(page);
    const last = page.at(-1);
    if (last === undefined || page.length < q.limit) return pages;
    if (pages.length >= maxPages) throw new Error(`more than ${maxPages} pages for ${JSON.stringify(options)}`);
    cursor = encodeCursor(q, last);
  }
}

/** Core's reference evaluation over `datums`, as an `answer` for `pageThrough`. */
export function referenceAnswer(datums: Iterable<Datum>): (q: ResolvedQuery) => Page {
  const all = [...datums];
  return (q) => evaluateQuery(q, all);
}

/** A page as plain comparable values: datums with their content as an array of bytes, headers as they are. */
export function comparable(page: Page): unknown[] {
  return (page as Array<Datum | DatumHeader>).map((d) => ("content" in d ? { ...d, content: [...(d as Datum).content] } : { ...d }));
}
