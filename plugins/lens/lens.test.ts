import { afterAll, describe, expect, expectTypeOf, it } from "vitest";
import fc from "fast-check";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { makeDatum } from "../../core/datum.js";
import { ValidationError } from "../../core/errors.js";
import type { WarningInfo } from "../../core/hooks.js";
import { createStore } from "../../core/store.js";
import { bytes, expectDgent, removeTempDirs, sqliteTier, text } from "../../test/plugins-support.js";
import { compression, compressionPlugin } from "../compression/index.js";
import { compose, field, identity, iso, jsonLens, lens, lensView, pipe, taggedView, viewThrough, type Lens, lensPlugin } from "./index.js";

afterAll(removeTempDirs);

const person = jsonLens({
  title: "person",
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer", minimum: 0 }, tags: { type: "array", items: { type: "string" } } },
  required: ["name", "age"],
  additionalProperties: false,
});
const note = jsonLens({ type: "object", properties: { text: { type: "string" }, pinned: { type: ["boolean", "null"] } }, required: ["text"] }, { name: "note" });

describe("jsonLens", () => {
  it("infers the TypeScript type from the schema", () => {
    expectTypeOf(person.get).returns.toEqualTypeOf<{ name: string; age: number; tags?: string[] }>();
    expectTypeOf(note.get).returns.toEqualTypeOf<{ text: string; pinned?: boolean | null }>();
    expectTypeOf(jsonLens({ enum: ["a", "b"] }).get).returns.toEqualTypeOf<"a" | "b">();
    expectTypeOf(jsonLens({ anyOf: [{ type: "string" }, { type: "array", items: { type: "number" } }] }).get).returns.toEqualTypeOf<string | number[]>();
    expectTypeOf(jsonLens({ $ref: "#/$defs/x", $defs: { x: { type: "string" } } }).get).returns.toEqualTypeOf<unknown>();
    // @ts-expect-error age must be a number
    const wrong = () => person.put({ name: "Ada", age: "36" });
    expect(wrong).toThrow(expect.objectContaining({ code: "DGENT_LENS_INVALID" }));
  });

  it("get parses and validates at read time; put validates and serialises", () => {
    const b = person.put({ name: "Ada", age: 36 });
    expect(text(makeDatum({ content: b }))).toBe('{"name":"Ada","age":36}');
    expect(person.get(b)).toEqual({ name: "Ada", age: 36 });
    expect(person.is({ name: "Ada", age: 36 })).toBe(true);
    expect(person.check({ name: "Ada" })[0]?.keyword).toBe("required");
  });

  it("fails with DGENT_LENS_INVALID carrying ajv's errors", () => {
    const bad = bytes(JSON.stringify({ name: 7, age: -1, extra: true }));
    let caught: unknown;
    try {
      person.get(bad);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const err = caught as ValidationError;
    expect(err.code).toBe("DGENT_LENS_INVALID");
    const errors = err.details.errors as Array<{ instancePath: string; keyword: string }>;
    expect(errors.map((e) => `${e.instancePath}:${e.keyword}`).sort()).toEqual(["/age:minimum", "/name:type", ":additionalProperties"]);
    expect(err.message).toContain("/name: must be string");
    expect(err.details.lens).toBe("person");
    expect(() => person.get(bytes("{not json"))).toThrow(expect.objectContaining({ code: "DGENT_LENS_INVALID", message: expect.stringContaining("is not JSON") }));
    expect(() => person.get(new Uint8Array([0xff, 0xfe]))).toThrow(expect.objectContaining({ code: "DGENT_LENS_INVALID" }));
    expect(() => person.put({ name: "x", age: 1.5 })).toThrow(expect.objectContaining({ code: "DGENT_LENS_INVALID" }));
  });

  it("an invalid schema is refused when the lens is made", () => {
    expect(() => jsonLens({ type: "object", properties: { a: { type: "strnig" } } })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });
});

// Lenses over JSON-like trees for the laws: field lenses down a path, isos at the leaf.
type Tree = { [k: string]: unknown };
const numberIsos: Lens<unknown, unknown>[] = [
  iso<unknown, unknown>("×2", (n) => (n as number) * 2, (n) => (n as number) / 2),
  iso<unknown, unknown>("+7", (n) => (n as number) + 7, (n) => (n as number) - 7),
  iso<unknown, unknown>("neg", (n) => -(n as number), (n) => -(n as number)),
  identity<unknown>(),
];
const keys = ["a", "b", "c"] as const;
const fieldLens = (k: string) => field<Tree, string>(k) as Lens<unknown, unknown>;
/** A random chain of 3 lenses that fit together, with a source and a value to put. */
const chain = fc
  .tuple(fc.integer({ min: 0, max: 3 }), fc.array(fc.constantFrom(...keys), { minLength: 3, maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }))
  .chain(([depth, path, isoPicks]) => {
    // The first `depth` lenses are fields (depth ≤ 3), the rest isos on the number found there.
    const lenses = [0, 1, 2].map((i) => (i < depth ? fieldLens(path[i] as string) : (numberIsos[isoPicks[i] as number] as Lens<unknown, unknown>)));
    let leaf: fc.Arbitrary<unknown> = fc.integer({ min: -1e6, max: 1e6 });
    for (let i = Math.min(depth, 3) - 1; i >= 0; i--) {
      const inner = leaf;
      leaf = fc.record({ [path[i] as string]: inner, other: fc.integer() }) as fc.Arbitrary<unknown>;
    }
    return fc.tuple(fc.constant(lenses), leaf, fc.integer({ min: -1e6, max: 1e6 }));
  });

describe("lens composition", () => {
  it("property: associativity, (f >> g) >> h = f >> (g >> h), for get and put", () => {
    fc.assert(
      fc.property(chain, ([[f, g, h], source, value]) => {
        const left = compose(compose(f as Lens<unknown, unknown>, g as Lens<unknown, unknown>), h as Lens<unknown, unknown>);
        const right = compose(f as Lens<unknown, unknown>, compose(g as Lens<unknown, unknown>, h as Lens<unknown, unknown>));
        expect(left.get(source)).toEqual(right.get(source));
        expect(left.put(value, source)).toEqual(right.put(value, source));
        expect(left.name).toBe(right.name.replace(/^(.*?) >> (.*)$/, "$1 >> $2"));
      }),
      { numRuns: 500 },
    );
  });

  it("property: associativity holds with a JSON lens at the front (bytes → value → field → iso)", () => {
    const doc = jsonLens({ type: "object", properties: { a: { type: "object", properties: { b: { type: "number" } }, required: ["b"] } }, required: ["a"] });
    const a = field<{ a: { b: number } }, "a">("a");
    const b = field<{ b: number }, "b">("b");
    const twice = iso<number, number>("×2", (n) => n * 2, (n) => n / 2);
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), fc.integer({ min: -1e6, max: 1e6 }), (n, m) => {
        const source = doc.put({ a: { b: n } });
        const left = compose(compose(compose(doc, a), b), twice);
        const right = compose(doc, compose(a, compose(b, twice)));
        const mid = pipe(doc, compose(a, b), twice);
        expect(left.get(source)).toBe(n * 2);
        expect(right.get(source)).toBe(n * 2);
        expect(mid.get(source)).toBe(n * 2);
        expect(text(makeDatum({ content: left.put(m, source) }))).toBe(text(makeDatum({ content: right.put(m, source) })));
        expect(doc.get(left.put(m, source))).toEqual({ a: { b: m / 2 } });
      }),
    );
  });

  it("property: the lens laws hold for composed lenses (get(put(v, s)) = v, put(get(s), s) = s) and identity is a unit", () => {
    fc.assert(
      fc.property(chain, ([[f, g, h], source, value]) => {
        const l = pipe(f as Lens<unknown, unknown>, g as Lens<unknown, unknown>, h as Lens<unknown, unknown>);
        // As JSON: the values are JSON documents (and -0 is 0 there).
        const json = (v: unknown) => JSON.stringify(v);
        expect(json(l.get(l.put(value, source)))).toBe(json(value));
        expect(json(l.put(l.get(source), source))).toBe(json(source));
        const withUnit = compose(identity<unknown>(), compose(l, identity<unknown>()));
        expect(withUnit.get(source)).toEqual(l.get(source));
        expect(withUnit.put(value, source)).toEqual(l.put(value, source));
      }),
      { numRuns: 300 },
    );
  });
});

