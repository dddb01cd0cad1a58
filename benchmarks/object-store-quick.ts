/**
 * Quick latency check of the s3 and gcs tiers against their raw SDKs in the same run, on the
 * same local servers the tests use (s3rver with the harness middleware; the GCS JSON-API
 * emulator): put (1 KiB, create-only), get, list (newest 20 of a prefix) and causalChain (10
 * deep). The raw side does the nearest equivalent work with the SDK alone: one create-only
 * write; one read; one listing page plus a read per result; ten reads in a row. Contenders
 * alternate in rounds so both see the same machine load. Prints medians and p90 in ms, and the
 * requests each dgent call made.
 *
 *   npx vite-node benchmarks/object-store-quick.ts [--n=200]
 */
import { randomBytes } from "node:crypto";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { makeDatum, type Datum } from "../core/datum.js";
import { DEFAULT_MAX_CHAIN_DEPTH } from "../core/protocol.js";
import { gcsAdapter } from "../adapters/gcs/index.js";
import { s3Adapter, type ObjectStoreAdapter } from "../adapters/s3/index.js";
import { startGcsEmulator } from "../test/harness/gcs-emulator.js";
import { startS3 } from "../test/harness/s3.js";

const N = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 200);
const ROUNDS = 4;
const CHAIN = 10;
const content = randomBytes(1024);

type Op = (i: number) => Promise<unknown>;
interface Contender {
  put: Op;
  get: Op;
  list: Op;
  chain: Op;
}

async function measure(name: string, contenders: Record<string, Contender>, counts: Record<string, string>): Promise<void> {
  const samples: Record<string, Record<string, number[]>> = {};
  for (const who of Object.keys(contenders)) samples[who] = { put: [], get: [], list: [], chain: [] };
  const per = Math.ceil(N / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [who, c] of Object.entries(contenders)) {
      for (const op of ["put", "get", "list", "chain"] as const) {
        for (let i = 0; i < per; i++) {
          const t = performance.now();
          await c[op](round * per + i);
          (samples[who] as Record<string, number[]>)[op]?.push(performance.now() - t);
        }
      }
    }
  }
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] as number;
  console.log(`\n${name}: ${N} ops each, ms (median / p90)`);
  console.log(["op".padEnd(7), ...Object.keys(contenders).map((w) => w.padStart(16)), "dgent requests".padStart(30)].join(" "));
  for (const op of ["put", "get", "list", "chain"]) {
    const cells = Object.keys(contenders).map((w) => {
      const xs = (samples[w] as Record<string, number[]>)[op] as number[];
      return `${q(xs, 0.5).toFixed(2)} / ${q(xs, 0.9).toFixed(2)}`.padStart(16);
    });
    console.log([op.padEnd(7), ...cells, (counts[op] ?? "").padStart(30)].join(" "));
  }
}

/** A 10-deep chain and 20+ datums under `bench/`, for get, list and causalChain. */
async function seed(adapter: ObjectStoreAdapter): Promise<{ chainEnd: string; ids: string[] }> {
  let parent: string | null = null;
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const d: Datum = makeDatum({ id: `bench/seed-${i}`, content, causalParent: i >= 30 - CHAIN ? parent : null, createdAt: 1000 + i });
    await adapter.put(d);
    ids.push(d.id);
    if (i >= 30 - CHAIN) parent = d.id;
  }
  return { chainEnd: parent as string, ids };
}

