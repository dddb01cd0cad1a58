import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { adapterForUrl, datumHash as migrateHash } from "../compose/migrate.js";
import { makeDatum, type Adapter, type Datum } from "../core/index.js";
import { scanTier } from "../core/tiers.js";
import { expectCode } from "../testing/index.js";
import { datumArb } from "../test/arbitraries.js";
import { freshSchema, startPostgres, type PostgresServer } from "../test/harness/postgres.js";
import { backup, datumHash, digestOfIds, generateKeyPair, prune, restore, stateDigest, verifyBackup, type BackupReport } from "./index.js";

const root = mkdtempSync(join(tmpdir(), "dgent-backup-"));
let server: PostgresServer;
let dirs = 0;
const fresh = (label: string) => {
  const dir = join(root, `${label}-${dirs++}`);
  mkdirSync(dir);
  return dir;
};

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const datum = (id: string, createdAt: number, text = `content of ${id}`, metadata: Record<string, string> = {}): Datum =>
  makeDatum({ id, content: text, createdAt, metadata });

async function openSqlite(path: string): Promise<Adapter> {
  const a = sqliteAdapter({ path });
  await a.open();
  return a;
}

/** The digest of every datum of a tier with createdAt ≤ `cut` (all when no cut): the reference. */
async function tierDigest(tier: Adapter, cut = Number.MAX_SAFE_INTEGER): Promise<{ digest: string; ids: string[] }> {
  const pairs: Array<[string, Buffer]> = [];
  for await (const d of scanTier(tier)) if (d.createdAt <= cut) pairs.push([d.id, datumHash(d)]);
  return { digest: stateDigest(pairs), ids: pairs.map((p) => p[0]).sort() };
}

/** The frames of a packed archive: name → [data offset, length]. */
function frames(path: string): Map<string, [number, number]> {
  const b = readFileSync(path);
  const out = new Map<string, [number, number]>();
  let at = 8;
  while (at < b.length - 24) {
    const nameLength = b.readUInt32BE(at + 4);
    const name = b.toString("utf8", at + 8, at + 8 + nameLength);
    const length = Number(b.readBigUInt64BE(at + 8 + nameLength));
    const data = at + 16 + nameLength;
    out.set(name, [data, length]);
    at = data + length;
  }
  return out;
}

function flipByte(path: string, offset: number): void {
  const b = readFileSync(path);
  b[offset] = (b[offset] as number) ^ 0xff;
  writeFileSync(path, b);
}

describe("records and digests", () => {
  it("a datum round-trips through an archive with the same hash dgent migrate computes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(datumArb, { minLength: 1, maxLength: 8 }), async (items) => {
        const source = memoryAdapter();
        await source.open();
        const unique = [...new Map(items.map((d) => [d.id, d])).values()];
        for (const d of unique) {
          expect(datumHash(d).equals(migrateHash(d))).toBe(true);
          await source.put(d);
        }
        const dir = fresh("roundtrip");
        const made = await backup({ from: source, to: join(dir, "a.dgbk"), now: () => 8.64e15 });
        const target = memoryAdapter();
        await target.open();
        const r = await restore({ from: join(dir, "a.dgbk"), to: target, checkpointPath: join(dir, "cp.json") });
        expect(r).toMatchObject({ verified: true, state: unique.length });
        expect(r.stateDigest).toBe(made.stateDigest);
        for (const d of unique) expect(migrateHash((await target.get(d.id)) as Datum).equals(migrateHash(d))).toBe(true);
        await Promise.all([source.close(), target.close()]);
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 10 },
    );
  });
});

