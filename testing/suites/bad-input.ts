import assert from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { ErrorCode } from "../../core/error-codes.js";
import { assertSameDatum, expectCode, type Suite } from "../support.js";

type Case = readonly [string, (good: Datum) => unknown, ErrorCode];

const CASES: readonly Case[] = [
  ["an empty id", (g) => ({ ...g, id: "" }), "DGENT_INVALID_ID"],
  ["a numeric id", (g) => ({ ...g, id: 42 }), "DGENT_INVALID_ID"],
  ["an id with a NUL", (g) => ({ ...g, id: `${g.id}\u0000x` }), "DGENT_INVALID_ID"],
  ["an id with a newline", (g) => ({ ...g, id: `${g.id}\nx` }), "DGENT_INVALID_ID"],
  ["an id of 1025 bytes", (g) => ({ ...g, id: g.id + "x".repeat(1025) }), "DGENT_INVALID_ID"],
  ["an id of 513 two-byte characters", (g) => ({ ...g, id: "é".repeat(513) }), "DGENT_INVALID_ID"],
  ["an id with a lone surrogate", (g) => ({ ...g, id: `${g.id}\ud800` }), "DGENT_INVALID_ID"],
  ["string content", (g) => ({ ...g, content: "text" }), "DGENT_INVALID_CONTENT"],
  ["an array as content", (g) => ({ ...g, content: [1, 2, 3] }), "DGENT_INVALID_CONTENT"],
  ["null content", (g) => ({ ...g, content: null }), "DGENT_INVALID_CONTENT"],
  ["an ArrayBuffer as content", (g) => ({ ...g, content: new ArrayBuffer(4) }), "DGENT_INVALID_CONTENT"],
  ["a numeric metadata value", (g) => ({ ...g, metadata: { n: 1 } }), "DGENT_INVALID_METADATA"],
  ["an undefined metadata value", (g) => ({ ...g, metadata: { u: undefined } }), "DGENT_INVALID_METADATA"],
  ["a nested metadata object", (g) => ({ ...g, metadata: { o: { deep: "x" } } }), "DGENT_INVALID_METADATA"],
  ["metadata as an array", (g) => ({ ...g, metadata: ["a"] }), "DGENT_INVALID_METADATA"],
  ["null metadata", (g) => ({ ...g, metadata: null }), "DGENT_INVALID_METADATA"],
  ["createdAt NaN", (g) => ({ ...g, createdAt: Number.NaN }), "DGENT_INVALID_DATUM"],
  ["createdAt negative", (g) => ({ ...g, createdAt: -1 }), "DGENT_INVALID_DATUM"],
  ["createdAt as a string", (g) => ({ ...g, createdAt: "2026-01-01" }), "DGENT_INVALID_DATUM"],
  ["createdAt Infinity", (g) => ({ ...g, createdAt: Infinity }), "DGENT_INVALID_DATUM"],
  ["causalParent undefined", (g) => ({ ...g, causalParent: undefined }), "DGENT_INVALID_DATUM"],
  ["causalParent a number", (g) => ({ ...g, causalParent: 7 }), "DGENT_INVALID_ID"],
  ["causalParent an empty string", (g) => ({ ...g, causalParent: "" }), "DGENT_INVALID_ID"],
  ["null instead of a datum", () => null, "DGENT_INVALID_DATUM"],
  ["a string instead of a datum", () => "datum", "DGENT_INVALID_DATUM"],
];

export function badInputSuite(s: Suite): void {
  s.test("malformed datums are refused with a specific code and nothing stored is touched", async (scope) => {
    const { store } = await scope.fresh();
    const keep = scope.datum({ key: "keep", metadata: { k: "v" } });
    await store.put(keep);
    for (const [what, make, code] of CASES) {
      const good = scope.datum({ key: "bad" });
      const bad = make(good) as Datum;
      const err = await expectCode(store.put(bad), code);
      assert.ok(err.message.length > 10, `${what}: the message explains the problem`);
      assert.equal(await store.get(good.id), null, `${what}: nothing was written`);
    }
    assertSameDatum(await store.get(keep.id), keep);
    assert.equal((await store.list({ prefix: scope.prefix })).length, 1);
  });

  s.test("get, delete and causalChain refuse invalid ids with DGENT_INVALID_ID", async (scope) => {
    const { store } = await scope.fresh();
    for (const id of ["", 5, null, "a\u0001b", "x".repeat(1025)] as unknown as string[]) {
      await expectCode(store.get(id), "DGENT_INVALID_ID");
      await expectCode(store.delete(id), "DGENT_INVALID_ID");
      await expectCode(store.causalChain(id), "DGENT_INVALID_ID");
    }
  });

  s.test("list refuses malformed options with DGENT_INVALID_OPTIONS", async (scope) => {
    const { store } = await scope.fresh();
    const bad: unknown[] = [
      { limit: -1 },
      { limit: 1.5 },
      { limit: "10" },
      { limit: 1e9 },
      { after: Number.NaN },
      { after: "yesterday" },
      { prefix: 3 },
      null,
    ];
    for (const options of bad) {
      await expectCode(store.list(options as never), "DGENT_INVALID_OPTIONS");
    }
  });

  s.test("list refuses a prefix no id can start with (a control character, a lone surrogate) with DGENT_INVALID_OPTIONS", async (scope) => {
    const { store } = await scope.fresh();
    const keep = scope.datum({ key: "a" });
    await store.put(keep);
    for (const prefix of ["a\u0000", "\u0000", `${scope.prefix}a\u0000`, "\n", `${scope.prefix}\u001f`, "\u007f", "\u0085", "a\ud800", "\udc00"]) {
      const err = await expectCode(store.list({ prefix }), "DGENT_INVALID_OPTIONS");
      assert.ok(err.message.length > 10, `prefix ${JSON.stringify(prefix)}: the message explains the problem`);
    }
    assertSameDatum(await store.get(keep.id), keep);
  });
}
