import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { createStoreFromConfig } from "../../compose/config/compose.js";
import { makeDatum, type Datum } from "../../core/datum.js";
import { createStore } from "../../core/store.js";
import type { Adapter } from "../../core/protocol.js";
import { compressionPlugin } from "../compression/index.js";
import { ENCODING_KEY } from "../compression/index.js";
import { expectDgent, text } from "../../test/plugins-support.js";
import { runConformance } from "../../testing/index.js";
import fc from "fast-check";
import { datumArb } from "../../test/arbitraries.js";
import { loadKeyring, type DerivedKey } from "./keys.js";
import { open, seal } from "./envelope.js";
import { encryption, encryptionPlugin, KEY_ID_KEY, type EncryptionOptions, type Keyring } from "./index.js";

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const ring = (active: string, keys: Record<string, string> = { k1: K1, k2: K2 }): Keyring => ({ active, keys });
const withRing = (r: Keyring, extra: EncryptionOptions = {}) => encryptionPlugin({ keyProvider: () => r, ...extra });

let dir: string;
beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), "dgent-encryption-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = "the-launch-code-is-31337";
let dbs = 0;
/** A SQLite file that outlives a store, so another store (other keys) can open it. */
const sqlitePath = () => join(dir, `t${++dbs}.db`);

function storeOn(tier: Adapter, options: EncryptionOptions = {}, namespace?: string) {
  return createStore({ tiers: [tier], plugins: [withRing(ring("k1"), options)], ...(namespace ? { namespace } : {}) });
}

