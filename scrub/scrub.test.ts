import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { s3Adapter } from "../adapters/s3/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum, type Datum } from "../core/datum.js";
import { datumDigest } from "../core/digest.js";
import type { Adapter } from "../core/protocol.js";
import { createStore } from "../core/store.js";
import { encryption, encryptionPlugin, KEY_ID_KEY, type Keyring } from "../plugins/encryption/index.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../test/harness/postgres.js";
import { startS3, type S3Server } from "../test/harness/s3.js";
import { JOURNAL_PREFIX, rekeyTier } from "./rekey.js";
import { verifyTier } from "./verify.js";
import { Pace } from "./walk.js";

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const OLD: Keyring = { active: "k1", keys: { k1: K1 } };
const BOTH: Keyring = { active: "k2", keys: { k1: K1, k2: K2 } };
const NEW: Keyring = { active: "k2", keys: { k2: K2 } };
const sealed = (r: Keyring) => encryptionPlugin({ keyProvider: () => r });

let dir: string;
beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), "dgent-scrub-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = (ext: string) => join(dir, `f${++files}.${ext}`);

const contentOf = (i: number) => `datum ${i} ${"x".repeat(64)}`;

/** Puts `n` datums (a chain) through `store`; returns their ids. */
async function fill(store: { put(d: Datum): Promise<string> }, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await store.put(makeDatum({ content: contentOf(i), createdAt: 1_000 + i, causalParent: ids.at(-1) ?? null, metadata: { i: String(i) } })));
  return ids;
}

/**
 * Flips one byte at every place `needle` occurs in the file(s) under `root` (SQLite may keep stale
 * copies of a record in free pages; the live one must be among those flipped).
 */
function flipWhere(root: string, needle: Uint8Array): number {
  let flipped = 0;
  for (const p of statSync(root).isDirectory() ? walk(root) : [root]) {
    const buf = readFileSync(p);
    let hits = 0;
    for (let at = buf.indexOf(Buffer.from(needle)); at >= 0; at = buf.indexOf(Buffer.from(needle), at + 1)) {
      buf[at + 2] = (buf[at + 2] as number) ^ 0x20;
      hits++;
    }
    if (hits > 0) writeFileSync(p, buf);
    flipped += hits;
  }
  if (flipped === 0) throw new Error("needle not found in any file");
  return flipped;
}
function walk(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(root, e.name)) : [join(root, e.name)]));
}