describe("views", () => {
  it("viewThrough: a store read and written as typed values", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const people = viewThrough(store, person, { key: "type", value: "person" });
    const id = await people.put({ name: "Ada", age: 36 }, { idPrefix: "people/" });
    expect(id.startsWith("people/")).toBe(true);
    const ada = await people.get(id);
    expectTypeOf(ada).toEqualTypeOf<{ name: string; age: number; tags?: string[] } | null>();
    expect(ada).toEqual({ name: "Ada", age: 36 });
    expect((await store.get(id))?.metadata).toEqual({ type: "person" });
    await store.put(makeDatum({ content: "untagged" }));
    expect((await people.list()).map((x) => x.value.name)).toEqual(["Ada"]);
    expect(await people.get("nope")).toBeNull();
    await expectDgent(people.put({ name: "Bob", age: -1 }), "DGENT_LENS_INVALID");
  });

  it("taggedView: each datum through the lens its metadata tag chooses", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const view = taggedView(store, { key: "type", lenses: { person, note } });
    const ada = await view.put("person", { name: "Ada", age: 36 }, { createdAt: 3 });
    const memo = await view.put("note", { text: "buy milk" }, { createdAt: 2 });
    const raw = await store.put(makeDatum({ content: "plain bytes", createdAt: 1 }));
    const one = await view.get(ada);
    if (one?.tag === "person") expect(one.value.age).toBe(36); // narrowed by tag
    else throw new Error("expected a person");
    const all = await view.list();
    expect(all.map((v) => v.tag)).toEqual(["person", "note", null]);
    expect(all[1]?.value).toEqual({ text: "buy milk" });
    expect(text(makeDatum({ content: all[2]?.value as Uint8Array }))).toBe("plain bytes");
    expect((await view.as("note").get(memo))?.text).toBe("buy milk");
    expect((await view.get(raw))?.tag).toBeNull();
    await store.put(makeDatum({ content: '{"name":1}', metadata: { type: "person" }, id: "broken" }));
    await expectDgent(view.get("broken"), "DGENT_LENS_INVALID");
  });
});

