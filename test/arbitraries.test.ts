import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assertDatum, assertId } from "../core/datum.js";
import {
  AWKWARD_KEYS,
  classifyIdPair,
  datumArb,
  datumPairArb,
  idArb,
  idPairArb,
  parentsInSurrogateOrder,
  type IdPairKind,
  type PairKind,
} from "./arbitraries.js";
import { indexOpsArb, indexScriptFeatures, scriptFeatures, storeScriptArb } from "./arbitrary-scripts.js";
import { ordersDisagree, referenceCompareIds, referenceSameValue, utf16Compare } from "./references.js";

// The generators are sampled 10 000 times with a fixed seed, and each edge case they claim to
// reach must come up at a useful rate (the floors sit well under the measured rates, so a change
// that starves a case fails here rather than silently weakening the property tests).

const N = 10_000;
const SEED = 0x5eed;

function rates<T>(arb: fc.Arbitrary<T>, classify: (value: T) => Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of fc.sample(arb, { numRuns: N, seed: SEED })) {
    for (const label of classify(value)) counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / N]));
}

function expectFloors(measured: Map<string, number>, floors: Readonly<Record<string, number>>): void {
  for (const [label, floor] of Object.entries(floors)) {
    const rate = measured.get(label) ?? 0;
    expect(rate, `${label}: ${(rate * 100).toFixed(1)}% of ${N} samples, want at least ${floor * 100}%`).toBeGreaterThanOrEqual(floor);
  }
}

describe("the references", () => {
  it("order ids by UTF-8 bytes, which is not UTF-16 order", () => {
    expect(referenceCompareIds("\uffff", "\u{10000}")).toBe(-1);
    expect(utf16Compare("\uffff", "\u{10000}")).toBe(1);
    expect(ordersDisagree("a\ue000", "a\u{1f989}")).toBe(true);
    expect(ordersDisagree("a\ud7ff", "a\u{1f989}")).toBe(false);
    expect(referenceCompareIds("ab", "a")).toBe(1);
    expect(() => referenceCompareIds("\ud800", "a")).toThrow(/well-formed/);
  });

  it("tell same values apart field by field, ignoring id and createdAt", () => {
    const a = { id: "a", content: new Uint8Array([1, 2]), createdAt: 1, causalParent: null, metadata: { k: "v", j: "w" } };
    expect(referenceSameValue(a, { ...a, id: "b", createdAt: 2, content: Buffer.from([1, 2]), metadata: { j: "w", k: "v" } })).toBe(true);
    expect(referenceSameValue(a, { ...a, content: new Uint8Array([1, 3]) })).toBe(false);
    expect(referenceSameValue(a, { ...a, content: new Uint8Array([1, 2, 0]) })).toBe(false);
    expect(referenceSameValue(a, { ...a, causalParent: "p" })).toBe(false);
    expect(referenceSameValue(a, { ...a, metadata: { k: "v" } })).toBe(false);
    expect(referenceSameValue(a, { ...a, metadata: { k: "v", j: "x" } })).toBe(false);
    expect(referenceSameValue(a, { ...a, metadata: { k: "v", i: "w" } })).toBe(false);
  });
});

describe("generators reach their edge cases", () => {
  it("ids: valid, and often holding U+E000–U+FFFF and astral characters", () => {
    const measured = rates(idArb, (id) => {
      assertId(id);
      const labels: string[] = [];
      if (/[\ue000-\uffff]/.test(id)) labels.push("U+E000–U+FFFF");
      if (/[\u{10000}-\u{10ffff}]/u.test(id)) labels.push("astral");
      return labels;
    });
    expectFloors(measured, { "U+E000–U+FFFF": 0.4, astral: 0.35 });
  });

  it("id pairs: equal, prefix, surrogate order (UTF-16 and code points disagree), independent", () => {
    const measured = rates(idPairArb, ([a, b]) => {
      assertId(a);
      assertId(b);
      return [classifyIdPair(a, b)];
    });
    const floors: Record<IdPairKind, number> = { equal: 0.15, prefix: 0.15, "surrogate-order": 0.2, independent: 0.1 };
    expectFloors(measured, floors);
  });

  it("datums: valid, including awkward metadata keys", () => {
    const measured = rates(datumArb, (d) => {
      assertDatum(d);
      const labels: string[] = [];
      if (Object.keys(d.metadata).some((k) => AWKWARD_KEYS.includes(k))) labels.push("awkward key");
      if (Object.hasOwn(d.metadata, "__proto__")) labels.push("__proto__ key");
      if (d.causalParent !== null) labels.push("has a parent");
      if (d.content.length === 0) labels.push("empty content");
      return labels;
    });
    expectFloors(measured, { "awkward key": 0.3, "__proto__ key": 0.08, "has a parent": 0.5, "empty content": 0.03 });
  });

  it("datum pairs: equal-but-distinct (also as a view at an offset) and every one-field difference", () => {
    const measured = rates(datumPairArb, (p) => {
      assertDatum(p.a);
      assertDatum(p.b);
      expect(p.a).not.toBe(p.b);
      expect(p.a.content).not.toBe(p.b.content);
      const labels: string[] = [p.kind];
      if (p.kind === "equal" && p.form === "view") labels.push("equal, bytes as a view at an offset");
      if (p.kind === "equal" && p.form === "buffer") labels.push("equal, bytes as a Buffer");
      if (parentsInSurrogateOrder(p)) labels.push("parents apart only in surrogate order");
      if (p.kind === "causalParent" && (p.a.causalParent === null) !== (p.b.causalParent === null)) labels.push("parent null vs an id");
      return labels;
    });
    const kinds: Record<PairKind, number> = {
      equal: 0.15,
      id: 0.04,
      createdAt: 0.04,
      causalParent: 0.1,
      "metadata-key": 0.04,
      "metadata-value": 0.04,
      "metadata-extra": 0.04,
      "content-byte": 0.04,
      "content-length": 0.04,
      independent: 0.04,
    };
    expectFloors(measured, {
      ...kinds,
      "equal, bytes as a view at an offset": 0.04,
      "equal, bytes as a Buffer": 0.04,
      "parents apart only in surrogate order": 0.03,
      "parent null vs an id": 0.03,
    });
  });

  it("store scripts: deletes of live ids, re-puts after deletes (also across compaction and reopen), conflicts", () => {
    const measured = rates(storeScriptArb, (script) =>
      Object.entries(scriptFeatures(script))
        .filter(([, reached]) => reached)
        .map(([label]) => label),
    );
    expectFloors(measured, {
      deleteOfLive: 0.6,
      reputAfterDelete: 0.35,
      reputWithOtherValue: 0.25,
      reputAfterDeleteAcrossCompaction: 0.1,
      deleteAfterCompaction: 0.35,
      reopenAfterDeleteAndReput: 0.15,
      batchWithDeletedId: 0.07,
      conflict: 0.5,
      identicalReput: 0.2,
    });
  });

  it("ordered-index scripts: ties that UTF-16 order would swap, broad prefixes, deletes and replacements", () => {
    const measured = rates(indexOpsArb, (ops) =>
      Object.entries(indexScriptFeatures(ops))
        .filter(([, reached]) => reached)
        .map(([label]) => label),
    );
    expectFloors(measured, { tieInSurrogateOrder: 0.25, broadPrefix: 0.1, deleteOfHeld: 0.6, replacingSet: 0.6, highBmpId: 0.8 });
  });
});
