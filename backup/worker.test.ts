import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum, type Datum } from "../core/index.js";
import { expectCode } from "../testing/index.js";
import { datumArb } from "../test/arbitraries.js";
import { decompress } from "./codec.js";
import { byCodePoint, datumKey, decodeDatums, decodeIndexLine, decodeLines, encodeIndexLine, recordHeader, stateDigestOfKeys } from "./format.js";
import { backup, restore, verifyBackup } from "./index.js";
import { ChunkWorker, chunkWorkers, KEY_CHARS, WORKER_SOURCE } from "./worker.js";

const root = mkdtempSync(join(tmpdir(), "dgent-backup-worker-"));
let dirs = 0;
const fresh = (label: string) => {
  const dir = join(root, `${label}-${dirs++}`);
  mkdirSync(dir);
  return dir;
};
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Datum records as a backup's datum chunk lays them out (FORMAT.md), in a buffer of its own. */
function chunkOf(datums: readonly Datum[]): Buffer {
  const parts: Buffer[] = [];
  for (const d of datums) {
    const header = Buffer.from(recordHeader(d), "utf8");
    const lengths = Buffer.alloc(4);
    lengths.writeUInt32BE(header.length);
    const contentLength = Buffer.alloc(4);
    contentLength.writeUInt32BE(d.content.byteLength);
    parts.push(lengths, header, contentLength, Buffer.from(d.content));
  }
  const raw = Buffer.concat(parts);
  const own = Buffer.allocUnsafe(Math.max(raw.length, 64 * 1024));
  raw.copy(own);
  return own.subarray(0, raw.length);
}

async function fillSqlite(path: string, n: number): Promise<void> {
  const a = sqliteAdapter({ path });
  await a.open();
  const batch: Datum[] = [];
  for (let i = 0; i < n; i++) batch.push(makeDatum({ content: `datum ${i} `.repeat(20), metadata: { i: String(i), kind: i % 2 ? "note" : "plan" }, createdAt: 1_700_000_000_000 + i }));
  await a.putMany(batch);
  await a.close();
}

/** A worker that does its job for the first `jobs` chunks, then stops (exit code 7). */
const stoppingAfter = (jobs: number) => `let seen = 0;\nrequire("node:worker_threads").parentPort.on("message", () => { if (++seen > ${jobs}) process.exit(7); });\n${WORKER_SOURCE}`;