describe("backup while 4 writers write, restored into Postgres", () => {
  it("holds everything acknowledged before the cut, nothing after it, and an increment catches up to the source's digest", async () => {
    const dir = fresh("writers");
    const dbPath = join(dir, "source.db");
    const seed = await openSqlite(dbPath);
    const before: Datum[] = [];
    for (let i = 0; i < 240; i++) before.push(datum(`seed/${String(i).padStart(4, "0")}`, Date.now() - 10_000 + i, `seed ${i} `.repeat(20)));
    await seed.putMany?.(before);
    await seed.setRef?.("head", "seed/0001", undefined, { by: "test", at: Date.now() });
    // Four writers, each with its own connection to the file.
    const writers = await Promise.all([0, 1, 2, 3].map(() => openSqlite(dbPath)));
    let n = 0;
    const round = () =>
      Promise.all(
        writers.map(async (w, k) => {
          const i = n++;
          // Half of them claim a time before the cut, as a writer with a slow clock would.
          await w.put(datum(`w${k}/${String(i).padStart(5, "0")}`, i % 2 ? Date.now() - 5_000 : Date.now() + 60_000, `writer ${k} wrote ${i}`));
        }),
      );
    let rounds = 0;
    const report = await backup({
      from: seed,
      to: join(dir, "repo"),
      chunkBytes: 4096,
      // Lockstep: after every chunk the backup waits for each writer to acknowledge one more put.
      onProgress: async () => {
        rounds++;
        await round();
      },
    });
    expect(rounds).toBeGreaterThanOrEqual(5);
    expect(report.kind).toBe("full");
    expect(report.refs).toBe(1);

    const namespace = freshSchema("restore");
    const restored = await restore({ from: join(dir, "repo"), to: server.url, namespace });
    expect(restored.verified).toBe(true);
    const target = await adapterForUrl(server.url, namespace);
    await target.open();
    try {
      const got = await tierDigest(target);
      expect(got.digest).toBe(report.stateDigest);
      // Everything acknowledged before the backup started is there, with the same value.
      const ids = new Set(got.ids);
      for (const d of before) expect(ids.has(d.id)).toBe(true);
      // Nothing with createdAt after the cut, and every restored datum equals the source's.
      for (const id of got.ids) {
        const d = (await target.get(id)) as Datum;
        expect(d.createdAt).toBeLessThanOrEqual(report.cut);
        expect(datumHash((await seed.get(id)) as Datum).equals(datumHash(d))).toBe(true);
      }
      expect(await target.getRef?.("head")).toMatchObject({ target: "seed/0001" });

      // Writers stop; an increment on the archive brings the restore to the source's whole state.
      const inc = await backup({ from: seed, to: join(dir, "repo"), base: "latest", now: () => Date.now() + 120_000 });
      expect(inc.kind).toBe("incremental");
      expect(inc.datums).toBe(n - (got.ids.length - before.length));
      const again = await restore({ from: join(dir, "repo"), to: server.url, namespace });
      expect(again.verified).toBe(true);
      expect((await tierDigest(target)).digest).toBe((await tierDigest(seed)).digest);
    } finally {
      await target.close();
      for (const w of writers) await w.close();
      await seed.close();
    }
  });
});

describe("damaged archives are refused before anything is written", () => {
  let dir: string;
  let report: BackupReport;
  beforeAll(async () => {
    dir = fresh("damage");
    const source = memoryAdapter();
    await source.open();
    for (let i = 0; i < 200; i++) await source.put(datum(`d/${i}`, 1_000 + i, `payload ${i} `.repeat(30)));
    report = await backup({ from: source, to: join(dir, "good.dgbk"), chunkBytes: 4096, now: () => 10_000 });
    await source.close();
    expect(report.chunks).toBeGreaterThan(4);
  });

  const copy = (name: string) => {
    const path = join(dir, `${name}.dgbk`);
    writeFileSync(path, readFileSync(join(dir, "good.dgbk")));
    return path;
  };

  it("a flipped byte inside a chunk: DGENT_BACKUP_CORRUPT naming that chunk, from verify and from restore, and the target stays empty", async () => {
    const path = copy("flipped");
    const [offset, length] = frames(path).get("datums-000003") as [number, number];
    flipByte(path, offset + Math.floor(length / 2));
    const v = await expectCode(verifyBackup({ from: path }), "DGENT_BACKUP_CORRUPT");
    expect(v.details?.chunk).toBe("datums-000003");
    expect(v.message).toMatch(/datums-000003/);
    const target = memoryAdapter();
    await target.open();
    const r = await expectCode(restore({ from: path, to: target, checkpointPath: join(dir, "cp.json") }), "DGENT_BACKUP_CORRUPT");
    expect(r.details?.chunk).toBe("datums-000003");
    expect(await target.list({ prefix: "", after: -1, limit: 10 })).toEqual([]);
    await target.close();
  });

  it("a flipped byte in the manifest: DGENT_BACKUP_CORRUPT naming the manifest", async () => {
    const path = copy("manifest");
    const [offset] = frames(path).get("manifest.json") as [number, number];
    flipByte(path, offset + 40);
    const e = await expectCode(verifyBackup({ from: path }), "DGENT_BACKUP_CORRUPT");
    expect(e.details?.chunk).toBe("manifest");
  });

  it("a truncated archive: DGENT_BACKUP_TRUNCATED naming the chunk it is cut in, or the last whole one", async () => {
    const cut = copy("cut");
    const [offset] = frames(cut).get("datums-000002") as [number, number];
    truncateSync(cut, offset + 10);
    const e = await expectCode(verifyBackup({ from: cut }), "DGENT_BACKUP_TRUNCATED");
    expect(e.details?.chunk).toBe("datums-000002");
    expect(e.message).toMatch(/cut in chunk datums-000002/);

    const noTrailer = copy("no-trailer");
    truncateSync(noTrailer, statSync(noTrailer).size - 24);
    const t = await expectCode(restore({ from: noTrailer, to: memoryAdapter(), checkpointPath: join(dir, "cp2.json") }), "DGENT_BACKUP_TRUNCATED");
    expect(t.details?.chunk).toBe("manifest.json");
  });

  it("the untouched archive verifies deep and restores to the recorded digest", async () => {
    const v = await verifyBackup({ from: join(dir, "good.dgbk") });
    expect(v).toMatchObject({ checksums: true, deep: true, state: 200, stateDigest: report.stateDigest });
  });
});

