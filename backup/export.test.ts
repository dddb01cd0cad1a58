import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { datumHash as migrateHash } from "../compose/migrate.js";
import { makeDatum, type Adapter, type Datum } from "../core/index.js";
import { scanTier } from "../core/tiers.js";
import { packedReader } from "./container.js";
import { datumKey, decodeIndexLine, encodeIndexLine, recordHeader, stateDigestOfKeys } from "./format.js";
import { backup, datumHash, digestOfIds, restore, stateDigest } from "./index.js";

// The fast paths of a backup and a restore: `exportDatums` (one read snapshot, pages) against
// the generic scan, and the one-shot datum hash against dgent migrate's.

const root = mkdtempSync(join(tmpdir(), "dgent-backup-export-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = (label: string) => join(root, `${label}-${dirs++}`);

/** `tier` without `exportDatums` (every other member as it is): what a third-party adapter looks like. */
function withoutExport(tier: Adapter): Adapter {
  return new Proxy(tier, {
    get(target, key) {
      if (key === "exportDatums") return undefined;
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** `tier` counting the calls of its `exportDatums`. */
function countingExports(tier: Adapter): { tier: Adapter; calls: () => number } {
  let calls = 0;
  const proxy = new Proxy(tier, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== "function") return value;
      const bound = (value as (...a: unknown[]) => unknown).bind(target);
      if (key !== "exportDatums") return bound;
      return (...args: unknown[]) => {
        calls++;
        return bound(...args);
      };
    },
  });
  return { tier: proxy, calls: () => calls };
}

/** A SQLite file of `n` datums: mixed metadata (an expiry tag on some), parents, a unicode id, refs. */
async function filled(path: string, n: number): Promise<Adapter> {
  const a = sqliteAdapter({ path });
  await a.open();
  const batch: Datum[] = [];
  for (let i = 0; i < n; i++) {
    const metadata: Record<string, string> = i % 3 === 0 ? { kind: "plan", i: String(i) } : { i: String(i), "dgent.expiresAt": String(9e15 + i) };
    batch.push(makeDatum({ id: i === 7 ? "é-😀-id" : `d-${String(i).padStart(6, "0")}`, content: `content ${i} `.repeat(1 + (i % 50)), createdAt: 1_000 + i, causalParent: i > 0 && i % 5 === 0 ? `d-${String(i - 1).padStart(6, "0")}` : null, metadata }));
  }
  await a.putMany(batch);
  await a.setRef?.("main", "d-000010", undefined, { by: "test", at: 5 });
  await a.setRef?.("main", "d-000011", undefined, { by: "test", at: 6 });
  return a;
}

describe("exportDatums (SQLite) and the scan fallback", () => {
  it("give byte-identical chunks, the same state digest and the same restored state", async () => {
    const dir = fresh("identical");
    const source = await filled(join(dir, "src.db"), 3000);
    try {
      for (const compression of ["brotli", "gzip", "none"] as const) {
        const counted = countingExports(source);
        const fast = await backup({ from: counted.tier, to: join(dir, `fast-${compression}.dgbk`), now: () => 1e13, compression, chunkBytes: 64 * 1024 });
        expect(counted.calls()).toBe(1);
        const generic = await backup({ from: withoutExport(source), to: join(dir, `generic-${compression}.dgbk`), now: () => 1e13, compression, chunkBytes: 64 * 1024 });
        const a = packedReader(fast.archive);
        const b = packedReader(generic.archive);
        expect(a.manifest.chunks.length).toBeGreaterThan(4);
        expect(a.manifest.chunks).toEqual(b.manifest.chunks);
        expect(a.manifest.stateDigest).toBe(b.manifest.stateDigest);
        expect(a.manifest.counts).toEqual({ datums: 3000, state: 3000, deletes: 0, refs: 1 });
        for (const entry of a.manifest.chunks) expect((await a.readChunk(entry)).equals(await b.readChunk(entry))).toBe(true);
        await Promise.all([a.close(), b.close()]);
      }
      // Restored through both read-back paths (by id, and in one pass), into SQLite.
      const target = sqliteAdapter({ path: join(dir, "restored.db") });
      await target.open();
      const r = await restore({ from: join(dir, "fast-brotli.dgbk"), to: target, checkpointPath: join(dir, "cp.json") });
      expect(r).toMatchObject({ verified: true, state: 3000, written: 3000, refs: 1 });
      const ids: string[] = [];
      for await (const d of scanTier(target)) ids.push(d.id);
      expect(await digestOfIds(withoutExport(target), ids)).toBe(r.stateDigest);
      expect(await digestOfIds(target, ids)).toBe(r.stateDigest);
      expect((await target.get("d-000004"))?.metadata).toEqual({ i: "4", "dgent.expiresAt": String(9e15 + 4) });
      expect((await target.getRef?.("main"))?.target).toBe("d-000011");
      await target.close();
    } finally {
      await source.close();
    }
  });

  it("reads one snapshot: writes made while it runs are not seen, and they are not blocked", async () => {
    const dir = fresh("snapshot");
    const source = await filled(join(dir, "src.db"), 2100);
    const other = sqliteAdapter({ path: join(dir, "src.db") });
    await other.open();
    try {
      const seen: string[] = [];
      let pages = 0;
      for await (const page of source.exportDatums?.() ?? []) {
        pages++;
        for (const d of page) seen.push(d.id);
        if (pages === 1) {
          // Between pages: a new datum, a delete from the part not read yet, through both connections.
          await other.put(makeDatum({ id: "late-1", content: "x", createdAt: 1 }));
          await source.put(makeDatum({ id: "late-2", content: "y", createdAt: 2 }));
          expect(await other.delete("d-002099")).toBe(true);
        }
      }
      expect(pages).toBeGreaterThan(1);
      expect(seen).toHaveLength(2100);
      expect(seen).toContain("d-002099");
      expect(seen).not.toContain("late-1");
      expect(seen).not.toContain("late-2");
      // After the export, the writes are there.
      expect(await source.get("d-002099")).toBeNull();
      expect(await source.get("late-1")).not.toBeNull();
    } finally {
      await Promise.all([source.close(), other.close()]);
    }
  });
});

describe("the datum hash and the record header", () => {
  it("the one-shot hash equals dgent migrate's for large contents and non-ASCII fields", () => {
    const cases = [
      makeDatum({ id: "a", content: "", createdAt: 0 }),
      makeDatum({ id: "é😀", content: Buffer.alloc(200_000, 7), createdAt: 17, causalParent: "p", metadata: { z: "1", a: "ü😀", m: "" } }),
      makeDatum({ id: "b", content: Buffer.alloc(20 * 2 ** 20, 1), createdAt: 1 }),
      makeDatum({ id: "c", content: "after a large one", createdAt: 2, metadata: { k: "v".repeat(70_000) } }),
    ];
    for (const d of cases) expect(datumHash(d).toString("hex")).toBe(migrateHash(d).toString("hex"));
    for (const d of cases) expect(datumKey(d)).toBe(migrateHash(d).toString("base64url"));
    expect(stateDigest([["a", datumHash(cases[0] as Datum)]])).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the state digest of base64url keys is the digest of the hashes, sorted or not, across its 1 MiB blocks", () => {
    const datums = Array.from({ length: 9000 }, (_, i) =>
      makeDatum({ id: i % 1000 === 3 ? `é😀-${"x".repeat(900)}-${i}` : `id-${String((i * 7919) % 9000).padStart(5, "0")}-${"p".repeat(120)}`, content: `c${i}`, createdAt: i, metadata: { n: String(i) } }),
    );
    const pairs = datums.map((d) => [d.id, datumHash(d)] as const);
    const keyed = datums.map((d) => [d.id, datumKey(d)] as const);
    const expected = stateDigest(pairs);
    expect(stateDigestOfKeys(keyed)).toBe(expected);
    expect(stateDigestOfKeys([...keyed].sort((a, b) => (a[0] < b[0] ? -1 : 1)))).toBe(expected);
    expect(stateDigestOfKeys(new Map(keyed))).toBe(expected);
    expect(stateDigestOfKeys(keyed.slice(1))).not.toBe(expected);
    expect(stateDigestOfKeys([])).toBe(stateDigest([]));
  });

  it("an index line keeps the key as written and refuses one that is not 32 bytes in canonical base64url", () => {
    const d = makeDatum({ id: "a\u00e9", content: "x", createdAt: 5 });
    const line = encodeIndexLine(d.id, d.createdAt, datumKey(d));
    expect(decodeIndexLine(line.slice(0, -1), "x.dgbk", "index-000001")).toEqual({ id: d.id, createdAt: 5, key: datumKey(d) });
    const key = datumKey(d);
    // The same 32 bytes with the last character's two spare bits set: Buffer.from would accept it.
    const spare = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = spare[spare.indexOf(key[42] as string) + 1] as string;
    expect(Buffer.from(`${key.slice(0, 42)}${last}`, "base64url").equals(Buffer.from(key, "base64url"))).toBe(true);
    for (const bad of [`${key.slice(0, 42)}${last}`, `${key.slice(0, 42)}=`, `${key.slice(0, 41)}+A`]) {
      expect(() => decodeIndexLine(`${bad}\t5\t${d.id}`, "x.dgbk", "index-000001")).toThrow(expect.objectContaining({ code: "DGENT_BACKUP_CORRUPT" }) as Error);
    }
  });

  it("the header is the JSON of { id, createdAt, causalParent, metadata }", () => {
    for (const d of [makeDatum({ id: 'q"\\😀', content: "x", createdAt: 1_700_000_000_123, causalParent: "p", metadata: { "a/b": 'b"\n\u2028' } }), makeDatum({ id: "x", content: "", createdAt: 0 })]) {
      expect(recordHeader(d)).toBe(JSON.stringify({ id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata }));
    }
  });
});