describe("the chunk worker", () => {
  it("gives each record's datumKey, the compressed bytes and their SHA-256", async () => {
    const worker = new ChunkWorker();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(datumArb, { minLength: 1, maxLength: 20 }), fc.constantFrom("brotli" as const, "gzip" as const, "none" as const), async (datums, compression) => {
          const raw = chunkOf(datums);
          const copy = Buffer.from(raw);
          const done = await worker.run(raw, compression, true);
          expect(done.keys).toBe(datums.map((d) => datumKey(d)).join(""));
          expect(done.keys.length).toBe(datums.length * KEY_CHARS);
          expect(done.sha256).toBe(createHash("sha256").update(done.stored).digest("hex"));
          const back = await decompress(done.stored, compression, copy.length);
          expect(back.equals(copy)).toBe(true);
          expect([...decodeDatums(back, "test", "datums-000001")].map((r) => r.datum.id)).toEqual(datums.map((d) => d.id));
        }),
        { numRuns: 40 },
      );
      // Without `hash`: no keys.
      expect((await worker.run(chunkOf([makeDatum({ content: "x", createdAt: 1 })]), "brotli", false)).keys).toBe("");
    } finally {
      await worker.close();
    }
  });

  it("keeps the index of the chunks it hashed with keep, and writes it sorted by id with the state digest", async () => {
    const worker = new ChunkWorker();
    try {
      const datums = fc.sample(datumArb, 300);
      const unique = [...new Map(datums.map((d) => [d.id, d])).values()];
      for (let at = 0; at < unique.length; at += 50) {
        const these = unique.slice(at, at + 50);
        const done = await worker.run(chunkOf(these), at % 100 === 0 ? "gzip" : "none", true, true);
        expect(done.keys).toBe("");
      }
      const kept = await worker.finishIndex(2048, "brotli");
      const sorted = [...unique].sort((a, b) => byCodePoint(a.id, b.id));
      expect(kept.state).toBe(unique.length);
      expect(kept.stateDigest).toBe(stateDigestOfKeys(sorted.map((d) => [d.id, datumKey(d)] as const)));
      expect(kept.chunks.length).toBeGreaterThan(1);
      const lines: string[] = [];
      for (const c of kept.chunks) {
        expect(c.sha256).toBe(createHash("sha256").update(c.stored).digest("hex"));
        const raw = await decompress(c.stored, "brotli", c.rawBytes);
        expect(raw.length).toBe(c.rawBytes);
        const these = [...decodeLines(raw)];
        expect(these.length).toBe(c.records);
        lines.push(...these);
      }
      expect(lines.map((l) => `${l}\n`)).toEqual(sorted.map((d) => encodeIndexLine(d.id, d.createdAt, datumKey(d))));
      expect(lines.map((l) => decodeIndexLine(l, "test", "index-000001").id)).toEqual(sorted.map((d) => d.id));
    } finally {
      await worker.close();
    }
  });

  it("a worker that stops fails the chunk in flight and every later one with DGENT_BACKEND_ERROR", async () => {
    const worker = new ChunkWorker(stoppingAfter(1));
    try {
      const d = makeDatum({ content: "x", createdAt: 1 });
      expect((await worker.run(chunkOf([d]), "brotli", true)).keys).toBe(datumKey(d));
      const error = await expectCode(worker.run(chunkOf([d]), "brotli", true), "DGENT_BACKEND_ERROR");
      expect(error.message).toMatch(/exit code 7/);
      await expectCode(worker.run(chunkOf([d]), "brotli", true), "DGENT_BACKEND_ERROR");
    } finally {
      await worker.close();
    }
  });

  it("a chunk the worker cannot read fails with DGENT_BACKEND_ERROR, and the worker goes on", async () => {
    const worker = new ChunkWorker();
    try {
      const bad = Buffer.alloc(64 * 1024).subarray(0, 12);
      bad.writeUInt32BE(4, 0);
      bad.write("nope", 4);
      await expectCode(worker.run(bad, "brotli", true), "DGENT_BACKEND_ERROR");
      const d = makeDatum({ content: "y", createdAt: 2 });
      // A record cut short in its content, and in its header.
      const whole = chunkOf([d]);
      await expectCode(worker.run(whole.subarray(0, whole.length - 1), "gzip", true), "DGENT_BACKEND_ERROR");
      await expectCode(worker.run(chunkOf([d]).subarray(0, 20), "gzip", true), "DGENT_BACKEND_ERROR");
      expect((await worker.run(chunkOf([d]), "gzip", true)).keys).toBe(datumKey(d));
    } finally {
      await worker.close();
    }
  });

  it("a closed worker refuses chunks", async () => {
    const worker = new ChunkWorker();
    await worker.close();
    await expectCode(worker.run(chunkOf([makeDatum({ content: "z", createdAt: 3 })]), "none", false), "DGENT_BACKEND_ERROR");
  });
});

describe("backup() with the chunk worker", () => {
  it("a worker that stops mid-backup fails the backup with DGENT_BACKEND_ERROR and leaves no archive", async () => {
    const dir = fresh("src");
    const src = join(dir, "src.db");
    await fillSqlite(src, 400);
    vi.spyOn(chunkWorkers, "create").mockImplementation(() => new ChunkWorker(stoppingAfter(2)));
    const repo = fresh("repo");
    await expectCode(backup({ from: `sqlite://${src}`, to: repo, chunkBytes: 4096 }), "DGENT_BACKEND_ERROR");
    expect(readdirSync(repo)).toEqual([]);
    expect((await verifyBackup({ from: repo }).catch((e: Error) => e)) instanceof Error).toBe(true);
    const file = join(fresh("file"), "one.dgbk");
    await expectCode(backup({ from: `sqlite://${src}`, to: file, chunkBytes: 4096 }), "DGENT_BACKEND_ERROR");
    expect(existsSync(file)).toBe(false);
    expect(existsSync(`${file}.partial`)).toBe(false);
  });

  it("full and incremental backups over many chunks restore to the same state digest", async () => {
    const dir = fresh("chain");
    const src = join(dir, "src.db");
    await fillSqlite(src, 600);
    const repo = fresh("repo");
    const full = await backup({ from: `sqlite://${src}`, to: repo, chunkBytes: 8192 });
    expect(full.chunks).toBeGreaterThan(10);
    const a = sqliteAdapter({ path: src });
    await a.open();
    await a.putMany([makeDatum({ content: "late", createdAt: 1_700_000_001_000 })]);
    await a.close();
    const inc = await backup({ from: `sqlite://${src}`, to: repo, base: "latest", chunkBytes: 8192 });
    expect(inc.kind).toBe("incremental");
    expect(inc.datums).toBe(1);
    expect(inc.state).toBe(601);
    const restored = await restore({ from: repo, to: `sqlite://${join(dir, "restored.db")}`, checkpointPath: join(dir, "cp.json") });
    expect(restored.verified).toBe(true);
    expect(restored.stateDigest).toBe(inc.stateDigest);
  });
});
