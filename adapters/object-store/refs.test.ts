/**
 * Refs on the object-store tiers (s3 on s3rver behind the harness's conditional-write layer, gcs
 * on the harness's emulator): the kit's refs suite, what the services must do for compare-and-set
 * (checked at the HTTP level), the key layout, the reflog bound, a write whose answer was lost,
 * and that transactions are refused by capability.
 */
import { randomBytes } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { REFLOG_LIMIT, type RefMove } from "../../core/refs.js";
import { createStore } from "../../core/store.js";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { Scope, type Suite } from "../../testing/support.js";
import { refsSuite } from "../../testing/suites/refs.js";
import { connectGcs } from "../gcs/backend.js";
import { gcsAdapter, type GcsOptions } from "../gcs/index.js";
import { resolveConfig as resolveGcs } from "../gcs/options.js";
import { connectS3 } from "../s3/backend.js";
import { s3Adapter, type S3Options } from "../s3/index.js";
import { resolveConfig as resolveS3 } from "../s3/options.js";
import type { ObjectStoreAdapter } from "./adapter.js";
import type { ObjectBackend } from "./backend.js";
import { ObjectRefs, refKey, refListingPrefix, refsPrefix, type RefsContext } from "./refs.js";

const BUCKET = "dgent-refs";
const move = (by = "tester", at = 1_700_000_000_000): RefMove => ({ by, at });

/** What differs between the two services, for the cases below. */
interface Service {
  readonly name: "s3" | "gcs";
  options(namespace: string): S3Options | GcsOptions;
  make(options: S3Options | GcsOptions): ObjectStoreAdapter;
  backend(options: S3Options | GcsOptions): Promise<ObjectBackend>;
  /** Requests by operation since the last reset. */
  requests(): Promise<Readonly<Record<string, number>>>;
  reset(): Promise<void>;
  /** The operation names of a read and a conditional write. */
  readonly ops: { read: string; write: string };
  destroy(namespace: string): Promise<void>;
}

let s3server: S3Server;
let s3raw: S3Client;
let emulator: GcsEmulator;
let storage: Storage;

beforeAll(async () => {
  [s3server, emulator] = await Promise.all([startS3(), startGcsEmulator()]);
  await s3server.createBucket(BUCKET);
  emulator.createBucket(BUCKET);
  s3raw = new S3Client({ ...s3server.clientOptions, maxAttempts: 1 });
  storage = new Storage({ apiEndpoint: emulator.url, projectId: "test", retryOptions: { autoRetry: false } });
});
afterAll(async () => {
  s3raw?.destroy();
  await Promise.all([s3server?.stop(), emulator?.stop()]);
});

const s3: Service = {
  name: "s3",
  options: (namespace) => ({ ...s3server.clientOptions, bucket: BUCKET, namespace, retryBaseDelayMs: 5 }),
  make: (options) => s3Adapter(options as S3Options),
  backend: (options) => connectS3(resolveS3(options as S3Options)),
  requests: async () => (await s3server.stats()).byOp,
  reset: () => s3server.resetStats(),
  ops: { read: "GetObject", write: "PutObject" },
  async destroy(namespace) {
    // One DeleteObject at a time: s3rver's DeleteObjects deletes its keys in parallel and, pruning
    // the directories it keeps nested keys in (refs/<segment>/<segment>), trips over itself.
    for (;;) {
      const listed = await s3raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `dgent/${namespace}/`, MaxKeys: 1000 }));
      const keys = (listed.Contents ?? []).map((o) => o.Key as string);
      if (keys.length === 0) return;
      for (const Key of keys) await s3raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }));
    }
  },
};

const gcs: Service = {
  name: "gcs",
  options: (namespace) => ({ apiEndpoint: emulator.url, projectId: "test", bucket: BUCKET, namespace, retryBaseDelayMs: 5 }),
  make: (options) => gcsAdapter(options as GcsOptions),
  backend: (options) => connectGcs(resolveGcs(options as GcsOptions)),
  requests: async () => emulator.stats().byOp,
  reset: async () => emulator.resetStats(),
  ops: { read: "objects.download", write: "upload.multipart" },
  async destroy(namespace) {
    await storage.bucket(BUCKET).deleteFiles({ prefix: `dgent/${namespace}/` });
  },
};

const fresh = () => `refs-${randomBytes(6).toString("hex")}`;