describe("incremental chain: restore as of a time equals the source as it was then", () => {
  it("deletes, a delete-and-put-again under the same id, and as-of picks the right link", async () => {
    const dir = fresh("chain");
    const repo = join(dir, "repo");
    const source = await openSqlite(join(dir, "source.db"));
    const references: Array<{ cut: number; digest: string; ids: string[] }> = [];
    const snap = async (cut: number) => {
      await backup({ from: source, to: repo, ...(references.length ? { base: "latest" } : {}), now: () => cut, compression: references.length === 1 ? "brotli" : "gzip" });
      references.push({ cut, ...(await tierDigest(source, cut)) });
    };
    for (let i = 0; i < 50; i++) await source.put(datum(`a/${i}`, 1_000_000 + i));
    await snap(2_000_000);
    for (let i = 0; i < 10; i++) await source.delete(`a/${i}`);
    await source.delete("a/21");
    await source.put(datum("a/21", 1_500_000, "put again with a new value"));
    for (let i = 0; i < 20; i++) await source.put(datum(`b/${i}`, 2_500_000 + i));
    // Written during the second backup's window but claiming an old time: picked up by the id diff.
    await source.put(datum("late/0", 1_900_000));
    await snap(3_000_000);
    for (let i = 0; i < 5; i++) await source.delete(`b/${i}`);
    for (let i = 0; i < 5; i++) await source.put(datum(`c/${i}`, 3_500_000 + i));
    await snap(4_000_000);
    await source.close();

    const files = readdirSync(repo).filter((f) => f.endsWith(".dgbk"));
    expect(files).toHaveLength(3);
    for (const [k, asOf] of [
      [0, 2_500_000],
      [1, 3_000_000],
      [1, 3_999_999],
      [2, 9_000_000],
    ] as const) {
      const target = memoryAdapter();
      await target.open();
      const r = await restore({ from: repo, to: target, asOf, checkpointPath: join(dir, `cp-${asOf}.json`) });
      const ref = references[k] as { digest: string; ids: string[] };
      expect(r.chain).toHaveLength(k + 1);
      expect(r.verified).toBe(true);
      expect(await tierDigest(target)).toEqual({ digest: ref.digest, ids: ref.ids });
      await target.close();
    }
    const old = await expectCode(restore({ from: repo, to: memoryAdapter(), asOf: 1_999_999 }), "DGENT_BACKUP_CHAIN");
    expect(old.message).toMatch(/no archive cut at or before/);
    // A missing link is named.
    rmSync(join(repo, files.sort()[1] as string));
    const broken = await expectCode(restore({ from: repo, to: memoryAdapter() }), "DGENT_BACKUP_CHAIN");
    expect(broken.details?.parent).toBeDefined();

    // Retention: a new full backup; keeping one full deletes the older chain whole and leaves the
    // increment whose parent is gone alone.
    const again = await openSqlite(join(dir, "source.db"));
    const latest = await backup({ from: again, to: repo, now: () => 5_000_000 });
    await again.close();
    const [first, , third] = files.sort().map((f) => join(repo, f));
    expect(await prune({ from: repo, keepFull: 1, dryRun: true })).toMatchObject({ kept: [join(repo, `${latest.backupId}.dgbk`)], deleted: [first], leftAlone: [third] });
    await prune({ from: repo, keepFull: 1 });
    expect(readdirSync(repo).sort()).toEqual([`${latest.backupId}.dgbk`, (files.sort()[2] as string)].sort());
    expect((await verifyBackup({ from: join(repo, `${latest.backupId}.dgbk`) })).state).toBe(references[2]?.ids.length);
  });
});