describe("dgent verify: the scrub", () => {
  it("JSONL: two flipped records are both reported by id (DGENT_CORRUPT), the rest read, the walk never stops", async () => {
    const path = fresh("jsonl");
    const log = jsonlAdapter({ path });
    await log.open();
    const ids = await fill(log, 30);
    await log.close();
    // Base64 of each content starts differently ("datum 7 " vs "datum 21"); flip inside two records.
    for (const i of [7, 21]) flipWhere(path, Buffer.from(Buffer.from(contentOf(i)).toString("base64").slice(0, 12)));
    const again = jsonlAdapter({ path, readonly: true });
    await again.open();
    const report = await verifyTier(again);
    await again.close();
    expect(report.checked).toBe(30);
    expect(report.ok).toBe(28);
    expect(report.problems.map((p) => [p.id, p.code])).toEqual([
      [ids[7], "DGENT_CORRUPT"],
      [ids[21], "DGENT_CORRUPT"],
    ]);
    expect(report.digest).toBeNull();
  });

  it("SQLite with encryption: a flipped byte inside a datum's page is reported by id; a clean tier's digest matches a copy's", async () => {
    const path = fresh("db");
    const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(OLD)] });
    const ids = await fill(store, 20);
    const raw = (await store.tiers[0]!.get(ids[5] as string)) as Datum;
    const handle = await store.plugin(encryption);
    const clean = await verifyTier(store.tiers[0] as Adapter, { decode: (d) => handle.open(d) });
    expect(clean).toMatchObject({ checked: 20, ok: 20, problems: [] });
    // The same datums in another tier (memory), copied as stored: the same digest.
    const copy = memoryAdapter();
    await copy.open();
    for await (const d of store.tiers[0]!.scan!()) await copy.put(d);
    expect((await verifyTier(copy)).digest).toBe(clean.digest);
    expect(datumDigest(raw)).toBe(datumDigest((await copy.get(raw.id)) as Datum));
    await store.close();
    expect(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0).toBe(false);
    flipWhere(path, Buffer.from(raw.content).subarray(20, 36));
    const reopened = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(OLD)] });
    const h = await reopened.plugin(encryption);
    const report = await verifyTier(reopened.tiers[0] as Adapter, { decode: (d) => h.open(d) });
    expect(report.problems).toEqual([expect.objectContaining({ id: ids[5], code: "DGENT_DECRYPT_FAILED" })]);
    expect(report.ok).toBe(19);
    await expect(reopened.get(ids[5] as string)).rejects.toMatchObject({ code: "DGENT_DECRYPT_FAILED" });
    await reopened.close();
  });

  it("SQLite: a damaged b-tree page is found by integrity_check and reported", async () => {
    const path = fresh("db");
    const tier = sqliteAdapter({ path });
    await tier.open();
    for (let i = 0; i < 200; i++) await tier.put(makeDatum({ content: randomBytes(600), createdAt: i }));
    await tier.close();
    const buf = readFileSync(path);
    const pageSize = buf.readUInt16BE(16) === 1 ? 65536 : buf.readUInt16BE(16);
    const pages = buf.length / pageSize;
    expect(pages).toBeGreaterThan(10);
    // A page in the middle of the table: overwrite its header (page type, cell count, pointers).
    const at = pageSize * Math.floor(pages / 2);
    buf.fill(0xa5, at, at + 12);
    writeFileSync(path, buf);
    const again = sqliteAdapter({ path });
    await again.open();
    const report = await verifyTier(again);
    await again.close();
    expect(report.problems.length).toBeGreaterThan(0);
    expect(report.problems.some((p) => p.id === null && /integrity_check|corrupt|malformed/i.test(p.message))).toBe(true);
    expect(report.digest).toBeNull();
  });

  it("the rate bound paces the walk (injected clock: the sleeps it asks for add up to n / rate)", async () => {
    let now = 0;
    const slept: number[] = [];
    const pace = new Pace(50, () => now, async (ms) => {
      slept.push(ms);
      now += ms;
    });
    for (let i = 0; i < 11; i++) await pace.next();
    expect(slept.reduce((a, b) => a + b, 0)).toBeCloseTo(200, 6); // 11 datums at 50/s: 10 gaps of 20 ms
    now += 1_000; // behind schedule (the work itself took long): no sleep
    await pace.next();
    expect(slept.length).toBe(10);
  });
});

describe("dgent verify on S3 (s3rver)", () => {
  let server: S3Server;
  beforeAll(async () => {
    server = await startS3();
    await server.createBucket("scrub");
  });
  afterAll(async () => server?.stop());

  it("a flipped byte in an object is reported by id when the store encrypts", async () => {
    const namespace = `v-${randomBytes(4).toString("hex")}`;
    const store = createStore({ tiers: [s3Adapter({ ...server.clientOptions, bucket: "scrub", namespace })], plugins: [sealed(OLD)] });
    const ids = await fill(store, 6);
    const raw = (await store.tiers[0]!.get(ids[2] as string)) as Datum;
    flipWhere(server.directory, Buffer.from(raw.content).subarray(20, 36));
    const h = await store.plugin(encryption);
    const report = await verifyTier(store.tiers[0] as Adapter, { decode: (d) => h.open(d) });
    expect(report.checked).toBe(6);
    expect(report.problems).toEqual([expect.objectContaining({ id: ids[2], code: "DGENT_DECRYPT_FAILED" })]);
    await store.close();
  });
});