async function s3(): Promise<void> {
  const server = await startS3();
  try {
    await server.createBucket("bench");
    const ns = `bench-${randomBytes(4).toString("hex")}`;
    const adapter = s3Adapter({ ...server.clientOptions, bucket: "bench", namespace: ns });
    await adapter.open();
    const raw = new S3Client({ ...server.clientOptions, maxAttempts: 1 });
    const { chainEnd, ids } = await seed(adapter);
    const rawPrefix = `raw-${ns}/`;
    for (const id of ids) await raw.send(new PutObjectCommand({ Bucket: "bench", Key: rawPrefix + id, Body: content }));
    const rawGet = (key: string) => raw.send(new GetObjectCommand({ Bucket: "bench", Key: key })).then((o) => o.Body?.transformToByteArray());

    const counts: Record<string, string> = {};
    const count = async (op: string, fn: () => Promise<unknown>) => {
      await server.resetStats();
      await fn();
      counts[op] = Object.entries((await server.stats()).byOp).map(([k, v]) => `${v} ${k}`).join(", ");
    };
    await count("put", () => adapter.put(makeDatum({ id: "bench/count", content })));
    await count("get", () => adapter.get(ids[0] as string));
    await count("list", () => adapter.list({ prefix: "bench/", after: -1, limit: 20 }));
    await count("chain", () => adapter.causalChain(chainEnd, DEFAULT_MAX_CHAIN_DEPTH));

    await measure("s3 (s3rver)", {
      "raw SDK": {
        put: (i) => raw.send(new PutObjectCommand({ Bucket: "bench", Key: `${rawPrefix}bench/p${i}`, Body: content, IfNoneMatch: "*" })),
        get: (i) => rawGet(rawPrefix + (ids[i % ids.length] as string)),
        list: async () => {
          const page = await raw.send(new ListObjectsV2Command({ Bucket: "bench", Prefix: `${rawPrefix}bench/seed`, MaxKeys: 20 }));
          await Promise.all((page.Contents ?? []).map((o) => rawGet(o.Key as string)));
        },
        chain: async () => {
          for (let i = 0; i < CHAIN; i++) await rawGet(rawPrefix + (ids[29 - i] as string));
        },
      },
      "dgent s3": {
        put: (i) => adapter.put(makeDatum({ id: `bench/p${i}`, content })),
        get: (i) => adapter.get(ids[i % ids.length] as string),
        list: () => adapter.list({ prefix: "bench/", after: -1, limit: 20 }),
        chain: () => adapter.causalChain(chainEnd, DEFAULT_MAX_CHAIN_DEPTH),
      },
    }, counts);
    raw.destroy();
    await adapter.close();
  } finally {
    await server.stop();
  }
}

async function gcs(): Promise<void> {
  const emulator = await startGcsEmulator();
  try {
    emulator.createBucket("bench");
    const ns = `bench-${randomBytes(4).toString("hex")}`;
    const adapter = gcsAdapter({ apiEndpoint: emulator.url, projectId: "bench", bucket: "bench", namespace: ns });
    await adapter.open();
    const bucket = new Storage({ apiEndpoint: emulator.url, projectId: "bench", retryOptions: { autoRetry: false } }).bucket("bench");
    const { chainEnd, ids } = await seed(adapter);
    const rawPrefix = `raw-${ns}/`;
    for (const id of ids) await bucket.file(rawPrefix + id).save(content, { resumable: false });
    const rawGet = (key: string) => bucket.file(key).download();

    const counts: Record<string, string> = {};
    const count = async (op: string, fn: () => Promise<unknown>) => {
      emulator.resetStats();
      await fn();
      counts[op] = Object.entries(emulator.stats().byOp).map(([k, v]) => `${v} ${k}`).join(", ");
    };
    await count("put", () => adapter.put(makeDatum({ id: "bench/count", content })));
    await count("get", () => adapter.get(ids[0] as string));
    await count("list", () => adapter.list({ prefix: "bench/", after: -1, limit: 20 }));
    await count("chain", () => adapter.causalChain(chainEnd, DEFAULT_MAX_CHAIN_DEPTH));

    await measure("gcs (emulator)", {
      "raw SDK": {
        put: (i) => bucket.file(`${rawPrefix}bench/p${i}`).save(content, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
        get: (i) => rawGet(rawPrefix + (ids[i % ids.length] as string)),
        list: async () => {
          const [files] = await bucket.getFiles({ prefix: `${rawPrefix}bench/seed`, maxResults: 20, autoPaginate: false });
          await Promise.all(files.map((f) => f.download()));
        },
        chain: async () => {
          for (let i = 0; i < CHAIN; i++) await rawGet(rawPrefix + (ids[29 - i] as string));
        },
      },
      "dgent gcs": {
        put: (i) => adapter.put(makeDatum({ id: `bench/p${i}`, content })),
        get: (i) => adapter.get(ids[i % ids.length] as string),
        list: () => adapter.list({ prefix: "bench/", after: -1, limit: 20 }),
        chain: () => adapter.causalChain(chainEnd, DEFAULT_MAX_CHAIN_DEPTH),
      },
    }, counts);
    await adapter.close();
  } finally {
    await emulator.stop();
  }
}

await s3();
await gcs();