describe("the lens plugin", () => {
  const schemas = {
    person: { type: "object", properties: { name: { type: "string" }, age: { type: "integer" } }, required: ["name", "age"] },
  };

  it("refuses a tagged datum that does not fit, before anything is written; untagged data passes", async () => {
    const store = createStore({ tiers: [memoryAdapter()], plugins: [lensPlugin({ schemas })] });
    const bad = makeDatum({ content: '{"name":"Ada"}', metadata: { type: "person" } });
    const err = await expectDgent(store.put(bad), "DGENT_LENS_INVALID");
    expect((err.details.errors as Array<{ keyword: string }>)[0]?.keyword).toBe("required");
    expect(await store.get(bad.id)).toBeNull();
    await store.put(makeDatum({ content: '{"name":"Ada","age":36}', metadata: { type: "person" } }));
    await store.put(makeDatum({ content: "anything", metadata: { type: "unknown-tag" } }));
    await store.put(makeDatum({ content: "anything" }));
    expect((await store.plugin(lens)).stats()).toMatchObject({ refused: 1 });
  });

  it("schema opt-in later: data written before the schema fails at read time with ajv's errors", async () => {
    const tier = sqliteTier();
    const before = createStore({ tiers: [tier] });
    await before.put(makeDatum({ id: "old", content: '{"name":"Ada","age":"36"}', metadata: { type: "person" } }));
    await before.put(makeDatum({ id: "fine", content: '{"name":"Bob","age":40}', metadata: { type: "person" } }));
    await before.close();
    const after = createStore({ tiers: [sqliteAdapter({ path: tier.path })], plugins: [lensPlugin({ schemas })] });
    const err = await expectDgent(after.get("old"), "DGENT_LENS_INVALID");
    expect(err.details.errors).toEqual([expect.objectContaining({ instancePath: "/age", keyword: "type" })]);
    await expectDgent(after.list(), "DGENT_LENS_INVALID");
    expect(text(await after.get("fine"))).toContain("Bob");
    const view = await lensView(after);
    const fine = await view.get("fine");
    expect(fine?.tag === "person" && fine.value).toEqual({ name: "Bob", age: 40 });
    await after.close();

    const lenient = createStore({ tiers: [sqliteAdapter({ path: tier.path })], plugins: [lensPlugin({ schemas, onRead: "warn" })] });
    const warnings: WarningInfo[] = [];
    lenient.hooks.warning.tap("test", (w) => void warnings.push(w));
    expect(text(await lenient.get("old"))).toContain("Ada");
    expect(warnings[0]).toMatchObject({ unit: "lens", details: { id: "old" } });
    await lenient.close();
  });

  it("with compression stacked, validates the caller's bytes on write and the decompressed bytes on read", async () => {
    const store = createStore({
      tiers: [memoryAdapter()],
      plugins: [compressionPlugin({ threshold: 0 }), lensPlugin({ schemas })],
    });
    const d = makeDatum({ content: JSON.stringify({ name: "x".repeat(300), age: 1 }), metadata: { type: "person" } });
    await store.put(d);
    expect(text(await store.get(d.id))).toBe(text(d));
    expect((await store.plugin(compression)).stats().compressed).toBe(1);
  });

  it("lensView needs the plugin; bad schemas and options are refused", async () => {
    await expectDgent(lensView(createStore({ tiers: [memoryAdapter()] })), "DGENT_UNKNOWN_PLUGIN");
    await expectDgent(
      createStore({ tiers: [memoryAdapter()], plugins: [lensPlugin({ schemas: { p: { type: "objet" } } })] }).open(),
      "DGENT_INVALID_OPTIONS",
    );
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [lensPlugin({} as never)] })).toThrow(
      expect.objectContaining({ code: "DGENT_INVALID_OPTIONS", message: expect.stringContaining("schemas") }),
    );
  });
});