describe("encryption", () => {
  it("seals content and non-queryable metadata, keeps queryable tags clear, and reads back transparently", async () => {
    const tier = memoryAdapter();
    const store = storeOn(tier, { queryable: ["kind"] });
    const d = makeDatum({ content: SECRET, metadata: { kind: "note", owner: "alice" } });
    await store.put(d);
    const raw = (await tier.get(d.id)) as Datum;
    expect(raw.metadata).toEqual({ kind: "note", [KEY_ID_KEY]: "k1" });
    expect(Buffer.from(raw.content).includes(Buffer.from(SECRET))).toBe(false);
    expect(Buffer.from(raw.content).includes(Buffer.from("alice"))).toBe(false);
    const got = await store.get(d.id);
    expect(text(got)).toBe(SECRET);
    expect(got?.metadata).toEqual({ kind: "note", owner: "alice" });
    expect(text((await store.list())[0])).toBe(SECRET);
    // Queryable tags filter; the others are not visible to the tier.
    expect((await store.query({ where: { kind: "note" } })).items.map((x) => x.id)).toEqual([d.id]);
    expect((await store.query({ where: { owner: "alice" } })).items).toEqual([]);
    await store.close();
  });

  it("an identical re-put is a no-op (synthetic nonce); a different datum under the id conflicts", async () => {
    const tier = memoryAdapter();
    const store = storeOn(tier);
    const d = makeDatum({ content: SECRET, metadata: { a: "1" } });
    await store.put(d);
    const first = Buffer.from(((await tier.get(d.id)) as Datum).content);
    await store.put(d);
    expect(Buffer.from(((await tier.get(d.id)) as Datum).content).equals(first)).toBe(true);
    await expectDgent(store.put({ ...d, content: Buffer.from("other") }), "DGENT_CONFLICT");
    // Two datums with the same content under different ids get different nonces and ciphertexts.
    const e = makeDatum({ content: SECRET, metadata: { a: "1" } });
    await store.put(e);
    const second = Buffer.from(((await tier.get(e.id)) as Datum).content);
    expect(second.subarray(1, 13).equals(first.subarray(1, 13))).toBe(false);
    await store.close();
  });

  it("a ciphertext moved to another id, parent or namespace, or with a flipped byte, fails with DGENT_DECRYPT_FAILED", async () => {
    const tier = memoryAdapter();
    const store = storeOn(tier, { queryable: ["kind"] });
    const d = makeDatum({ content: SECRET, metadata: { kind: "x" } });
    await store.put(d);
    const raw = (await tier.get(d.id)) as Datum;
    await tier.put({ ...raw, id: "moved" });
    const moved = await expectDgent(store.get("moved"), "DGENT_DECRYPT_FAILED");
    expect(moved.details).toMatchObject({ id: "moved", keyId: "k1" });
    await tier.put({ ...raw, id: "reparented", causalParent: d.id });
    await expectDgent(store.get("reparented"), "DGENT_DECRYPT_FAILED");
    const flipped = Buffer.from(raw.content);
    flipped[flipped.length - 20] = (flipped[flipped.length - 20] as number) ^ 1;
    await tier.put({ ...raw, id: "flipped", content: flipped });
    await expectDgent(store.get("flipped"), "DGENT_DECRYPT_FAILED");
    const tagged = memoryAdapter();
    await tagged.open();
    await tagged.put({ ...raw, metadata: { ...raw.metadata, kind: "y" } });
    await expectDgent(storeOn(tagged).get(d.id), "DGENT_DECRYPT_FAILED");
    // The same bytes in another namespace's store.
    const other = memoryAdapter();
    await other.open();
    await other.put(raw);
    await expectDgent(storeOn(other, {}, "elsewhere").get(d.id), "DGENT_DECRYPT_FAILED");
    await store.close();
  });

  it("compresses before it encrypts, and decrypts before it decompresses, whatever the order they are listed in", async () => {
    const body = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ step: i, thought: "think about the next action" })));
    for (const order of ["compression-first", "encryption-first"] as const) {
      const tier = memoryAdapter();
      const plugins = [compressionPlugin({ threshold: 0 }), withRing(ring("k2"))];
      const store = createStore({ tiers: [tier], plugins: order === "compression-first" ? plugins : plugins.reverse() });
      const d = makeDatum({ content: body });
      await store.put(d);
      const raw = (await tier.get(d.id)) as Datum;
      // Ciphertext of compressed bytes: much smaller than the JSON, and the encoding key is sealed inside.
      expect(raw.content.byteLength).toBeLessThan(body.length / 5);
      expect(raw.metadata).toEqual({ [KEY_ID_KEY]: "k2" });
      const opened = (await store.plugin(encryption)).open(raw);
      expect(opened.metadata).toEqual({ [ENCODING_KEY]: "gzip" });
      expect(Buffer.from(opened.content).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(text(await store.get(d.id))).toBe(body);
      await store.close();
    }
  });

  it("reads with old and new keys after a rotation; a datum under a key the ring lacks is DGENT_KEY_MISSING", async () => {
    const path = sqlitePath();
    const raw = sqliteAdapter({ path });
    await raw.open();
    const tier = () => sqliteAdapter({ path });
    const before = createStore({ tiers: [tier()], plugins: [withRing(ring("k1", { k1: K1 }))] });
    const a = makeDatum({ content: "old secret" });
    await before.put(a);
    await before.close();
    const after = createStore({ tiers: [tier()], plugins: [withRing(ring("k2"))] });
    const b = makeDatum({ content: "new secret" });
    await after.put(b);
    expect(text(await after.get(a.id))).toBe("old secret");
    expect(text(await after.get(b.id))).toBe("new secret");
    expect((await raw.get(b.id))?.metadata[KEY_ID_KEY]).toBe("k2");
    const h = await after.plugin(encryption);
    expect(h.keyOf((await raw.get(a.id)) as Datum)).toBe("k1");
    await after.close();
    await raw.close();
    const onlyNew = createStore({ tiers: [tier()], plugins: [withRing(ring("k2", { k2: K2 }))] });
    const missing = await expectDgent(onlyNew.get(a.id), "DGENT_KEY_MISSING");
    expect(missing.message).not.toContain(K1);
    await onlyNew.close();
  });

  it("takes keys from the environment, a key file, or a provider; no key at all is DGENT_KEY_MISSING", async () => {
    const path = sqlitePath();
    const tier = () => sqliteAdapter({ path });
    const env = { DGENT_ENCRYPTION_KEY: `k2:${K2}`, DGENT_ENCRYPTION_KEYS: `k1:${K1}` };
    const fromEnv = createStore({ tiers: [tier()], plugins: [encryptionPlugin({ env })] });
    const d = makeDatum({ content: SECRET });
    await fromEnv.put(d);
    expect((await fromEnv.plugin(encryption)).keyIds().sort()).toEqual(["k1", "k2"]);
    await fromEnv.close();
    const file = join(dir, "keys.json");
    writeFileSync(file, JSON.stringify(ring("k1")));
    const fromFile = createStore({ tiers: [tier()], plugins: [encryptionPlugin({ keyFile: file })] });
    expect(text(await fromFile.get(d.id))).toBe(SECRET);
    expect((await fromFile.plugin(encryption)).activeKey().id).toBe("k1");
    await fromFile.close();
    await expectDgent(createStore({ tiers: [memoryAdapter()], plugins: [encryptionPlugin({ env: {} })] }).open(), "DGENT_KEY_MISSING");
    await expectDgent(
      createStore({ tiers: [memoryAdapter()], plugins: [encryptionPlugin({ env: { DGENT_ENCRYPTION_KEY: "k1:c2hvcnQ=" } })] }).open(),
      "DGENT_INVALID_OPTIONS",
    );
  });

  it("composes from a config file by its catalogue name", async () => {
    expect(await defaultRegistry.plugin("encryption")).toBe(encryption);
    const file = join(dir, "cfg-keys.json");
    writeFileSync(file, JSON.stringify(ring("k1")));
    const store = await createStoreFromConfig(
      { tiers: [{ adapter: "sqlite", options: { path: join(dir, "cfg.db") } }], plugins: [{ plugin: "encryption", options: { keyFile: file, queryable: ["kind"] } }] },
      {},
    );
    const d = makeDatum({ content: SECRET, metadata: { kind: "k" } });
    await store.put(d);
    expect(text(await store.get(d.id))).toBe(SECRET);
    await store.close();
  });

  it("no file a SQLite or JSONL tier writes holds the plaintext of content or secret metadata", async () => {
    const sqliteDir = mkdtempSync(join(dir, "sq-"));
    const jsonlDir = mkdtempSync(join(dir, "jl-"));
    const marker = `plaintext-marker-${randomBytes(6).toString("hex")}`;
    const tiers: Array<[Adapter, string]> = [
      [sqliteAdapter({ path: join(sqliteDir, "s.db") }), sqliteDir],
      [jsonlAdapter({ dataDir: jsonlDir, namespace: "n" }), jsonlDir],
    ];
    for (const [tier, root] of tiers) {
      const store = storeOn(tier, { queryable: ["kind"] });
      let parent: string | null = null;
      for (let i = 0; i < 20; i++) {
        const d: Datum = makeDatum({ content: `${marker} step ${i}`, causalParent: parent, metadata: { kind: "public", secret: `${marker}-meta` } });
        parent = await store.put(d);
      }
      await store.transaction((tx) => void tx.put(makeDatum({ content: `${marker} in a transaction`, metadata: { secret: marker } })));
      await store.refs.set("head", parent as string);
      expect(text(await store.get(parent as string))).toBe(`${marker} step 19`);
      // Checked while open (WAL and journal files present) and after close.
      for (const phase of ["open", "closed"]) {
        if (phase === "closed") await store.close();
        const files = readdirSync(root);
        expect(files.length).toBeGreaterThan(0);
        for (const f of files) expect(readFileSync(join(root, f)).includes(Buffer.from(marker)), `${f} (${phase})`).toBe(false);
      }
    }
  });
});