describe("the services do what compare-and-set needs (checked at the HTTP status the SDK reports)", () => {
  const status = async (p: Promise<unknown>) => {
    try {
      await p;
      return 200;
    } catch (error) {
      const e = error as { $metadata?: { httpStatusCode?: number }; code?: unknown };
      return e.$metadata?.httpStatusCode ?? e.code;
    }
  };

  it("s3: a PUT or DELETE with a stale If-Match is 412 and changes nothing; of ten PUTs racing with the same If-Match exactly one lands", async () => {
    const Key = `cas/${randomBytes(6).toString("hex")}`;
    const first = await s3raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v1", IfNoneMatch: "*" }));
    const second = await s3raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v2", IfMatch: first.ETag }));
    expect(await status(s3raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v3", IfMatch: first.ETag })))).toBe(412);
    expect(await status(s3raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: first.ETag })))).toBe(412);
    const body = async () => (await (await s3raw.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body?.transformToString()) ?? "";
    expect(await body()).toBe("v2");
    const race = await Promise.all(Array.from({ length: 10 }, (_, i) => status(s3raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `racer ${i}`, IfMatch: second.ETag })))));
    expect(race.filter((s) => s === 200)).toHaveLength(1);
    expect(race.filter((s) => s === 412)).toHaveLength(9);
    expect(await body()).toBe(`racer ${race.indexOf(200)}`);
  });

  it("gcs: an upload or delete with a stale ifGenerationMatch is 412; a download reports the generation; of ten uploads racing on one generation exactly one lands", async () => {
    const file = storage.bucket(BUCKET).file(`cas/${randomBytes(6).toString("hex")}`);
    await file.save("v1", { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const first = String(file.metadata.generation);
    await file.save("v2", { resumable: false, preconditionOpts: { ifGenerationMatch: first } });
    const second = String(file.metadata.generation);
    expect(second).not.toBe(first);
    expect(await status(file.save("v3", { resumable: false, preconditionOpts: { ifGenerationMatch: first } }))).toBe(412);
    expect(await status(file.delete({ ifGenerationMatch: first }))).toBe(412);
    const generation = await new Promise<unknown>((resolve, reject) => {
      let g: unknown;
      file.createReadStream().on("response", (res: { headers?: Record<string, unknown> }) => (g = res.headers?.["x-goog-generation"])).on("data", () => undefined).on("end", () => resolve(g)).on("error", reject);
    });
    expect(generation).toBe(second);
    const race = await Promise.all(
      Array.from({ length: 10 }, (_, i) => status(storage.bucket(BUCKET).file(file.name).save(`racer ${i}`, { resumable: false, preconditionOpts: { ifGenerationMatch: second } }))),
    );
    expect(race.filter((s) => s === 200)).toHaveLength(1);
    expect(race.filter((s) => s === 412)).toHaveLength(9);
    expect((await file.download())[0].toString()).toBe(`racer ${race.indexOf(200)}`);
  });
});

describe("ref keys", () => {
  it("spell names in hex segments that sort like the names and make a name prefix a key prefix; long names end in a hash", () => {
    const p = "root/refs/";
    expect(refKey(p, "a/b")).toBe("root/refs/612f62");
    const long = "x".repeat(150);
    expect(refKey(p, long)).toBe(`root/refs/${"78".repeat(100)}/${"78".repeat(50)}`);
    const huge = "y".repeat(500);
    expect(refKey(p, huge)).toMatch(new RegExp(`^root/refs/(79){100}/(79){100}/(79){100}/~[0-9a-f]{64}$`));
    const names = ["b", "a", "ab", "a/", "\u00e9", "\u{1f600}", "z", long, huge, `${huge}0`];
    const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const byKey = [...names].sort((a, b) => (refKey(p, a) < refKey(p, b) ? -1 : 1));
    // Names up to 300 bytes sort exactly like their keys; longer ones sort after their first 300 bytes.
    expect(byKey.filter((n) => Buffer.byteLength(n) <= 300)).toEqual(sorted.filter((n) => Buffer.byteLength(n) <= 300));
    for (const name of names) {
      for (const prefix of ["", "a", "x".repeat(100), "y".repeat(300), "y".repeat(301)]) {
        if (name.startsWith(prefix)) expect(refKey(p, name).startsWith(refListingPrefix(p, prefix)), `${name.length}/${prefix.length}`).toBe(true);
      }
    }
    for (const key of names.map((n) => refKey(p, n))) {
      for (const part of key.split("/")) expect(Buffer.byteLength(part)).toBeLessThanOrEqual(200);
    }
  });
});

