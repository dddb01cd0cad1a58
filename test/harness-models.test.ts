import { randomBytes } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGcsEmulator, type GcsEmulator } from "./harness/gcs-emulator.js";
import { startS3, type S3Server } from "./harness/s3.js";

// The S3 conditional-write layer (test/harness/s3rver-process.cjs) and the GCS emulator
// (test/harness/gcs-emulator.ts) are this project's models of those services: the object-store
// tiers are only as well tested as the models are faithful. Each case below pins one behaviour
// the tiers rely on (DESIGN.md §8) to what the providers document, checked at the HTTP status
// the SDK reports, so a model that drifts from the documentation fails here by name.
//
// S3: PutObject / CompleteMultipartUpload / DeleteObject / GetObject API reference, headers
// If-None-Match and If-Match, and the User Guide, "How to prevent object overwrites with
// conditional writes" (docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
// GCS: "Request preconditions" (cloud.google.com/storage/docs/request-preconditions) and
// "Object versioning and generation numbers" (cloud.google.com/storage/docs/metadata#generation-number).

const BUCKET = "dgent-models";

/** The HTTP status an SDK error reports (AWS: $metadata.httpStatusCode; GCS: code or response.status). */
function statusOf(error: unknown): number | undefined {
  const e = error as { $metadata?: { httpStatusCode?: number }; code?: unknown; response?: { status?: number } };
  if (typeof e?.$metadata?.httpStatusCode === "number") return e.$metadata.httpStatusCode;
  if (typeof e?.code === "number") return e.code;
  return e?.response?.status;
}

async function rejection(promise: Promise<unknown>): Promise<{ status: number | undefined; name: string | undefined }> {
  try {
    await promise;
  } catch (error) {
    return { status: statusOf(error), name: (error as { name?: string }).name };
  }
  throw new Error("expected the call to be refused, and it succeeded");
}

describe("the S3 model: s3rver behind the conditional-write layer", () => {
  let server: S3Server;
  let s3: S3Client;
  const key = () => `models/${randomBytes(6).toString("hex")}`;
  const body = async (Key: string) => (await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body?.transformToString()) ?? "";

  beforeAll(async () => {
    server = await startS3();
    await server.createBucket(BUCKET);
    s3 = new S3Client({ ...server.clientOptions, maxAttempts: 1 });
  });
  afterAll(async () => {
    s3?.destroy();
    await server?.stop();
  });

  it("PutObject with If-None-Match: * creates a missing key and is 412 PreconditionFailed on an existing one, leaving it as it was", async () => {
    const Key = key();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "first", IfNoneMatch: "*" }));
    expect(await rejection(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "second", IfNoneMatch: "*" })))).toEqual({
      status: 412,
      name: "PreconditionFailed",
    });
    expect(await body(Key)).toBe("first");
  });

  it("CompleteMultipartUpload with If-None-Match: * is 412 on an existing key and completes on a missing one", async () => {
    const upload = async (Key: string, text: string) => {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
      const part = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 1, Body: text }));
      return s3.send(
        new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }, IfNoneMatch: "*" }),
      );
    };
    const Key = key();
    await upload(Key, "multipart first");
    expect(await body(Key)).toBe("multipart first");
    expect((await rejection(upload(Key, "multipart second"))).status).toBe(412);
    expect(await body(Key)).toBe("multipart first");
  });

  it("If-Match: the current ETag proceeds, a stale one is 412 (PUT, DELETE, GET), a missing key is 404", async () => {
    const Key = key();
    const first = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v1" }));
    const second = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v2", IfMatch: first.ETag }));
    expect(await body(Key)).toBe("v2");
    expect((await rejection(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v3", IfMatch: first.ETag })))).status).toBe(412);
    expect((await rejection(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key, IfMatch: first.ETag })))).status).toBe(412);
    expect((await rejection(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: first.ETag })))).status).toBe(412);
    expect(await body(Key)).toBe("v2");
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: second.ETag }));
    expect((await rejection(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key })))).status).toBe(404);
    expect((await rejection(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v4", IfMatch: second.ETag })))).status).toBe(404);
  });

  it("the checks come from the layer: with them switched off, s3rver alone overwrites despite If-None-Match: *", async () => {
    const Key = key();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "first" }));
    await server.conditionals(false);
    try {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "second", IfNoneMatch: "*" }));
    } finally {
      await server.conditionals(true);
    }
    expect(await body(Key)).toBe("second");
    expect((await rejection(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "third", IfNoneMatch: "*" })))).status).toBe(412);
  });
});

describe("the GCS model: the emulator of the JSON API", () => {
  let emulator: GcsEmulator;
  let storage: Storage;
  const name = () => `models/${randomBytes(6).toString("hex")}`;
  const file = (n: string) => storage.bucket(BUCKET).file(n);
  const text = async (n: string) => (await file(n).download())[0].toString();

  beforeAll(async () => {
    emulator = await startGcsEmulator();
    emulator.createBucket(BUCKET);
    storage = new Storage({ apiEndpoint: emulator.url, projectId: "test", retryOptions: { autoRetry: false } });
  });
  afterAll(() => emulator?.stop());

  it("ifGenerationMatch=0 creates a missing object and is 412 on an existing one, for multipart and resumable uploads alike", async () => {
    for (const resumable of [false, true]) {
      const n = name();
      await file(n).save("first", { resumable, preconditionOpts: { ifGenerationMatch: 0 } });
      expect((await rejection(file(n).save("second", { resumable, preconditionOpts: { ifGenerationMatch: 0 } }))).status, `resumable: ${resumable}`).toBe(412);
      expect(await text(n)).toBe("first");
    }
  });

  it("the same at the HTTP level: a media upload with ifGenerationMatch=0 answers 200, then 412", async () => {
    const n = name();
    const url = `${emulator.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(n)}&ifGenerationMatch=0`;
    expect((await fetch(url, { method: "POST", body: "first" })).status).toBe(200);
    const second = await fetch(url, { method: "POST", body: "second" });
    expect(second.status).toBe(412);
    expect(await text(n)).toBe("first");
  });

  it("every overwrite makes a new generation; ifGenerationMatch with a stale one is 412 on delete, the current one deletes, a missing object is 404", async () => {
    const n = name();
    await file(n).save("v1", { resumable: false });
    const [before] = await file(n).getMetadata();
    await file(n).save("v2", { resumable: false });
    const [after] = await file(n).getMetadata();
    expect(BigInt(String(after.generation))).toBeGreaterThan(BigInt(String(before.generation)));
    expect((await rejection(file(n).delete({ ifGenerationMatch: Number(before.generation) }))).status).toBe(412);
    expect(await text(n)).toBe("v2");
    await file(n).delete({ ifGenerationMatch: Number(after.generation) });
    expect((await rejection(file(n).download())).status).toBe(404);
    expect((await rejection(file(n).delete())).status).toBe(404);
  });

  it("a metadata update bumps the metageneration, not the generation; a stale ifMetagenerationMatch is 412", async () => {
    const n = name();
    await file(n).save("data", { resumable: false });
    const [before] = await file(n).getMetadata();
    const [after] = await file(n).setMetadata({ metadata: { k: "v" } });
    expect(after.generation).toBe(before.generation);
    expect(Number(after.metageneration)).toBe(Number(before.metageneration) + 1);
    const stale = await rejection(file(n).setMetadata({ metadata: { k: "w" } }, { ifMetagenerationMatch: Number(before.metageneration) }));
    expect(stale.status).toBe(412);
    expect((await file(n).getMetadata())[0].metadata).toEqual({ k: "v" });
  });
});
