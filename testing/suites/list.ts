import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { ListOptions } from "../../core/protocol.js";
import { assertSameDatum, ids, referenceNewestFirst, rng, type Scope, type Suite } from "../support.js";

/**
 * Where a list case runs. `prefixed`: its datums' ids start with the test's random prefix and
 * every list call passes it (safe on shared storage). `whole`: a fresh instance, which holds only
 * what the case writes (`create()` gives isolated storage), ids without a random prefix, and list
 * calls without a prefix, so the unprefixed path of the adapter (a full index walk, a range scan
 * from the start of the key space) is what answers.
 */
interface Space {
  /** Puts through the store, remembering the id (a whole listing must show nothing else). */
  put(datum: Datum): Promise<string>;
  /** The ids' common start: the random prefix, or "" for the whole listing. */
  readonly base: string;
  /** The id of `key` in this space. */
  id(key: string): string;
  /** `key` of an id of this space. */
  key(id: string): string;
  /** Lists with `sub` as the prefix below the base; `sub` undefined: no prefix at all in the whole listing. */
  list(options?: ListOptions & { sub?: string }): Promise<Datum[]>;
}

type Mode = "prefixed" | "whole";

async function space(scope: Scope, mode: Mode): Promise<Space> {
  const { store } = await scope.fresh();
  const base = mode === "prefixed" ? scope.prefix : "";
  const written = new Set<string>();
  return {
    put(datum) {
      written.add(datum.id);
      return store.put(datum);
    },
    base,
    id: (key) => base + key,
    key: (id) => id.slice(base.length),
    async list(options = {}) {
      const { sub, ...rest } = options;
      let listed: Datum[];
      if (mode === "prefixed") listed = await store.list({ ...rest, prefix: base + (sub ?? "") });
      else if (sub !== undefined) listed = await store.list({ ...rest, prefix: sub });
      else listed = Object.keys(rest).length === 0 ? await store.list() : await store.list(rest);
      if (mode === "whole") {
        const strangers = listed.filter((d) => !written.has(d.id)).map((d) => d.id);
        assert.deepEqual(
          strangers,
          [],
          "list() without a prefix returned ids this test never wrote: every create() must give an instance over isolated storage",
        );
      }
      return listed;
    },
  };
}

/** Ids whose order by UTF-16 code unit differs from their order by code point (UTF-8 bytes). */
const TIE_KEYS_NEWEST_FIRST = [
  "\u{1F989}", // U+1F989: after every BMP character by code point, before U+E000 by UTF-16 unit
  "\u{10000}",
  "\uFFFD",
  "\uE000",
  "日",
  "é",
  "b",
  "a\u{1F989}",
  "a\uFFFD",
  "a/z",
  "a",
  "Z",
  "0",
];