describe("dgent rekey", () => {
  it("SQLite: reseals in place under the new key (one commit each), reads work with both keys, then with the new key alone", async () => {
    const path = fresh("db");
    const before = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(OLD)] });
    const ids = await fill(before, 25);
    await before.close();
    const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(BOTH)] });
    const tier = (await store.open(), store.tiers[0] as Adapter);
    const report = await rekeyTier(tier, await store.plugin(encryption));
    expect(report).toMatchObject({ scanned: 25, resealed: 25, current: 0, mode: "transaction", problems: [] });
    expect((await rekeyTier(tier, await store.plugin(encryption))).resealed).toBe(0);
    await store.close();
    const after = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(NEW)] });
    const chain = await after.causalChain(ids[24] as string);
    expect(chain.map((d) => Buffer.from(d.content).toString())).toEqual(ids.map((_, i) => contentOf(i)));
    expect(chain.every((d, i) => d.createdAt === 1_000 + i && d.metadata.i === String(i))).toBe(true);
    await after.close();
  });

  it("JSONL and Postgres: the same in-place reseal through one commit per datum", async () => {
    const pgServer: PostgresServer = await startPostgres();
    const namespace = freshSchema("rekey");
    try {
      const jsonlPath = fresh("jsonl");
      const tiers: Array<() => Adapter> = [
        () => jsonlAdapter({ path: jsonlPath }),
        () => postgresAdapter({ url: pgServer.url, namespace, listen: false }),
      ];
      for (const make of tiers) {
        const before = createStore({ tiers: [make()], plugins: [sealed(OLD)] });
        const ids = await fill(before, 12);
        await before.close();
        const store = createStore({ tiers: [make()], plugins: [sealed(BOTH)] });
        await store.open();
        const tier = store.tiers[0] as Adapter;
        expect(await rekeyTier(tier, await store.plugin(encryption))).toMatchObject({ resealed: 12, mode: "transaction", problems: [] });
        await store.close();
        const after = createStore({ tiers: [make()], plugins: [sealed(NEW)] });
        expect((await after.getMany(ids)).map((d) => Buffer.from(d!.content).toString())).toEqual(ids.map((_, i) => contentOf(i)));
        await after.close();
      }
    } finally {
      await dropSchema(pgServer, namespace);
      await pgServer.close();
    }
  });

  it("journal mode (tiers without transactions): a run stopped between delete and put is finished by the next run", async () => {
    const tier = memoryAdapter();
    const store = createStore({ tiers: [tier], plugins: [sealed(OLD)] });
    const ids = await fill(store, 10);
    const rotated = createStore({ tiers: [tier], plugins: [sealed(BOTH)] });
    await rotated.open();
    const handle = await rotated.plugin(encryption);
    const stop = new Error("stopped after the delete");
    await expect(
      rekeyTier(tier, handle, {
        mode: "journal",
        afterStep: (step, id) => {
          if (step === "deleted" && id === ids[4]) throw stop;
        },
      }),
    ).resolves.toMatchObject({ problems: [expect.objectContaining({ id: ids[4] })] });
    // The stopped datum is gone from its id, its journal holds it.
    expect(await tier.get(ids[4] as string)).toBeNull();
    expect((await tier.list({ prefix: JOURNAL_PREFIX, after: -1, limit: 10 })).length).toBe(1);
    const again = await rekeyTier(tier, handle, { mode: "journal" });
    expect(again).toMatchObject({ recovered: 1, problems: [] });
    expect(await tier.list({ prefix: JOURNAL_PREFIX, after: -1, limit: 10 })).toEqual([]);
    for (const [i, id] of ids.entries()) {
      expect(Buffer.from((await rotated.get(id))!.content).toString()).toBe(contentOf(i));
      expect((await tier.get(id))!.metadata[KEY_ID_KEY]).toBe("k2");
    }
  });

  it("a rekey killed with SIGKILL at a barrier mid-stream: every datum reads throughout, and a rerun resumes and finishes", async () => {
    const dist = fileURLToPath(new URL("../dist/scrub/rekey.js", import.meta.url));
    expect(existsSync(dist), "build first: npm run build").toBe(true);
    const path = fresh("db");
    const before = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(OLD)] });
    const ids = await fill(before, 40);
    await before.close();
    const child = spawn(process.execPath, [fileURLToPath(new URL("./fixtures/rekey-child.mjs", import.meta.url)), path, JSON.stringify(BOTH), "15"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolve) => lines.once("line", resolve));
    expect(first).toBe("barrier");
    // At the barrier: 15 datums under k2, 25 under k1, all readable by a store holding both keys.
    const reader = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(BOTH)] });
    const got = await reader.getMany(ids);
    expect(got.map((d) => Buffer.from(d!.content).toString())).toEqual(ids.map((_, i) => contentOf(i)));
    const keys = await Promise.all(ids.map(async (id) => (await reader.tiers[0]!.get(id))!.metadata[KEY_ID_KEY]));
    expect(keys.filter((k) => k === "k2").length).toBe(15);
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    const resumed = await rekeyTier(reader.tiers[0] as Adapter, await reader.plugin(encryption));
    expect(resumed).toMatchObject({ scanned: 40, current: 15, resealed: 25, problems: [] });
    await reader.close();
    const after = createStore({ tiers: [sqliteAdapter({ path })], plugins: [sealed(NEW)] });
    expect((await after.getMany(ids)).map((d) => Buffer.from(d!.content).toString())).toEqual(ids.map((_, i) => contentOf(i)));
    await after.close();
  });
});