for (const service of [s3, gcs]) {
  describe(`${service.name}: refs`, () => {
    const target = {
      name: service.name,
      namespaces: new WeakMap<object, string>(),
      create() {
        const namespace = fresh();
        const adapter = service.make(service.options(namespace));
        this.namespaces.set(adapter, namespace);
        return adapter;
      },
      reopen(previous: object) {
        const namespace = this.namespaces.get(previous) as string;
        const adapter = service.make(service.options(namespace));
        this.namespaces.set(adapter, namespace);
        return adapter;
      },
      destroy(instance: object) {
        return service.destroy(this.namespaces.get(instance) as string);
      },
    };
    const suite: Suite = {
      fw: { describe, it, beforeAll, afterAll } as never,
      target,
      options: {} as never,
      test(name, body) {
        it(name, async () => {
          const scope = new Scope(target);
          try {
            await body(scope);
          } finally {
            await scope.dispose();
          }
        });
      },
    };
    describe("the kit's refs suite", () => refsSuite(suite));

    it("declares refs and not transactions: the store refuses a transaction with DGENT_UNSUPPORTED naming the tier; update() still works (put, then compare-and-set)", async () => {
      const namespace = fresh();
      const adapter = service.make(service.options(namespace));
      expect(adapter.capabilities.refs).toBe(true);
      expect(adapter.capabilities.transactions).toBeUndefined();
      const store = createStore({ tiers: [adapter] });
      await store.open();
      const d = makeDatum({ content: "x" });
      await expect(store.transaction([{ op: "put", datum: d }, { op: "setRef", name: "head", target: d.id }])).rejects.toMatchObject({
        code: "DGENT_UNSUPPORTED",
        details: { tier: service.name, capability: "transactions" },
      });
      expect(await store.get(d.id)).toBeNull();
      expect(await store.refs.get("head")).toBeNull();
      const ref = await store.refs.update("head", () => d);
      expect(ref).toMatchObject({ target: d.id, version: 1 });
      expect((await store.get(d.id))?.id).toBe(d.id);
      await store.close();
      await service.destroy(namespace);
    });

    it("an uncontended move is one read and one conditional write of one object under refs/", async () => {
      const namespace = fresh();
      const adapter = service.make(service.options(namespace));
      await adapter.open();
      await adapter.setRef("thread/1/head", "a", undefined, move());
      await service.reset();
      const ref = await adapter.setRef("thread/1/head", "b", { version: 1 }, move());
      expect(ref).toMatchObject({ target: "b", version: 2 });
      expect(await service.requests()).toEqual({ [service.ops.read]: 1, [service.ops.write]: 1 });
      await adapter.close();
      const keys = service.name === "s3"
        ? ((await s3raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: refsPrefix(`dgent/${namespace}/`) }))).Contents ?? []).map((o) => o.Key)
        : emulator.names(BUCKET, refsPrefix(`dgent/${namespace}/`));
      expect(keys).toEqual([refKey(refsPrefix(`dgent/${namespace}/`), "thread/1/head")]);
      await service.destroy(namespace);
    });

    it("two instances (as two processes would) racing on one ref: exactly one wins each round, the loser's DGENT_REF_CONFLICT says what the ref holds", async () => {
      const namespace = fresh();
      const [a, b] = [service.make(service.options(namespace)), service.make(service.options(namespace))];
      await Promise.all([a.open(), b.open()]);
      let ref = await a.setRef("race", "start", { absent: true }, move());
      for (let round = 0; round < 15; round++) {
        const outcomes = await Promise.allSettled([a.setRef("race", `a${round}`, { version: ref.version }, move("a")), b.setRef("race", `b${round}`, { version: ref.version }, move("b"))]);
        const won = outcomes.filter((o): o is PromiseFulfilledResult<typeof ref> => o.status === "fulfilled");
        expect(won, `round ${round}`).toHaveLength(1);
        const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
        ref = (won[0] as PromiseFulfilledResult<typeof ref>).value;
        expect(lost.reason).toMatchObject({ code: "DGENT_REF_CONFLICT", details: { actual: { version: ref.version, target: ref.target } } });
        expect(await b.getRef("race")).toEqual(ref);
      }
      expect((await a.reflog("race", REFLOG_LIMIT)).map((e) => e.version)).toEqual(Array.from({ length: 16 }, (_, i) => 16 - i));
      await Promise.all([a.close(), b.close()]);
      await service.destroy(namespace);
    });

    it("the reflog keeps the last REFLOG_LIMIT moves; refs and reflogs survive a reopen; a deleted ref keeps its reflog and starts again at version 1", async () => {
      const namespace = fresh();
      const a = service.make(service.options(namespace));
      await a.open();
      const moves = REFLOG_LIMIT + 12;
      for (let i = 1; i <= moves; i++) await a.setRef("busy", `t${i}`, i === 1 ? { absent: true } : { version: i - 1 }, move("w", i));
      await a.setRef("gone", "x", undefined, move("w", 1));
      expect(await a.deleteRef("gone", { target: "y" }, move()).catch((e: { code: string }) => e.code)).toBe("DGENT_REF_CONFLICT");
      expect(await a.deleteRef("gone", { version: 1 }, move("w", 2))).toBe(true);
      expect(await a.deleteRef("gone", undefined, move())).toBe(false);
      await a.close();
      const b = service.make(service.options(namespace));
      await b.open();
      const log = await b.reflog("busy", REFLOG_LIMIT);
      expect(log).toHaveLength(REFLOG_LIMIT);
      expect(log[0]).toEqual({ name: "busy", from: `t${moves - 1}`, to: `t${moves}`, version: moves, at: moves, by: "w" });
      expect(log[REFLOG_LIMIT - 1]?.version).toBe(moves - REFLOG_LIMIT + 1);
      expect(await b.getRef("busy")).toEqual({ name: "busy", target: `t${moves}`, version: moves, updatedAt: moves });
      expect(await b.getRef("gone")).toBeNull();
      expect((await b.listRefs("")).map((r) => r.name)).toEqual(["busy"]);
      expect((await b.reflog("gone", 10)).map((e) => [e.from, e.to, e.version])).toEqual([["x", null, 1], [null, "x", 1]]);
      expect(await b.setRef("gone", "z", { absent: true }, move())).toMatchObject({ version: 1, target: "z" });
      expect(await b.reflog("gone", 10)).toHaveLength(3);
      await b.close();
      await service.destroy(namespace);
    });

    it("lists long and non-ASCII names by prefix in code point order", async () => {
      const namespace = fresh();
      const a = service.make(service.options(namespace));
      await a.open();
      const long = "p/" + "\u00e9".repeat(200); // 402 bytes: a hashed key
      const names = [`${long}b`, `${long}a`, "p/z", "p/\u{1f600}", "p/a", "q/a", "p"];
      for (const name of names) await a.setRef(name, "t", undefined, move());
      expect((await a.listRefs("p/")).map((r) => r.name)).toEqual(["p/a", "p/z", `${long}a`, `${long}b`, "p/\u{1f600}"]);
      expect((await a.listRefs(long)).map((r) => r.name)).toEqual([`${long}a`, `${long}b`]);
      expect((await a.listRefs(`${long}b`)).map((r) => r.name)).toEqual([`${long}b`]);
      expect((await a.listRefs("")).length).toBe(names.length);
      expect((await a.getRef(`${long}a`))?.name).toBe(`${long}a`);
      await a.close();
      await service.destroy(namespace);
    });

    it("a write that landed but whose answer was lost is reported once, not made twice (the reflog finds it)", async () => {
      const namespace = fresh();
      const options = service.options(namespace);
      const real = await service.backend(options);
      await real.open(false);
      let lose = 0;
      // The real service, with the answer of the next `lose` writes dropped after they landed.
      const backend = {
        location: real.location,
        read: (key: string) => (real.read as NonNullable<ObjectBackend["read"]>).call(real, key),
        list: (prefix: string, cursor: string | null, max: number) => real.list(prefix, cursor, max),
        async write(key: string, body: Uint8Array, ifVersion: string | null) {
          const version = await (real.write as NonNullable<ObjectBackend["write"]>).call(real, key, body, ifVersion);
          if (lose > 0 && version !== null) {
            lose--;
            throw dgentError("DGENT_UNAVAILABLE", "the connection was reset before the answer arrived", { unit: service.name });
          }
          return version;
        },
      } as unknown as RefsContext["backend"];
      let retries = 0;
      const refs = new ObjectRefs({
        backend,
        prefix: refsPrefix(`dgent/${namespace}/`),
        unit: service.name,
        concurrency: 4,
        attempt: async (fn) => {
          for (;;) {
            try {
              return await fn();
            } catch (error) {
              if ((error as { code?: string }).code !== "DGENT_UNAVAILABLE") throw error;
              retries++;
            }
          }
        },
      });
      await refs.set("r", "a", { absent: true }, move("x", 1));
      lose = 1;
      expect(await refs.set("r", "b", { version: 1 }, move("x", 2))).toEqual({ name: "r", target: "b", version: 2, updatedAt: 2 });
      lose = 1;
      expect(await refs.set("r", "c", undefined, move("x", 3))).toMatchObject({ target: "c", version: 3 });
      lose = 1;
      expect(await refs.delete("r", { version: 3 }, move("x", 4))).toBe(true);
      expect(retries).toBe(3);
      expect((await refs.reflog("r", 10)).map((e) => [e.to, e.version])).toEqual([[null, 3], ["c", 3], ["b", 2], ["a", 1]]);
      await real.close();
      await service.destroy(namespace);
    });
  });
}