export function listSuite(s: Suite): void {
  for (const mode of ["prefixed", "whole"] as const) {
    const named = (name: string) => (mode === "prefixed" ? name : `${name}, over the whole listing (no prefix)`);
    const test = (name: string, body: (sp: Space, scope: Scope) => Promise<void>) =>
      s.test(named(name), async (scope) => body(await space(scope, mode), scope));

    test("list is newest first by createdAt, then by id descending", async (sp) => {
      const put: Datum[] = [];
      for (const [key, createdAt] of [["b", 10], ["a", 30], ["c", 20], ["y", 20], ["x", 20]] as const) {
        const d = makeIn(sp, key, createdAt);
        put.push(d);
        await sp.put(d);
      }
      const listed = await sp.list();
      assert.deepEqual(ids(listed), ["a", "y", "x", "c", "b"].map(sp.id));
      for (const d of listed) assertSameDatum(d, put.find((p) => p.id === d.id) as Datum, "listed datum");
    });

    test("datums of one createdAt come by id descending in code point (UTF-8 byte) order, not UTF-16 order", async (sp) => {
      // Written in an order that is neither the listing's nor its reverse.
      const random = rng(7);
      const shuffled = TIE_KEYS_NEWEST_FIRST.map((key) => ({ key, r: random() })).sort((a, b) => a.r - b.r).map((x) => x.key);
      for (const [i, key] of shuffled.entries()) await sp.put(makeIn(sp, key, 500, `tie ${i}`));
      await sp.put(makeIn(sp, "older", 499));
      await sp.put(makeIn(sp, "newer", 501));
      const want = ["newer", ...TIE_KEYS_NEWEST_FIRST, "older"].map(sp.id);
      assert.deepEqual(ids(await sp.list()), want);
      assert.deepEqual(ids(await sp.list({ limit: 4 })), want.slice(0, 4), "limit cuts the ordered listing");
      assert.deepEqual(ids(await sp.list({ after: 499 })), want.slice(0, -1), "after keeps the whole tie");
      assert.deepEqual(ids(await sp.list({ after: 500 })), ["newer"].map(sp.id), "after excludes the whole tie");
    });

    test("limit defaults to 100, and limit 0 and small limits are honoured", async (sp) => {
      const batch = Array.from({ length: 120 }, (_, i) => makeIn(sp, `d${String(i).padStart(4, "0")}`, 1000 + i));
      for (const d of batch) await sp.put(d);
      const all = await sp.list();
      assert.equal(all.length, 100, "the default limit");
      assert.deepEqual(ids(all), ids([...batch].reverse().slice(0, 100)), "the newest 100, newest first");
      assert.deepEqual(await sp.list({ limit: 0 }), []);
      assert.deepEqual(ids(await sp.list({ limit: 3 })), ids(all.slice(0, 3)));
      assert.deepEqual(ids(await sp.list({ limit: 1000 })), ids([...batch].reverse()));
    });

    test("after keeps only createdAt strictly greater; by default createdAt 0 is listed", async (sp) => {
      for (const [i, t] of [200, 0, 400, 100, 200, 300].entries()) await sp.put(makeIn(sp, `t${i}`, t));
      const times = async (options?: ListOptions) => (await sp.list(options)).map((d) => d.createdAt);
      assert.deepEqual(await times(), [400, 300, 200, 200, 100, 0], "no after: everything, createdAt 0 too");
      assert.deepEqual(await times({ after: 200 }), [400, 300], "after 200 excludes 200");
      assert.deepEqual(await times({ after: 199 }), [400, 300, 200, 200]);
      assert.deepEqual(await times({ after: 0 }), [400, 300, 200, 200, 100], "after 0 excludes createdAt 0");
      assert.deepEqual(await times({ after: -1 }), [400, 300, 200, 200, 100, 0]);
      assert.deepEqual(await times({ after: 400 }), []);
      assert.deepEqual(await times({ after: 200, limit: 1 }), [400]);
    });

    test("prefix selects ids that start with it, including non-ASCII prefixes", async (sp) => {
      const keys = ["x/1", "x/2", "x2", "y/1", "é/1", "é/2", "ê/1", "x"];
      for (const [i, key] of keys.entries()) await sp.put(makeIn(sp, key, 100 + i));
      const under = async (p: string) => (await sp.list({ sub: p })).map((d) => sp.key(d.id));
      assert.deepEqual(await under("x/"), ["x/2", "x/1"]);
      assert.deepEqual(await under("x"), ["x", "x2", "x/2", "x/1"]);
      assert.deepEqual(await under("é/"), ["é/2", "é/1"]);
      assert.deepEqual(await under("z"), []);
      assert.deepEqual(await under(""), [...keys].reverse(), "an empty prefix selects everything");
      assert.deepEqual((await sp.list()).map((d) => sp.key(d.id)), [...keys].reverse());
    });

    test("prefix, after and limit combine", async (sp) => {
      for (let i = 0; i < 30; i++) await sp.put(makeIn(sp, `${i % 2 ? "odd" : "even"}/${i}`, i));
      const listed = await sp.list({ sub: "odd/", after: 10, limit: 4 });
      assert.deepEqual(listed.map((d) => d.createdAt), [29, 27, 25, 23]);
      assert.deepEqual((await sp.list({ after: 10, limit: 4 })).map((d) => d.createdAt), [29, 28, 27, 26]);
    });

    test("list agrees with a reference model on random ids, times and queries", async (sp) => {
      const seed = mode === "prefixed" ? 0x5eed : 0x5eee;
      const random = rng(seed);
      const alphabet = ["a", "b", "Z", "/", "é", "日", "\u{1F989}", "\uFFFD", "\uE000", "0"];
      const pick = () => alphabet[Math.floor(random() * alphabet.length)] as string;
      const model = new Map<string, Datum>();
      for (let i = 0; i < 150; i++) {
        const id = sp.id(Array.from({ length: 1 + Math.floor(random() * 4) }, pick).join(""));
        if (model.has(id)) continue;
        const d = makeIn(sp, sp.key(id), Math.floor(random() * 20));
        model.set(id, d);
        await sp.put(d);
      }
      for (let q = 0; q < 30; q++) {
        const sub = random() < 0.4 ? undefined : pick() + (random() < 0.4 ? pick() : "");
        const after = random() < 0.5 ? -1 : Math.floor(random() * 20);
        const limit = 1 + Math.floor(random() * 160);
        const prefix = sp.base + (sub ?? "");
        const expected = [...model.values()]
          .filter((d) => d.id.startsWith(prefix) && d.createdAt > after)
          .sort(referenceNewestFirst)
          .slice(0, limit);
        const actual = await sp.list({ ...(sub === undefined ? {} : { sub }), after, limit });
        assert.deepEqual(ids(actual), ids(expected), `seed ${seed}, query ${q}: ${JSON.stringify({ prefix, after, limit })}`);
      }
    });
  }
}

function makeIn(sp: Space, key: string, createdAt: number, text = key): Datum {
  return {
    id: sp.id(key),
    content: new TextEncoder().encode(`content of ${text}`),
    createdAt,
    causalParent: null,
    metadata: {},
  };
}
