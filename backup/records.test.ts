import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Datum } from "../core/index.js";
import { datumArb } from "../test/arbitraries.js";
import { decompress } from "./codec.js";
import { datumKey, recordHeader } from "./format.js";
import { putRecordHeader, recordRoom } from "./records.js";
import { ChunkWorker } from "./worker.js";

/** Datums whose text is mostly plain ASCII (the byte-by-byte paths), with quotes, backslashes, non-ASCII and odd numbers now and then (the fallbacks). */
const asciiText = (min: number, max: number) => fc.string({ unit: fc.constantFrom(..."abcXYZ019/:._-~ \x7f"), minLength: min, maxLength: max });
const oddText = fc.constantFrom('q"uote', "back\\slash", "tab\there", "é", "😀", "\u2028", "\ud800");
const plainDatum: fc.Arbitrary<Datum> = fc.record({
  id: fc.oneof({ arbitrary: asciiText(1, 12), weight: 6 }, { arbitrary: oddText, weight: 1 }),
  content: fc.uint8Array({ maxLength: 200 }),
  createdAt: fc.oneof(
    { arbitrary: fc.integer({ min: -5, max: 4_102_444_800_000 }), weight: 6 },
    { arbitrary: fc.constantFrom(0, -0, 999_999_999_999_999, 1_000_000_000_000_000, 9_007_199_254_740_993, 1e21, 1.5, -2.25), weight: 1 },
  ),
  causalParent: fc.option(fc.oneof({ arbitrary: asciiText(1, 8), weight: 6 }, { arbitrary: oddText, weight: 1 }), { nil: null }),
  metadata: fc
    .uniqueArray(fc.tuple(fc.oneof({ arbitrary: asciiText(1, 5), weight: 6 }, { arbitrary: fc.constantFrom("1", "10", "2", "__proto__", "b", "B"), weight: 3 }, { arbitrary: oddText, weight: 1 }), fc.oneof({ arbitrary: asciiText(0, 6), weight: 6 }, { arbitrary: oddText, weight: 1 })), { selector: (e) => e[0], maxLength: 6 })
    .map((entries) => {
      const m: Record<string, string> = {};
      for (const [k, v] of entries) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
      return m;
    }),
});

/** A datum chunk's records (FORMAT.md), written as `backup()` writes them. */
function chunkOf(datums: readonly Datum[]): Buffer {
  const b = Buffer.alloc(64 * 1024 + datums.reduce((n, d) => n + 2048 + d.content.byteLength, 0));
  let at = 0;
  for (const d of datums) {
    const keys = Object.keys(d.metadata);
    const end = putRecordHeader(b, at + 4, d, keys, recordRoom(d, keys));
    b.writeUInt32BE(end - at - 4, at);
    b.writeUInt32BE(d.content.byteLength, end);
    b.set(d.content, end + 4);
    at = end + 4 + d.content.byteLength;
  }
  return b.subarray(0, at);
}

describe("datum records written byte by byte", () => {
  it("putRecordHeader writes recordHeader's bytes", () => {
    fc.assert(
      fc.property(fc.oneof(plainDatum, datumArb), (d) => {
        const b = Buffer.alloc(8192);
        const keys = Object.keys(d.metadata);
        const end = putRecordHeader(b, 3, d, keys, recordRoom(d, keys));
        expect(b.subarray(3, end).toString("utf8")).toBe(recordHeader(d));
      }),
      { numRuns: 500 },
    );
    // Not of the usual shape (a number in the metadata): the string is built as before.
    const odd = { id: "x", content: new Uint8Array(0), createdAt: 1, causalParent: null, metadata: { n: 5 } } as unknown as Datum;
    expect(recordRoom(odd, ["n"])).toBe(-1);
    const b = Buffer.alloc(256);
    expect(b.subarray(0, putRecordHeader(b, 0, odd, ["n"], -1)).toString("utf8")).toBe(recordHeader(odd));
  });

  it("the chunk worker reads their headers into the same datumKey as format.ts, byte by byte or as JSON, and compresses the records intact", async () => {
    const worker = new ChunkWorker();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(plainDatum, { minLength: 1, maxLength: 30 }), fc.constantFrom("brotli" as const, "none" as const), async (datums, compression) => {
          const raw = chunkOf(datums);
          const copy = Buffer.from(raw);
          const done = await worker.run(raw, compression, true);
          expect(done.keys).toBe(datums.map((d) => datumKey(d)).join(""));
          expect((await decompress(done.stored, compression, copy.length)).equals(copy)).toBe(true);
        }),
        { numRuns: 150 },
      );
    } finally {
      await worker.close();
    }
  });
});
