import { randomBytes } from "node:crypto";
import { ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { expect } from "vitest";
import { s3Adapter, type S3Options } from "../../adapters/s3/index.js";
import type { Rig } from "./object-store-cases.js";
import type { S3Server } from "./s3.js";

const CODES: Record<number, string> = { 403: "AccessDenied", 429: "SlowDown", 500: "InternalError", 503: "SlowDown" };

/** The shared object-store cases' view of an s3rver (see object-store-cases.ts). */
export function s3Rig(server: () => S3Server, bucket: string): Rig & { close(): void } {
  let client: S3Client | null = null;
  const raw = () => (client ??= new S3Client({ ...server().clientOptions, maxAttempts: 1 }));
  return {
    name: "s3",
    bucket,
    make: (options = {}) =>
      s3Adapter({
        ...server().clientOptions,
        bucket,
        namespace: `t-${randomBytes(6).toString("hex")}`,
        retryBaseDelayMs: 5,
        ...options,
      } as S3Options),
    requests: async () => (await server().stats()).byOp,
    resetRequests: () => server().resetStats(),
    ops: { list: "ListObjects", read: "GetObject", write: "PutObject", delete: ["HeadObject", "DeleteObject"] },
    fault: (status, count, op) => server().fault({ status, count, ...(op ? { op } : {}), ...(CODES[status] ? { code: CODES[status] } : {}) }),
    async bulk(objects) {
      for (let i = 0; i < objects.length; i += 5000) await server().bulk(bucket, objects.slice(i, i + 5000));
    },
    async rawPut(key, body) {
      await raw().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async rawKeys(prefix) {
      const out = await raw().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (out.Contents ?? []).map((o) => o.Key as string);
    },
    expectBigUpload(r) {
      // 20 MB in 8 MiB parts: three parts, completed with If-None-Match.
      expect(r).toMatchObject({ CreateMultipartUpload: 1, UploadPart: 3, CompleteMultipartUpload: 1 });
    },
    enforcePreconditions: (enforced) => server().conditionals(enforced),
    deadEndpoint: { endpoint: "http://127.0.0.1:9" },
    close() {
      client?.destroy();
      client = null;
    },
  };
}