describe("SQLite → Postgres, resumable and idempotent", () => {
  it("an interrupted restore resumes from its checkpoint; running it again writes nothing new and verifies", async () => {
    const dir = fresh("resume");
    const source = await openSqlite(join(dir, "s.db"));
    for (let i = 0; i < 300; i++) await source.put(datum(`r/${i}`, 5_000 + i, `v ${i} `.repeat(10), { n: String(i) }));
    const archive = join(dir, "one.dgbk");
    await backup({ from: source, to: archive, chunkBytes: 2048, now: () => 100_000 });
    const namespace = freshSchema("resume");
    const checkpointPath = join(dir, "cp.json");
    const stop = new Error("interrupted");
    await expect(
      restore({
        from: archive,
        to: server.url,
        namespace,
        checkpointPath,
        // Interrupted after the third chunk is written.
        onProgress: (done, _total, phase) => {
          if (phase === "write" && done === 3) throw stop;
        },
      }),
    ).rejects.toBe(stop);
    const resumed = await restore({ from: archive, to: server.url, namespace, checkpointPath });
    expect(resumed.resumedChunks).toBeGreaterThan(0);
    expect(resumed.written).toBeLessThan(300);
    expect(resumed.verified).toBe(true);
    const rerun = await restore({ from: archive, to: server.url, namespace, checkpointPath });
    expect(rerun).toMatchObject({ verified: true, resumedChunks: 0, conflicts: [] });
    const dry = await restore({ from: archive, to: server.url, namespace, dryRun: true });
    expect(dry).toMatchObject({ written: 0, alreadyPresent: 300, verified: null });
    const target = await adapterForUrl(server.url, namespace);
    await target.open();
    expect(await digestOfIds(target, (await tierDigest(source)).ids)).toBe((await tierDigest(source)).digest);
    await target.close();
    await source.close();
  });
});

describe("encryption to age recipients", () => {
  it("the archive holds no plaintext; checksums verify without the identity; reading needs it", async () => {
    const dir = fresh("age");
    const { identity, recipient } = await generateKeyPair();
    const other = await generateKeyPair();
    const source = memoryAdapter();
    await source.open();
    const secret = "the-launch-code-is-0451";
    for (let i = 0; i < 30; i++) await source.put(datum(`secret/${secret}/${i}`, 1_000 + i, `${secret} ${i}`, { note: secret }));
    const report = await backup({ from: source, to: join(dir, "enc.dgbk"), recipients: [recipient], now: () => 5_000 });
    expect(report.encrypted).toBe(true);
    expect(readFileSync(join(dir, "enc.dgbk")).includes(Buffer.from(secret))).toBe(false);
    expect(await verifyBackup({ from: join(dir, "enc.dgbk") })).toMatchObject({ checksums: true, deep: false });
    await expectCode(restore({ from: join(dir, "enc.dgbk"), to: memoryAdapter(), dryRun: true }), "DGENT_BACKUP_DECRYPT");
    await expectCode(restore({ from: join(dir, "enc.dgbk"), to: memoryAdapter(), dryRun: true, identities: [other.identity] }), "DGENT_BACKUP_DECRYPT");
    const target = memoryAdapter();
    await target.open();
    const r = await restore({ from: join(dir, "enc.dgbk"), to: target, identities: [identity], checkpointPath: join(dir, "cp.json") });
    expect(r.verified).toBe(true);
    expect((await tierDigest(target)).digest).toBe((await tierDigest(source)).digest);
    // An increment on an encrypted archive reads its index with the identity.
    await source.put(datum("secret/new", 4_000));
    const inc = await backup({ from: source, to: dir, base: join(dir, "enc.dgbk"), recipients: [recipient], identities: [identity], now: () => 6_000 });
    expect(inc).toMatchObject({ kind: "incremental", datums: 1 });
    await source.close();
    await target.close();
  });
});
