import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, isDgentError, makeDatum, type Adapter, type Store } from "../../compose/index.js";
import { jsonLens, lensPlugin } from "../../plugins/lens/index.js";
import { CODEC_KEY, bytes, bytesCodec, codecOf, decodeDatum, json, jsonCodec, text, textCodec, typed, whyNotJson, type Codec } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-codec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error `fn` throws (sync or async); fails the test when it does not throw. */
async function caught(fn: () => unknown): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await fn();
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected an error");
}

describe("whyNotJson's quick check", () => {
  it("accepts exactly what the explaining walk accepts (random values, with and without things JSON cannot hold)", () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true, withUnicodeString: true }), (value) => {
        // An explicit `seen` set takes the explaining walk alone.
        expect(whyNotJson(value) === null).toBe(whyNotJson(value, "$", new Set()) === null);
        expect(whyNotJson(value)).toBe(whyNotJson(value, "$", new Set()));
      }),
      { numRuns: 2000 },
    );
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(whyNotJson(cyclic)).toBe("the value at $.self refers to itself (a cycle)");
    expect(whyNotJson({ f: () => 1 })).toMatch(/a function at \$\.f/);
  });
});

describe("codecs", () => {
  it("json: any JSON value comes back equal (property)", () => {
    const codec = jsonCodec<unknown>();
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(codec.decode(codec.encode(value))).toStrictEqual(JSON.parse(JSON.stringify(value)));
        expect(whyNotJson(value)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it("json refuses, naming the path, what would not come back equal (functions, Dates, Maps, undefined, NaN, cycles, holes, bigints, class instances)", async () => {
    const codec = jsonCodec<unknown>();
    class Point {
      x = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cases: Array<[unknown, RegExp]> = [
      [{ onDone: () => 1 }, /a function at \$\.onDone cannot be stored/],
      [{ when: new Date(0) }, /a Date at \$\.when is not plain JSON .*toISOString/],
      [{ m: new Map() }, /a Map at \$\.m/],
      [{ a: [1, undefined] }, /undefined at \$\.a\[1\]/],
      [{ "odd key": Number.NaN }, /NaN at \$\["odd key"\]/],
      [cyclic, /\$\.self refers to itself/],
      // biome-ignore lint: a sparse array is the point
      [[1, , 3], /hole at 1/],
      [{ n: 10n }, /a bigint at \$\.n/],
      [new Point(), /a Point at \$/],
      [undefined, /undefined at \$/],
      ["\ud800", /lone UTF-16 surrogate/],
    ];
    for (const [value, message] of cases) {
      const error = await caught(() => codec.encode(value));
      expect(error.code).toBe("DGENT_INVALID_CONTENT");
      expect(error.message).toMatch(message);
      expect(error.details).toMatchObject({ codec: "json" });
    }
    // Not strict: JSON.stringify's own choices are stored.
    expect(new TextDecoder().decode(jsonCodec<unknown>({ strict: false }).encode({ when: new Date(0), f: () => 1 }))).toBe('{"when":"1970-01-01T00:00:00.000Z"}');
  });

  it("json and text refuse content that is not UTF-8 (no silent U+FFFD) or not JSON", async () => {
    const notUtf8 = Uint8Array.of(0x7b, 0xff, 0x7d);
    expect((await caught(() => jsonCodec().decode(notUtf8))).code).toBe("DGENT_INVALID_CONTENT");
    expect((await caught(() => textCodec.decode(notUtf8))).message).toMatch(/not UTF-8/);
    expect((await caught(() => jsonCodec().decode(new TextEncoder().encode("{oops")))).message).toMatch(/not UTF-8 JSON/);
    expect((await caught(() => textCodec.encode("a\udc00b"))).code).toBe("DGENT_INVALID_CONTENT");
    fc.assert(fc.property(fc.string({ unit: "grapheme" }), (s) => textCodec.decode(textCodec.encode(s)) === s));
    expect(bytesCodec.decode(bytesCodec.encode(Uint8Array.of(0, 255)))).toEqual(Uint8Array.of(0, 255));
  });
});

/** A tier written against the five methods only, as a third party's would be. */
function fiveMethods(): Adapter {
  const inner = memoryAdapter();
  const { refs: _r, transactions: _t, query: _q, ...capabilities } = inner.capabilities;
  return { name: "plain", rank: 5, capabilities, open: (c) => inner.open(c), close: () => inner.close(), put: (d) => inner.put(d), get: (id) => inner.get(id), delete: (id) => inner.delete(id), list: (o) => inner.list(o) };
}

const tiers = {
  memory: () => createStore({ tiers: [memoryAdapter()] }),
  "a five-method adapter": () => createStore({ tiers: [fiveMethods()] }),
  sqlite: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `${Math.random().toString(36).slice(2)}.db`) })] }),
} as const;

