/**
 * The kit's `queries` suite, checked: it passes a tiny adapter with only the five methods over a
 * Map (no `query` capability: the store answers from `list` and `get`) and a tiny adapter with
 * native queries over a Map (written from QUERIES.md); and it fails on each query bug planted in
 * the native one, at the test meant to catch it, naming the kit's check.
 */
import assert from "node:assert/strict";
import { afterAll, beforeAll, describe, it } from "vitest";
import { sameValue, type Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import { Lifecycle } from "../core/lifecycle.js";
import { compareIds } from "../core/order.js";
import type { Adapter, Capabilities, ResolvedListOptions } from "../core/protocol.js";
import { headerOf, type DatumHeader, type Position, type ResolvedQuery } from "../core/query.js";
import { conflictError } from "../core/tiers.js";
import { runConformance, type ConformanceTarget, type TestFramework } from "../testing/index.js";

const copy = (d: Datum): Datum => ({ ...d, content: d.content.slice(), metadata: { ...d.metadata } });
const newestFirst = (a: Position, b: Position): number => b.createdAt - a.createdAt || compareIds(b.id, a.id);

/** The five methods over a Map, nothing else: no scan, no query. */
function fiveMethods(): Adapter {
  const life = new Lifecycle("five-map");
  const rows = new Map<string, Datum>();
  return {
    name: "five-map",
    rank: 5,
    capabilities: { persistent: false, multiProcess: false, nativeCausalChain: false, batch: false, scan: false, evicts: false },
    open: () => life.open(async () => undefined),
    close: () => life.close(() => rows.clear()),
    async put(datum) {
      life.check();
      const existing = rows.get(datum.id);
      if (existing && !sameValue(existing, datum)) throw conflictError(datum.id, "five-map");
      if (!existing) rows.set(datum.id, copy(datum));
      return datum.id;
    },
    async get(id) {
      life.check();
      const d = rows.get(id);
      return d ? copy(d) : null;
    },
    async delete(id) {
      life.check();
      return rows.delete(id);
    },
    async list({ prefix, after, limit }: ResolvedListOptions) {
      life.check();
      return [...rows.values()].filter((d) => d.id.startsWith(prefix) && d.createdAt > after).sort(newestFirst).slice(0, limit).map(copy);
    },
  };
}

/** Query bugs, each planted alone in the native adapter below. */
const QUERY_BUGS = [
  /** A page repeats the item its cursor points at (>= instead of >). */
  "cursor-inclusive",
  /** A page drops the first item after its cursor. */
  "cursor-skips-next",
  /** The cursor compares createdAt only: the rest of a tie is skipped. */
  "cursor-ignores-id",
  /** Order "oldest" sorts createdAt ascending but keeps ties by id descending. */
  "oldest-ties-by-id-descending",
  /** Ids compare by UTF-16 code units (JS `<`), not code points. */
  "ids-by-utf16",
  /** An id prefix is a SQL LIKE pattern without escapes: `_` and `%` are wildcards. */
  "prefix-like-wildcards",
  /** A tag prefix is a SQL LIKE pattern without escapes. */
  "tag-prefix-like-wildcards",
  /** `exists` uses `key in metadata`: a tag named like an Object member exists on every datum. */
  "exists-inherited",
  /** `after` keeps createdAt >= after. */
  "after-inclusive",
  /** `idRange.lt` is inclusive. */
  "id-lt-inclusive",
  /** count ignores `where`. */
  "count-ignores-where",
  /** select "meta" returns the content too. */
  "meta-with-content",
  /** getMany leaves out the ids it did not find. */
  "get-many-drops-missing",
  /** deleteMany ignores `where` and deletes the whole prefix. */
  "delete-many-ignores-where",
  /** chainTail returns one step too many. */
  "tail-off-by-one",
  /** chainTail returns the steps newest first. */
  "tail-newest-first",
] as const;
type QueryBug = (typeof QUERY_BUGS)[number];

/** For each bug: parts of names of kit tests that must fail. */
const MUST_FAIL: Record<QueryBug, readonly string[]> = {
  "cursor-inclusive": ["queries › random filters", "queries › cursors are stable under concurrent writes (newest first)"],
  "cursor-skips-next": ["queries › random filters", "queries › children finds every branch"],
  "cursor-ignores-id": ["queries › random filters", "queries › cursors are stable under concurrent writes (oldest first)"],
  "oldest-ties-by-id-descending": ["queries › random filters", "queries › ties come by id in code point order in both orders"],
  "ids-by-utf16": ["queries › ties come by id in code point order in both orders"],
  "prefix-like-wildcards": ["queries › prefixes, tag values and id ranges with %, _ and \\ match literally", "queries › deleteMany deletes exactly"],
  "tag-prefix-like-wildcards": ["queries › prefixes, tag values and id ranges with %, _ and \\ match literally"],
  "exists-inherited": ["queries › prefixes, tag values and id ranges with %, _ and \\ match literally"],
  "after-inclusive": ["queries › ties come by id in code point order in both orders"],
  "id-lt-inclusive": ["queries › ties come by id in code point order in both orders", "queries › prefixes, tag values and id ranges"],
  "count-ignores-where": ["queries › random filters", "queries › deleteMany deletes exactly"],
  "meta-with-content": ["queries › random filters"],
  "get-many-drops-missing": ["queries › getMany returns the datums in the order asked"],
  "delete-many-ignores-where": ["queries › deleteMany deletes exactly"],
  "tail-off-by-one": ["queries › causalChain with tail gives the last n steps", "queries › causalChain with tail on a chain longer than maxChainDepth"],
  "tail-newest-first": ["queries › causalChain with tail gives the last n steps", "queries › causalChain with tail on a chain longer than maxChainDepth"],
};

const CAPS: Capabilities = { persistent: false, multiProcess: false, nativeCausalChain: false, batch: false, scan: true, evicts: false, query: true, queryCost: "scan" };

/** `pattern` as SQL LIKE would read it with no ESCAPE clause: `%` any run, `_` any one character. */
function like(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === "%" ? ".*" : c === "_" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("");
  return new RegExp(`^${body}`, "su");
}

/** The five methods and native queries over a Map, with `bug` planted (none: correct). */
function nativeQueries(bug?: QueryBug): Adapter {
  const life = new Lifecycle("native-map");
  const rows = new Map<string, Datum>();
  const cmpIds = bug === "ids-by-utf16" ? (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0) : compareIds;
  const inOrder = (q: ResolvedQuery, a: Position, b: Position): number => {
    if (a.createdAt !== b.createdAt) return q.order === "newest" ? b.createdAt - a.createdAt : a.createdAt - b.createdAt;
    if (q.order === "newest" || bug === "oldest-ties-by-id-descending") return cmpIds(b.id, a.id);
    return cmpIds(a.id, b.id);
  };
  const beyond = (q: ResolvedQuery, d: Position): boolean => {
    const c = q.cursor;
    if (c === null) return true;
    if (bug === "cursor-ignores-id") return q.order === "newest" ? d.createdAt < c.createdAt : d.createdAt > c.createdAt;
    return bug === "cursor-inclusive" ? inOrder(q, d, c) >= 0 : inOrder(q, d, c) > 0;
  };
  const matches = (q: ResolvedQuery, d: Datum, { ignoreWhere = false } = {}): boolean => {
    if (q.prefix !== "" && !(bug === "prefix-like-wildcards" ? like(`${q.prefix}%`).test(d.id) : d.id.startsWith(q.prefix))) return false;
    if (q.idGte !== null && cmpIds(d.id, q.idGte) < 0) return false;
    if (q.idLt !== null && (bug === "id-lt-inclusive" ? cmpIds(d.id, q.idLt) > 0 : cmpIds(d.id, q.idLt) >= 0)) return false;
    if (q.parent !== null && d.causalParent !== q.parent) return false;
    if (q.after !== null && !(bug === "after-inclusive" ? d.createdAt >= q.after : d.createdAt > q.after)) return false;
    if (q.before !== null && !(d.createdAt < q.before)) return false;
    if (ignoreWhere) return true;
    for (const f of q.where) {
      const value = Object.hasOwn(d.metadata, f.key) ? d.metadata[f.key] : undefined;
      if (f.op === "exists") {
        if ((bug === "exists-inherited" ? f.key in d.metadata : value !== undefined) !== f.value) return false;
      } else if (value === undefined) return false;
      else if (f.op === "in" && !f.values.includes(value)) return false;
      else if (f.op === "prefix" && !(bug === "tag-prefix-like-wildcards" ? like(`${f.value}%`).test(value) : value.startsWith(f.value))) return false;
    }
    return true;
  };
  return {
    name: "native-map",
    rank: 5,
    capabilities: CAPS,
    open: () => life.open(async () => undefined),
    close: () => life.close(() => rows.clear()),
    async put(datum: Datum) {
      life.check();
      const existing = rows.get(datum.id);
      if (existing && !sameValue(existing, datum)) throw conflictError(datum.id, "native-map");
      if (!existing) rows.set(datum.id, copy(datum));
      return datum.id;
    },
    async get(id: string) {
      life.check();
      const d = rows.get(id);
      return d ? copy(d) : null;
    },
    async delete(id: string) {
      life.check();
      return rows.delete(id);
    },
    async list({ prefix, after, limit }: ResolvedListOptions) {
      life.check();
      return [...rows.values()].filter((d) => d.id.startsWith(prefix) && d.createdAt > after).sort(newestFirst).slice(0, limit).map(copy);
    },
    async *scan() {
      life.check();
      for (const d of [...rows.values()]) yield copy(d);
    },
    async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
      life.check();
      let hits = [...rows.values()].filter((d) => matches(q, d) && beyond(q, d)).sort((a, b) => inOrder(q, a, b));
      if (bug === "cursor-skips-next" && q.cursor !== null) hits = hits.slice(1);
      const page = hits.slice(0, q.limit).map(copy);
      if (q.select === "full" || bug === "meta-with-content") return page;
      return page.map(headerOf);
    },
    async count(q: ResolvedQuery) {
      life.check();
      return [...rows.values()].filter((d) => matches(q, d, { ignoreWhere: bug === "count-ignores-where" })).length;
    },
    async getMany(ids: readonly string[]) {
      life.check();
      const found = ids.map((id) => (rows.has(id) ? copy(rows.get(id) as Datum) : null));
      return bug === "get-many-drops-missing" ? found.filter((d) => d !== null) : found;
    },
    async deleteMany(q: ResolvedQuery) {
      life.check();
      const doomed = [...rows.values()].filter((d) => matches(q, d, { ignoreWhere: bug === "delete-many-ignores-where" })).map((d) => d.id);
      for (const id of doomed) rows.delete(id);
      return doomed;
    },
    async chainTail(id: string, n: number) {
      life.check();
      const chain: Datum[] = [];
      const seen = new Set<string>();
      const steps = bug === "tail-off-by-one" ? n + 1 : n;
      for (let next: string | null = id; next !== null && chain.length < steps; ) {
        if (seen.has(next)) throw dgentError("DGENT_CAUSAL_CYCLE", `the chain of ${id} loops at ${next}`, { unit: "native-map" });
        seen.add(next);
        const d = rows.get(next);
        if (d === undefined) break;
        chain.push(copy(d));
        next = d.causalParent;
      }
      return bug === "tail-newest-first" ? chain : chain.reverse();
    },
  };
}

