import { randomBytes } from "node:crypto";
import type { Datum } from "../../core/datum.js";
import type { Ref } from "../../core/refs.js";
import type { Store } from "../../core/store.js";
import type { Contender, TierSetup } from "../contender.js";
import { compare, type SamplePlan, type Stats } from "../measure.js";
import { gcsServer, s3Server } from "../servers.js";
import { oldDatums } from "../workload.js";
import { dgentContender } from "./dgent.js";

/**
 * The object-store tiers on the test servers: s3rver (with the harness middleware that makes it
 * honour conditional writes) and the GCS JSON-API emulator. The raw baseline keeps one object per
 * datum, a JSON header line plus the content (so one GET returns the datum, as dgent's envelope
 * does), written create-only:
 *   put = one conditional PUT; get = one GET; chain(10) = ten GETs in a row (parents from the
 *   headers); list(100) = one listing page of the datum prefix + 100 GETs, 16 in flight (correct
 *   only while the prefix holds ≤ 1000 objects — dgent's time index has no such limit);
 *   putMany(100) = 100 conditional PUTs in a row (dgent's putMany on object stores is sequential
 *   puts too: no multi-object transactions).
 * No peer: Keyv has no S3 or GCS adapter; unstorage's s3 driver needs `aws4fetch` (not a
 * dependency here) and it has no GCS driver.
 */

interface RawObjects {
  put(key: string, body: Buffer): Promise<unknown>;
  read(key: string): Promise<Uint8Array | null>;
  /** The body and its ETag / generation, in one GET. */
  readVersioned(key: string): Promise<{ body: Uint8Array; version: string }>;
  /** A write conditional on `version` (If-Match / ifGenerationMatch); throws on a 412. */
  writeIf(key: string, body: Buffer, version: string): Promise<unknown>;
  /** Keys under a prefix, ascending, one page of at most 1000. */
  keys(prefix: string): Promise<string[]>;
  close(): void;
}

function envelope(d: Datum): Buffer {
  const header = JSON.stringify({ id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata });
  return Buffer.concat([Buffer.from(`${header}\n`), d.content]);
}

function unwrap(body: Uint8Array): Datum {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const nl = b.indexOf(10);
  const h = JSON.parse(b.toString("utf8", 0, nl)) as { id: string; createdAt: number; causalParent: string | null; metadata: Record<string, string> };
  return { ...h, content: b.subarray(nl + 1) };
}

async function inParallel<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

function rawContender(name: string, description: string, objects: RawObjects, root: string): Contender {
  const key = (id: string) => `${root}d/${id}`;
  const get = async (id: string): Promise<Datum | null> => {
    const body = await objects.read(key(id));
    return body === null ? null : unwrap(body);
  };
  const put = async (d: Datum) => {
    await objects.put(key(d.id), envelope(d));
    return d.id;
  };
  return {
    name,
    kind: "raw",
    description,
    notes: { list: "one listing page of the prefix + 100 GETs (16 in flight)", putMany: "100 conditional PUTs in a row" },
    put,
    putMany: async (ds) => {
      for (const d of ds) await put(d);
      return ds.map((d) => d.id);
    },
    get,
    list: async (limit) => {
      const keys = (await objects.keys(`${root}d/`)).slice(-limit).reverse();
      return inParallel(keys, 16, async (k) => unwrap((await objects.read(k)) as Uint8Array));
    },
    chain: async (id) => {
      const out: Datum[] = [];
      let next: string | null = id;
      while (next !== null && out.length <= 10_000) {
        const d = await get(next);
        if (d === null) break;
        out.push(d);
        next = d.causalParent;
      }
      return out.reverse();
    },
    prefill: async (ds) => void (await inParallel(ds, 16, put)),
    close: async () => objects.close(),
  };
}

/**
 * Ref compare-and-set on an object store (issue 13; no transactions there): dgent's
 * `store.refs.set(name, target, { expect: { version } })` — a GET and a PUT conditional on its
 * ETag / generation, the body holding the ref and its reflog (100 entries once full) — against the
 * raw SDK's GET + conditional PUT of a small JSON `{ target, version }`. Each call moves the ref;
 * a failed compare-and-set throws.
 */
async function measureObjectCas(store: Store, objects: RawObjects, root: string, target: string, plan: SamplePlan): Promise<{ cas: { stats: Record<string, Stats>; ratioRaw: number; raw: string } }> {
  let ref: Ref = await store.refs.set("bench/cas", target);
  // Fill the reflog first, so dgent's body is as large as it gets in steady use.
  for (let i = 0; i < 100; i++) ref = await store.refs.set("bench/cas", target, { expect: { version: ref.version } });
  const key = `${root}refs/bench-cas`;
  await objects.put(key, Buffer.from(JSON.stringify({ target, version: 1 })));
  const raw = "raw GET + conditional PUT";
  const stats = await compare(
    [
      {
        name: "dgent",
        args: (n: number) => new Array<number>(n).fill(0),
        run: async () => {
          ref = await store.refs.set("bench/cas", target, { expect: { version: ref.version } });
        },
      },
      {
        name: raw,
        args: (n: number) => new Array<number>(n).fill(0),
        run: async () => {
          const { body, version } = await objects.readVersioned(key);
          const now = JSON.parse(Buffer.from(body).toString("utf8")) as { target: string; version: number };
          await objects.writeIf(key, Buffer.from(JSON.stringify({ target, version: now.version + 1 })), version);
        },
      },
    ],
    plan,
  );
  return { cas: { stats: Object.fromEntries(stats), ratioRaw: (stats.get("dgent") as Stats).p50 / (stats.get(raw) as Stats).p50, raw } };
}