interface Msg {
  role: "user" | "assistant";
  text: string;
}

describe.each(Object.keys(tiers) as Array<keyof typeof tiers>)("typed views on %s", (tier) => {
  const open = async (): Promise<Store> => {
    const store = tiers[tier]();
    await store.open();
    return store;
  };

  it("json<Msg>: put records the codec; get, list, query, children and causalChain return values alongside datums", async () => {
    const store = await open();
    const msgs = json<Msg>(store, { prefix: "msg/", metadata: { thread: "t1" } });
    const q = await msgs.put({ role: "user", text: "hi" }, { metadata: { role: "user" } });
    const a = await msgs.put({ role: "assistant", text: "hello" }, { causalParent: q.id, metadata: { role: "assistant" } });
    expect(q.id.startsWith("msg/")).toBe(true);
    expect(q.datum.metadata).toEqual({ thread: "t1", role: "user", [CODEC_KEY]: "json" });
    expect(new TextDecoder().decode((await store.get(q.id))!.content)).toBe('{"role":"user","text":"hi"}');

    const got = await msgs.get(a.id);
    expect(got?.value).toEqual({ role: "assistant", text: "hello" });
    expect(got?.datum.causalParent).toBe(q.id);
    expect(await msgs.get("msg/none")).toBeNull();

    // Another codec's datums and datums outside the prefix are not listed.
    await text(store, { prefix: "msg/" }).put("plain words");
    await json(store).put({ elsewhere: true });
    expect((await msgs.list({ order: "oldest" })).map((t) => t.value.text)).toEqual(["hi", "hello"]);
    const page = await msgs.query({ where: { role: "assistant" } });
    expect(page.items.map((t) => t.value)).toEqual([{ role: "assistant", text: "hello" }]);
    expect((await msgs.children(q.id)).items.map((t) => t.id)).toEqual([a.id]);
    expect((await msgs.causalChain(a.id)).map((t) => t.value.role)).toEqual(["user", "assistant"]);
    expect((await msgs.getMany([a.id, "msg/none", q.id])).map((t) => t?.value.text ?? null)).toEqual(["hello", null, "hi"]);
    await expect(msgs.list({ prefix: "other/" })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
    await store.close();
  });

  it("a decode failure names the datum and the codec; a datum recorded with another codec is refused without decoding", async () => {
    const store = await open();
    await store.put(makeDatum({ id: "bad/1", content: "{not json", metadata: { [CODEC_KEY]: "json" } }));
    await store.put(makeDatum({ id: "bad/2", content: "words", metadata: { [CODEC_KEY]: "text" } }));
    const view = json(store);
    const broken = await caught(() => view.get("bad/1"));
    expect(broken.code).toBe("DGENT_INVALID_CONTENT");
    expect(broken.message).toMatch(/datum "bad\/1" does not decode with the codec "json"/);
    expect(broken.details).toMatchObject({ id: "bad/1", codec: "json" });
    const other = await caught(() => view.get("bad/2"));
    expect(other.message).toMatch(/datum "bad\/2" was written with the codec "text", not "json"/);
    expect(other.details).toMatchObject({ id: "bad/2", codec: "json", recorded: "text" });
    // A list meeting one bad datum fails and names it.
    await expect(view.list({ prefix: "bad/" })).rejects.toMatchObject({ code: "DGENT_INVALID_CONTENT", details: { id: "bad/1" } });
    // Untagged content is read with the view's codec (data written before the view existed).
    await store.put(makeDatum({ id: "old/1", content: '{"v":1}' }));
    expect((await view.get("old/1"))?.value).toEqual({ v: 1 });
    await store.close();
  });

  it("any reader decodes by the recorded codec (decodeDatum), including a codec of its own", async () => {
    const store = await open();
    const csv: Codec<string[]> = {
      name: "csv-row",
      encode: (cells) => new TextEncoder().encode(cells.join(",")),
      decode: (b) => new TextDecoder().decode(b).split(","),
    };
    const rows = typed(store, csv);
    const r = await rows.put(["a", "b"]);
    const t = await text(store).put("hello");
    const b = await bytes(store).put(Uint8Array.of(1, 2));
    const j = await json(store).put([1, { x: null }]);
    expect(decodeDatum((await store.get(t.id))!)).toEqual({ codec: "text", value: "hello" });
    expect(decodeDatum((await store.get(j.id))!)).toEqual({ codec: "json", value: [1, { x: null }] });
    expect([...(decodeDatum((await store.get(b.id))!).value as Uint8Array)]).toEqual([1, 2]);
    const unknown = await caught(() => decodeDatum(r.datum));
    expect(unknown.message).toMatch(/codec "csv-row", which this reader does not know/);
    expect(decodeDatum(r.datum, { "csv-row": csv as Codec<unknown> }).value).toEqual(["a", "b"]);
    expect(codecOf(r.datum)).toBe("csv-row");
    const untagged = await caught(() => decodeDatum(makeDatum({ content: "x" })));
    expect(untagged.details).toMatchObject({ codec: null });
    await store.close();
  });

  it("a schema (through the lens plugin's ajv lens) is checked on put, before anything is written, and on every read", async () => {
    const store = await open();
    const people = json(store, {
      prefix: "person/",
      schema: { type: "object", properties: { name: { type: "string" }, age: { type: "integer", minimum: 0 } }, required: ["name", "age"] },
    });
    const ada = await people.put({ name: "Ada", age: 36 });
    const typedAge: number = ada.value.age; // inferred from the schema
    expect(typedAge).toBe(36);
    const refused = await caught(() => people.put({ name: "Bob", age: -1 }, { id: "person/bob" }));
    expect(refused.code).toBe("DGENT_LENS_INVALID");
    expect(refused.message).toMatch(/datum "person\/bob" \(codec "json"\) does not fit lens "schema": \/age: must be >= 0/);
    expect(await store.get("person/bob")).toBeNull();
    // Written around the view: caught at read time, naming the datum.
    await store.put(makeDatum({ id: "person/eve", content: '{"name":"Eve"}', metadata: { [CODEC_KEY]: "json" } }));
    const late = await caught(() => people.get("person/eve"));
    expect(late.code).toBe("DGENT_LENS_INVALID");
    expect(late.details).toMatchObject({ id: "person/eve", codec: "json", lens: "schema" });
    // A lens made elsewhere works too, and keeps its name.
    const note = jsonLens({ type: "object", properties: { text: { type: "string" } }, required: ["text"] }, { name: "note" });
    const notes = json(store, { schema: note });
    await expect(notes.put({ text: 3 } as unknown as { text: string })).rejects.toMatchObject({ code: "DGENT_LENS_INVALID", details: { lens: "note" } });
    await store.close();
  });

  it("the reserved key: a view will not write another codec's name, nor filter on it", async () => {
    const store = await open();
    const view = json(store);
    await expect(view.put({}, { metadata: { [CODEC_KEY]: "text" } })).rejects.toMatchObject({ code: "DGENT_INVALID_METADATA" });
    expect(() => json(store, { metadata: { [CODEC_KEY]: "json" } })).toThrow(/reserved/);
    await expect(view.query({ where: { [CODEC_KEY]: "text" } })).rejects.toMatchObject({ code: "DGENT_INVALID_QUERY" });
    expect(() => typed(store, { name: "", encode: () => new Uint8Array(), decode: () => 1 })).toThrow(/non-empty name/);
    // A function in the value is refused before anything is written, naming the path and the codec.
    const error = await caught(() => view.put({ callback: () => 1 } as never, { id: "fn/1" }));
    expect(error.code).toBe("DGENT_INVALID_CONTENT");
    expect(error.message).toMatch(/datum "fn\/1" does not encode with the codec "json": .*function at \$\.callback/);
    expect(await store.get("fn/1")).toBeNull();
    await store.close();
  });
});

describe("typed views with the lens plugin in the store", () => {
  it("the plugin validates on write what a view tags for it", async () => {
    const store = createStore({
      tiers: [memoryAdapter()],
      plugins: [lensPlugin({ key: "type", schemas: { person: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } } })],
    });
    const people = json<{ name?: string }>(store, { metadata: { type: "person" } });
    await people.put({ name: "Ada" });
    const error = await caught(() => people.put({}));
    expect(isDgentError(error, "DGENT_LENS_INVALID")).toBe(true);
    await store.close();
  });
});