const fw: TestFramework = { describe, it, beforeAll, afterAll };
runConformance({ name: "five methods over a Map", create: fiveMethods }, fw, { only: ["queries"] });
runConformance({ name: "native queries over a Map", create: () => nativeQueries() }, fw, { only: ["queries"] });

interface Outcome {
  readonly name: string;
  readonly status: "passed" | "failed" | "skipped";
  readonly error?: unknown;
}

/** Registers the kit's queries suite with a minimal framework and runs it in this test. */
async function runQueries(target: ConformanceTarget): Promise<Outcome[]> {
  const tests: { name: string; body: ((c: { skip(): void }) => unknown) | null }[] = [];
  const path: string[] = [];
  const mini: TestFramework = {
    describe(name, fn) {
      path.push(name);
      try {
        fn();
      } finally {
        path.pop();
      }
    },
    it: Object.assign((name: string, body: (c: { skip(): void }) => unknown) => void tests.push({ name: [...path, name].join(" › "), body }), {
      skip: (name: string) => void tests.push({ name: [...path, name].join(" › "), body: null }),
    }),
  };
  runConformance(target, mini, { only: ["queries"], deadlineMs: 2_000 });
  const outcomes: Outcome[] = [];
  for (const { name, body } of tests) {
    if (body === null) {
      outcomes.push({ name, status: "skipped" });
      continue;
    }
    let skipped = false;
    try {
      await body({ skip: () => void (skipped = true) });
      outcomes.push({ name, status: skipped ? "skipped" : "passed" });
    } catch (error) {
      outcomes.push({ name, status: "failed", error });
    }
  }
  return outcomes;
}

const CHECK_LINE = /the kit's check at [^\s]*testing\/suites\/[\w-]+\.ts:\d+:\d+/;

describe("the queries suite against planted query bugs", () => {
  for (const bug of QUERY_BUGS) {
    it(`fails on "${bug}", at the test meant for it, naming the kit's check`, async () => {
      const outcomes = await runQueries({ name: `native queries with "${bug}"`, create: () => nativeQueries(bug) });
      const failed = outcomes.filter((o) => o.status === "failed");
      const shown = failed.map((o) => `${o.name}: ${o.error instanceof Error ? o.error.message.split("\n")[0] : String(o.error)}`).join("\n") || "(none)";
      for (const part of MUST_FAIL[bug]) {
        assert.ok(failed.some((o) => o.name.includes(part)), `"${part}" did not fail; the failures were:\n${shown}`);
      }
      for (const o of failed) assert.match(o.error instanceof Error ? o.error.message : String(o.error), CHECK_LINE, `the failure of "${o.name}" names the kit's check`);
    });
  }
});