export async function s3Tier(): Promise<TierSetup> {
  // The SDK warns (once, on stderr) that releases after January 2027 need Node 22; not news here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const server = await s3Server();
  try {
    const { S3Client, PutObjectCommand, GetObjectCommand, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const { s3Adapter } = await import("../../adapters/s3/index.js");
    const bucket = "bench";
    await server.createBucket(bucket);
    const ns = `bench-${randomBytes(4).toString("hex")}`;
    const client = new S3Client({ ...server.clientOptions, maxAttempts: 1 });
    const objects: RawObjects = {
      put: (Key, Body) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body, IfNoneMatch: "*" })),
      read: async (Key) => {
        try {
          const o = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
          return (await o.Body?.transformToByteArray()) ?? null;
        } catch (error) {
          if ((error as { name?: string }).name === "NoSuchKey") return null;
          throw error;
        }
      },
      readVersioned: async (Key) => {
        const o = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
        return { body: (await o.Body?.transformToByteArray()) ?? new Uint8Array(0), version: o.ETag as string };
      },
      writeIf: (Key, Body, version) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body, IfMatch: version })),
      keys: async (Prefix) => ((await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix, MaxKeys: 1000 }))).Contents ?? []).map((o) => o.Key as string),
      close: () => client.destroy(),
    };
    const dgent = dgentContender(s3Adapter({ ...server.clientOptions, bucket, namespace: ns }), "createStore({ tiers: [s3Adapter({ bucket, endpoint, forcePathStyle })] })", { prefillConcurrency: 16 });
    return {
      tier: "s3",
      label: "s3 (s3rver 3.7.1 + harness middleware, loopback HTTP, objects on tmpfs)",
      contenders: [dgent, rawContender("raw @aws-sdk/client-s3", "S3Client (maxAttempts 1): one object per datum (JSON header + content), PutObject with If-None-Match: *", objects, `raw-${ns}/`)],
      probe: async (ids, plan) => {
        const requests: Record<string, Readonly<Record<string, number>>> = {};
        const count = async (op: string, fn: () => Promise<unknown>) => {
          await server.resetStats();
          await fn();
          requests[op] = (await server.stats()).byOp;
        };
        const refs = await measureObjectCas(dgent.store, objects, `raw-${ns}/`, ids.get, plan("put"));
        await count("refs.set", () => dgent.store.refs.set("bench/count", ids.get));
        await count("put", () => dgent.store.put(oldDatums(1)[0] as Datum));
        await count("get", () => dgent.store.get(ids.get));
        await count("list", () => dgent.store.list({ limit: 100 }));
        await count("chain", () => dgent.store.causalChain(ids.chain));
        return { dgentRequests: requests, refs };
      },
      dispose: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

export async function gcsTier(): Promise<TierSetup> {
  const emulator = await gcsServer();
  try {
    const { Storage } = await import("@google-cloud/storage");
    const { gcsAdapter } = await import("../../adapters/gcs/index.js");
    const bucketName = "bench";
    emulator.createBucket(bucketName);
    const ns = `bench-${randomBytes(4).toString("hex")}`;
    const bucket = new Storage({ apiEndpoint: emulator.url, projectId: "bench", retryOptions: { autoRetry: false } }).bucket(bucketName);
    const objects: RawObjects = {
      put: (key, body) => bucket.file(key).save(body, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
      read: async (key) => {
        try {
          return (await bucket.file(key).download())[0];
        } catch (error) {
          if ((error as { code?: number }).code === 404) return null;
          throw error;
        }
      },
      readVersioned: (key) =>
        new Promise((resolve, reject) => {
          let version = "";
          const chunks: Buffer[] = [];
          bucket
            .file(key)
            .createReadStream()
            .on("response", (res: { headers?: Record<string, unknown> }) => (version = String(res.headers?.["x-goog-generation"] ?? "")))
            .on("data", (c: Buffer) => chunks.push(c))
            .on("end", () => resolve({ body: Buffer.concat(chunks), version }))
            .on("error", reject);
        }),
      writeIf: (key, body, version) => bucket.file(key).save(body, { resumable: false, preconditionOpts: { ifGenerationMatch: version } }),
      keys: async (prefix) => (await bucket.getFiles({ prefix, maxResults: 1000, autoPaginate: false }))[0].map((f) => f.name),
      close: () => undefined,
    };
    const dgent = dgentContender(gcsAdapter({ apiEndpoint: emulator.url, projectId: "bench", bucket: bucketName, namespace: ns }), "createStore({ tiers: [gcsAdapter({ bucket, apiEndpoint })] })", { prefillConcurrency: 16 });
    return {
      tier: "gcs",
      label: "gcs (the harness's GCS JSON-API emulator, in-process node:http, loopback)",
      contenders: [dgent, rawContender("raw @google-cloud/storage", "Storage (autoRetry off): one object per datum (JSON header + content), multipart upload with ifGenerationMatch=0", objects, `raw-${ns}/`)],
      probe: async (ids, plan) => {
        const requests: Record<string, Readonly<Record<string, number>>> = {};
        const count = async (op: string, fn: () => Promise<unknown>) => {
          emulator.resetStats();
          await fn();
          requests[op] = emulator.stats().byOp;
        };
        const refs = await measureObjectCas(dgent.store, objects, `raw-${ns}/`, ids.get, plan("put"));
        await count("refs.set", () => dgent.store.refs.set("bench/count", ids.get));
        await count("put", () => dgent.store.put(oldDatums(1)[0] as Datum));
        await count("get", () => dgent.store.get(ids.get));
        await count("list", () => dgent.store.list({ limit: 100 }));
        await count("chain", () => dgent.store.causalChain(ids.chain));
        return { dgentRequests: requests, refs };
      },
      dispose: () => emulator.stop(),
    };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
}
