import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { makeDatum, type Adapter } from "../core/index.js";
import { expectCode } from "../testing/index.js";
import { startGcsEmulator, type GcsEmulator } from "../test/harness/gcs-emulator.js";
import { startS3, S3RVER_CREDENTIALS, type S3Server } from "../test/harness/s3.js";
import { backup, restore, verifyBackup, type BucketOptions } from "./index.js";

// Archives in buckets: one object per chunk under <prefix><backupId>/, the manifest last. Real
// services: s3rver and the harness's GCS emulator.

let s3: S3Server;
let gcs: GcsEmulator;
const BUCKET = "dgent-backups";

beforeAll(async () => {
  [s3, gcs] = await Promise.all([startS3(), startGcsEmulator()]);
  await s3.createBucket(BUCKET);
  gcs.createBucket(BUCKET);
});
afterAll(async () => {
  await Promise.all([s3?.stop(), gcs?.stop()]);
});

async function filledSource(n: number, prefix: string): Promise<Adapter> {
  const source = memoryAdapter();
  await source.open();
  for (let i = 0; i < n; i++) await source.put(makeDatum({ id: `${prefix}/${i}`, content: `value ${i} `.repeat(40), createdAt: 1_000 + i }));
  return source;
}

const cases: Array<{ name: string; url: () => string; bucket: () => BucketOptions; corrupt: (key: string) => Promise<void>; keys: (prefix: string) => Promise<string[]> }> = [
  {
    name: "s3",
    url: () => `s3://${BUCKET}/nightly/?endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true&region=us-east-1`,
    bucket: () => ({ s3: { credentials: { ...S3RVER_CREDENTIALS } } }),
    async corrupt(key) {
      // Replace the object with a shorter body through the service itself.
      const { S3Client, PutObjectCommand } = await import("@aws-sdk/client-s3");
      const client = new S3Client({ ...s3.clientOptions, maxAttempts: 1 });
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from("short") }));
      client.destroy();
    },
    async keys(prefix) {
      const { S3Client, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
      const client = new S3Client({ ...s3.clientOptions, maxAttempts: 1 });
      const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
      client.destroy();
      return (out.Contents ?? []).map((o) => o.Key as string);
    },
  },
  {
    name: "gcs",
    url: () => `gs://${BUCKET}/nightly/?apiEndpoint=${encodeURIComponent(gcs.url)}&projectId=test`,
    bucket: () => ({}),
    async corrupt(key) {
      const body = Buffer.from(gcs.getObject(BUCKET, key)?.data ?? Buffer.alloc(0));
      body[10] = (body[10] as number) ^ 0xff;
      gcs.putObject(BUCKET, key, body);
    },
    keys: async (prefix) => gcs.names(BUCKET, prefix),
  },
];

describe.each(cases)("backups in $name", (c) => {
  it("a full backup and an increment upload, verify and restore to the recorded digest; a damaged chunk object is named", async () => {
    const source = await filledSource(120, c.name);
    const first = await backup({ from: source, to: c.url(), bucket: c.bucket(), chunkBytes: 8192, now: () => 10_000 });
    await source.put(makeDatum({ id: `${c.name}/new`, content: "added later", createdAt: 15_000 }));
    await source.delete(`${c.name}/0`);
    const second = await backup({ from: source, to: c.url(), bucket: c.bucket(), base: "latest", now: () => 20_000 });
    expect(second).toMatchObject({ kind: "incremental", datums: 1, deletes: 1, state: 120 });
    const keys = await c.keys(`nightly/${second.backupId}/`);
    expect(keys).toContain(`nightly/${second.backupId}/manifest.json`);

    const v = await verifyBackup({ from: c.url(), bucket: c.bucket() });
    expect(v).toMatchObject({ deep: true, state: 120, stateDigest: second.stateDigest });
    expect(v.archives.map((a) => a.backupId)).toEqual([first.backupId, second.backupId]);

    const target = memoryAdapter();
    await target.open();
    const r = await restore({ from: c.url(), to: target, bucket: c.bucket(), asOf: 10_000, checkpointPath: `/tmp/dgent-bucket-${c.name}-${process.pid}.json` });
    expect(r).toMatchObject({ verified: true, state: 120, written: 120, stateDigest: first.stateDigest });
    expect(await target.get(`${c.name}/0`)).not.toBeNull();
    await target.close();

    await c.corrupt(`nightly/${first.backupId}/datums-000002`);
    const e = await expectCode(restore({ from: c.url(), to: memoryAdapter(), bucket: c.bucket() }), c.name === "s3" ? "DGENT_BACKUP_TRUNCATED" : "DGENT_BACKUP_CORRUPT");
    expect(e.details?.chunk).toBe("datums-000002");
    await source.close();
  });
});
