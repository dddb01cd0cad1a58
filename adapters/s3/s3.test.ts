import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { RANKS } from "../ranks.js";
import { objectStoreCases } from "../../test/harness/object-store-cases.js";
import { s3Rig } from "../../test/harness/s3-rig.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { classifyS3Error, s3Adapter, s3Error, type ObjectStoreAdapter, type S3Options } from "./index.js";

const BUCKET = "dgent-s3-test";
let server: S3Server;
let raw: S3Client;

beforeAll(async () => {
  server = await startS3();
  await server.createBucket(BUCKET);
  raw = new S3Client({ ...server.clientOptions, maxAttempts: 1 });
});
afterAll(async () => {
  raw?.destroy();
  await server?.stop();
});

const rig = s3Rig(() => server, BUCKET);
afterAll(() => rig.close());

objectStoreCases(rig);

describe("s3: the tier", () => {
  it("is registered as 's3' with rank RANKS.s3 and validates its options eagerly", async () => {
    const adapter = (await defaultRegistry.createAdapter("s3", { ...server.clientOptions, bucket: BUCKET, namespace: "registry" })) as ObjectStoreAdapter;
    expect(adapter.name).toBe("s3");
    expect(adapter.rank).toBe(RANKS.s3);
    expect(adapter.capabilities).toEqual({ persistent: true, multiProcess: true, nativeCausalChain: false, batch: false, scan: true, evicts: false, refs: true, query: true, queryCost: "scan" });
    await adapter.open();
    await adapter.put(makeDatum({ id: "via-registry", content: "r" }));
    expect((await adapter.get("via-registry"))?.id).toBe("via-registry");
    await adapter.close();
    for (const bad of [{}, { bucket: "b" }, { bucket: BUCKET, endpoint: "ftp://x" }, { bucket: BUCKET, partSize: 1024 }, { bucket: BUCKET, namespace: "../up" }, { bucket: BUCKET, unknown: 1 }]) {
      expect(() => s3Adapter(bad as S3Options), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
  });

  it("uses a client passed in, and leaves it open on close", async () => {
    const client = new S3Client({ ...server.clientOptions });
    const adapter = s3Adapter({ bucket: BUCKET, namespace: `c-${randomBytes(4).toString("hex")}`, client });
    await adapter.open();
    await adapter.put(makeDatum({ id: "own-client", content: "c" }));
    await adapter.close();
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: adapter.root }));
    expect(listed.KeyCount).toBeGreaterThan(1);
    client.destroy();
  });

  it("a lost multipart race aborts its upload and answers DGENT_CONFLICT", async () => {
    const adapter = rig.make({ multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    await adapter.open();
    const content = randomBytes(6 * 1024 * 1024);
    await adapter.put(makeDatum({ id: "mp", content: Buffer.from("small winner") }));
    await server.resetStats();
    await expect(adapter.put(makeDatum({ id: "mp", content }))).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    const r = (await server.stats()).byOp;
    expect(r).toMatchObject({ CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1, AbortMultipartUpload: 1 });
    await adapter.close();
  });

  it("probe is true while the server answers and false once it is gone", async () => {
    const own = await startS3();
    await own.createBucket("dgent-probe");
    const adapter = s3Adapter({ ...own.clientOptions, bucket: "dgent-probe", maxAttempts: 1 });
    await adapter.open();
    expect(await adapter.probe()).toBe(true);
    await own.stop();
    expect(await adapter.probe()).toBe(false);
    await expect(adapter.get("x")).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    await adapter.close();
  });
});

describe("s3: the error map", () => {
  const sdkError = (name: string, status?: number, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}), ...extra });

  it("classifies every kind of SDK failure once", () => {
    const cases: Array<[unknown, string]> = [
      [sdkError("NoSuchKey", 404), "not-found"],
      [sdkError("NotFound", 404), "not-found"],
      [sdkError("NoSuchBucket", 404), "backend"],
      [sdkError("PreconditionFailed", 412), "precondition"],
      [sdkError("Unknown", 412), "precondition"],
      [sdkError("ConditionalRequestConflict", 409), "unavailable"],
      [sdkError("SlowDown", 503), "unavailable"],
      [sdkError("InternalError", 500), "unavailable"],
      [sdkError("Whatever", 502), "unavailable"],
      [sdkError("RequestTimeout", 400), "unavailable"],
      [sdkError("TimeoutError"), "unavailable"],
      [Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "unavailable"],
      [Object.assign(new Error("connect"), { code: "ECONNREFUSED" }), "unavailable"],
      [sdkError("AccessDenied", 403), "backend"],
      [sdkError("InvalidAccessKeyId", 403), "backend"],
      [sdkError("CredentialsProviderError"), "backend"],
      ["a string", "backend"],
      [null, "backend"],
    ];
    for (const [error, cls] of cases) expect(classifyS3Error(error), String((error as Error)?.name ?? error)).toBe(cls);
  });

  it("turns failures into coded errors with the action, status and a hint", () => {
    const denied = s3Error(sdkError("InvalidAccessKeyId", 403), "GetObject k");
    expect(denied).toMatchObject({ code: "DGENT_BACKEND_ERROR", unit: "s3", retryable: false, details: { status: 403, name: "InvalidAccessKeyId" } });
    expect(denied.message).toMatch(/GetObject k failed with HTTP 403.*check the credentials/);
    const busy = s3Error(sdkError("SlowDown", 503), "PutObject k");
    expect(busy).toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    expect(s3Error(busy, "again")).toBe(busy);
  });

  it("wrong credentials against the real server are DGENT_BACKEND_ERROR with a hint, not retried", async () => {
    const adapter = s3Adapter({ ...server.clientOptions, credentials: { accessKeyId: "WRONG", secretAccessKey: "x" }, bucket: BUCKET });
    await server.resetStats();
    const err = await adapter.open().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DGENT_BACKEND_ERROR", unit: "s3" });
    expect((err as Error).message).toMatch(/HTTP 403.*credentials/);
    expect((await server.stats()).total).toBe(1);
  });
});