describe("encryption: the envelope as a property", () => {
  it("open(seal(d)) is d for any datum and any choice of queryable keys; the sealed form exposes only those keys", () => {
    const keys = loadKeyring(ring("k1"), "test");
    fc.assert(
      fc.property(datumArb, fc.boolean(), fc.constantFrom<"synthetic" | "random">("synthetic", "random"), (d, someQueryable, nonce) => {
        const queryable = new Set(someQueryable ? Object.keys(d.metadata).filter((_, i) => i % 2 === 0) : []);
        const stored = seal(d, keys.active, { namespace: "ns", queryable, nonce });
        expect(Object.keys(stored.metadata).sort()).toEqual([...queryable, KEY_ID_KEY].sort());
        const back = open(stored, keys, "ns");
        expect(back.id).toBe(d.id);
        expect(back.causalParent).toBe(d.causalParent);
        expect(back.createdAt).toBe(d.createdAt);
        expect(back.metadata).toEqual(d.metadata);
        expect(Buffer.from(back.content).equals(Buffer.from(d.content))).toBe(true);
        if (nonce === "synthetic") expect(Buffer.from(seal(d, keys.active, { namespace: "ns", queryable, nonce }).content).equals(Buffer.from(stored.content))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * Envelope version 1 as it was first written (JSON.stringify for the additional data, one cipher
 * update per part, HMAC over the parts): the faster seal must give the same bytes, so datums
 * sealed before still open and an identical re-put of one still stores identical bytes.
 */
function sealV1Reference(d: Datum, key: DerivedKey, namespace: string, queryable: ReadonlySet<string>): Buffer {
  const clear: Record<string, string> = {};
  const hidden: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(d.metadata)) if (queryable.has(k)) Object.defineProperty(clear, k, { value: v, enumerable: true, writable: true, configurable: true });
  else hidden.push([k, v]);
  clear[KEY_ID_KEY] = key.id;
  const pairs = Object.keys(clear).sort().map((k) => [k, clear[k]]);
  const ad = Buffer.from(JSON.stringify(["dgent-encryption/1", namespace, d.id, d.causalParent, pairs]), "utf8");
  const meta = hidden.length === 0 ? Buffer.alloc(0) : Buffer.from(JSON.stringify(Object.fromEntries(hidden)), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(meta.byteLength, 0);
  const content = Buffer.from(d.content);
  const nonce = createHmac("sha256", key.nonceRaw).update(ad).update(head).update(meta).update(content).digest().subarray(0, 12);
  const cipher = createCipheriv("aes-256-gcm", key.aes, nonce);
  cipher.setAAD(ad);
  return Buffer.concat([Buffer.from([1]), nonce, cipher.update(head), cipher.update(meta), cipher.update(content), cipher.final(), cipher.getAuthTag()]);
}

describe("encryption: envelope version 1 stays byte for byte", () => {
  it("seal gives the bytes of the first version-1 implementation, and open reads what it sealed", () => {
    const keys = loadKeyring(ring("k1"), "test");
    fc.assert(
      fc.property(datumArb, fc.boolean(), fc.string(), (d, someQueryable, namespace) => {
        const queryable = new Set(someQueryable ? Object.keys(d.metadata).filter((_, i) => i % 2 === 1) : []);
        const reference = sealV1Reference(d, keys.active, namespace, queryable);
        const stored = seal(d, keys.active, { namespace, queryable, nonce: "synthetic" });
        expect(Buffer.from(stored.content).equals(reference)).toBe(true);
        const back = open({ ...stored, content: new Uint8Array(reference) }, keys, namespace);
        expect(back.metadata).toEqual(d.metadata);
        expect(Buffer.from(back.content).equals(Buffer.from(d.content))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe("encryption through the conformance kit (memory)", () => {
  runConformance(
    { name: "memory + encryption", create: () => createStore({ tiers: [memoryAdapter()], plugins: [withRing(ring("k1"))] }) },
    { describe, it, beforeAll, afterAll },
    { only: ["put", "delete", "list", "causalChain", "badInput", "lifecycle", "putMany"] },
  );
});