describe("s3: the test server behaves like S3 where the law depends on it", () => {
  it("If-None-Match: * on an existing key is 412, and ten racing creates leave one winner", async () => {
    const Key = `harness/${randomBytes(4).toString("hex")}`;
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `w${i}`, IfNoneMatch: "*" }))),
    );
    const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(classifyS3Error(r.reason)).toBe("precondition");
    const got = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    expect(await got.Body?.transformToString()).toBe(`w${won[0]}`);
  });

  it("a stale If-Match is 412 on PUT, DELETE and GET; a missing key is 404", async () => {
    const Key = `harness/${randomBytes(4).toString("hex")}`;
    const first = await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v1" }));
    await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v2" }));
    for (const send of [
      () => raw.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: "v3", IfMatch: first.ETag })),
      () => raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: first.ETag })),
      () => raw.send(new GetObjectCommand({ Bucket: BUCKET, Key, IfMatch: first.ETag })),
    ]) {
      expect(classifyS3Error(await send().catch((e: unknown) => e))).toBe("precondition");
    }
    const head = await raw.send(new HeadObjectCommand({ Bucket: BUCKET, Key }));
    await raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: head.ETag }));
    const gone = await raw.send(new DeleteObjectCommand({ Bucket: BUCKET, Key, IfMatch: head.ETag })).catch((e: unknown) => e);
    expect(classifyS3Error(gone)).toBe("not-found");
  });

  it("stream uploads (aws-chunked with a checksum trailer) are stored without their framing", async () => {
    const Key = `harness/${randomBytes(4).toString("hex")}`;
    const body = randomBytes(200_000);
    await raw.send(
      new PutObjectCommand({ Bucket: BUCKET, Key, Body: Readable.from([body.subarray(0, 70_000), body.subarray(70_000)]), ContentLength: body.length }),
    );
    const got = await raw.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    expect(got.ContentEncoding).toBeUndefined();
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(body)).toBe(true);
  });

  it("lists page with continuation tokens (s3rver needs the legacy OpenSSL provider for them)", async () => {
    const Prefix = `page/${randomBytes(4).toString("hex")}/`;
    await server.bulk(BUCKET, Array.from({ length: 25 }, (_, i) => ({ key: `${Prefix}${String(i).padStart(2, "0")}`, body: Buffer.from("p") })));
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await raw.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix, MaxKeys: 10, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key as string));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => `${Prefix}${String(i).padStart(2, "0")}`));
  });
});
