import type * as S3 from "@aws-sdk/client-s3";
import { dgentError } from "../../core/errors.js";
import type { HeadRead, ListPage, ObjectBackend, VersionedBody } from "../object-store/backend.js";
import { CONTENT_TYPE } from "../object-store/envelope.js";
import { mapLimit } from "../object-store/list.js";
import { importOptional } from "../../core/adapter-support.js";
import { classifyS3Error, s3Error, statusOf } from "./errors.js";
import { ADAPTER_NAME, type S3Config } from "./options.js";

type Sdk = typeof import("@aws-sdk/client-s3");

export const S3_PACKAGE = "@aws-sdk/client-s3";

/** Imports the SDK (a missing package is `DGENT_MISSING_DEPENDENCY`) and builds the backend. */
export async function connectS3(config: S3Config): Promise<ObjectBackend> {
  const sdk = await importOptional<Sdk>(S3_PACKAGE, ADAPTER_NAME);
  if (config.client) return new S3Backend(sdk, config.client as unknown as S3.S3Client, config, false);
  const client = new sdk.S3Client({
    ...(config.region ? { region: config.region } : config.endpoint ? { region: "us-east-1" } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.forcePathStyle === undefined ? {} : { forcePathStyle: config.forcePathStyle }),
    ...(config.credentials ? { credentials: { ...config.credentials } } : {}), // the SDK writes into it
    // dgent retries (with backoff, only what is retryable), so the SDK must not retry as well.
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: config.requestTimeoutMs,
      connectionTimeout: Math.min(config.requestTimeoutMs, 10_000),
      throwOnRequestTimeout: true, // otherwise a hung request only logs a warning
    },
  });
  return new S3Backend(sdk, client, config, true);
}

/** `ObjectBackend` on `@aws-sdk/client-s3`: create-only writes are `If-None-Match: *`, compare-and-set writes `If-Match` on the ETag. */
class S3Backend implements ObjectBackend {
  readonly location: string;
  readonly #sdk: Sdk;
  readonly #client: S3.S3Client;
  readonly #config: S3Config;
  readonly #ownsClient: boolean;
  readonly #bucket: string;

  constructor(sdk: Sdk, client: S3.S3Client, config: S3Config, ownsClient: boolean) {
    this.#sdk = sdk;
    this.#client = client;
    this.#config = config;
    this.#ownsClient = ownsClient;
    this.#bucket = config.bucket;
    this.location = `s3://${config.bucket}`;
  }

  async open(createBucket: boolean): Promise<void> {
    try {
      await this.#client.send(new this.#sdk.HeadBucketCommand({ Bucket: this.#bucket }));
      return;
    } catch (error) {
      if (classifyS3Error(error) !== "not-found") throw s3Error(error, `HeadBucket ${this.#bucket}`);
    }
    if (!createBucket) {
      throw dgentError("DGENT_BACKEND_ERROR", `the bucket ${this.location} does not exist; create it or pass createBucket: true`, {
        unit: ADAPTER_NAME,
        details: { bucket: this.#bucket },
      });
    }
    try {
      await this.#client.send(new this.#sdk.CreateBucketCommand({ Bucket: this.#bucket }));
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") {
        throw s3Error(error, `CreateBucket ${this.#bucket}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#ownsClient) this.#client.destroy();
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const out = await this.#client.send(new this.#sdk.GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      if (!out.Body) return new Uint8Array(0);
      return await out.Body.transformToByteArray();
    } catch (error) {
      if (classifyS3Error(error) === "not-found") return null;
      throw s3Error(error, `GetObject ${key}`);
    }
  }

  async create(key: string, body: Uint8Array): Promise<boolean> {
    if (body.byteLength > this.#config.multipartThreshold) return this.#createMultipart(key, body);
    try {
      await this.#client.send(
        new this.#sdk.PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: CONTENT_TYPE, IfNoneMatch: "*" }),
      );
      return true;
    } catch (error) {
      if (classifyS3Error(error) === "precondition") return false;
      throw s3Error(error, `PutObject (If-None-Match) ${key}`);
    }
  }

  /** A multipart upload whose completion carries `If-None-Match: *`; aborted on any failure. */
  async #createMultipart(key: string, body: Uint8Array): Promise<boolean> {
    const { Bucket, sdk } = { Bucket: this.#bucket, sdk: this.#sdk };
    let uploadId: string | undefined;
    try {
      const started = await this.#client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: CONTENT_TYPE }));
      uploadId = started.UploadId;
      const size = this.#config.partSize;
      const numbers = Array.from({ length: Math.ceil(body.byteLength / size) }, (_, i) => i + 1);
      const parts = await mapLimit(numbers, this.#config.partConcurrency, async (PartNumber) => {
        const Body = body.subarray((PartNumber - 1) * size, PartNumber * size);
        const out = await this.#client.send(new sdk.UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber, Body }));
        return { PartNumber, ETag: out.ETag };
      });
      await this.#client.send(
        new sdk.CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: "*" }),
      );
      return true;
    } catch (error) {
      if (uploadId !== undefined) {
        await this.#client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      }
      if (classifyS3Error(error) === "precondition") return false;
      throw s3Error(error, `multipart upload ${key}`);
    }
  }

  async read(key: string): Promise<VersionedBody | null> {
    try {
      const out = await this.#client.send(new this.#sdk.GetObjectCommand({ Bucket: this.#bucket, Key: key }));
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
      if (!out.ETag) {
        throw dgentError("DGENT_BACKEND_ERROR", `s3 GetObject ${key} answered without an ETag; compare-and-set needs one`, {
          unit: ADAPTER_NAME,
          details: { key },
        });
      }
      return { body, version: out.ETag };
    } catch (error) {
      if (classifyS3Error(error) === "not-found") return null;
      throw s3Error(error, `GetObject ${key}`);
    }
  }

  async write(key: string, body: Uint8Array, ifVersion: string | null): Promise<string | null> {
    const condition = ifVersion === null ? { IfNoneMatch: "*" } : { IfMatch: ifVersion };
    try {
      const out = await this.#client.send(
        new this.#sdk.PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: "application/json", ...condition }),
      );
      return out.ETag ?? "";
    } catch (error) {
      // 412: the ETag moved on (or the key exists, for a create); 404: If-Match on a key that is gone.
      const cls = classifyS3Error(error);
      if (cls === "precondition" || cls === "not-found") return null;
      throw s3Error(error, `PutObject (${ifVersion === null ? "If-None-Match: *" : `If-Match ${ifVersion}`}) ${key}`);
    }
  }

  async put(key: string, body: Uint8Array): Promise<string> {
    try {
      const out = await this.#client.send(new this.#sdk.PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body }));
      return out.ETag ?? "";
    } catch (error) {
      throw s3Error(error, `PutObject ${key}`);
    }
  }

  async delete(key: string, ifVersion?: string): Promise<boolean> {
    let version = ifVersion;
    if (version === undefined) {
      // S3 answers 204 whether or not the key existed: look first, then delete that version.
      try {
        const head = await this.#client.send(new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: key }));
        version = head.ETag;
      } catch (error) {
        if (classifyS3Error(error) === "not-found") return false;
        throw s3Error(error, `HeadObject ${key}`);
      }
    }
    try {
      await this.#client.send(
        new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: key, ...(version ? { IfMatch: version } : {}) }),
      );
      return true;
    } catch (error) {
      const cls = classifyS3Error(error);
      if (cls === "not-found" || cls === "precondition") return false;
      throw s3Error(error, `DeleteObject ${key}`);
    }
  }

  /** A `Range: bytes=0-(length-1)` GET; the size comes from `Content-Range`. */
  async readHead(key: string, length: number): Promise<HeadRead | null> {
    try {
      const out = await this.#client.send(new this.#sdk.GetObjectCommand({ Bucket: this.#bucket, Key: key, Range: `bytes=0-${length - 1}` }));
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
      const total = /\/(\d+)$/.exec(out.ContentRange ?? "");
      return { body, size: total ? Number(total[1]) : out.ContentRange === undefined ? body.byteLength : null };
    } catch (error) {
      if (classifyS3Error(error) === "not-found") return null;
      // 416: an empty object has no byte 0.
      if (statusOf(error) === 416) return { body: new Uint8Array(0), size: 0 };
      throw s3Error(error, `GetObject (Range) ${key}`);
    }
  }

  /** `DeleteObjects` of up to 1000 keys; S3 reports a missing key as deleted. */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    if (keys.length > 1000) throw new RangeError(`DeleteObjects takes at most 1000 keys, got ${keys.length}`);
    let out: S3.DeleteObjectsCommandOutput;
    try {
      out = await this.#client.send(
        new this.#sdk.DeleteObjectsCommand({ Bucket: this.#bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      );
    } catch (error) {
      throw s3Error(error, `DeleteObjects (${keys.length} keys) ${keys[0]}…`);
    }
    const failed = out.Errors ?? [];
    if (failed.length > 0) {
      const first = failed[0] as S3._Error;
      // Per-key errors carry S3 error codes: the same classes as a whole request's.
      const error = Object.assign(new Error(first.Message ?? first.Code ?? "DeleteObjects error"), { name: first.Code ?? "Error" });
      throw s3Error(error, `DeleteObjects: ${failed.length} of ${keys.length} keys not deleted, first ${first.Key ?? "?"}`);
    }
  }

  async list(prefix: string, cursor: string | null, max: number, startAfter?: string): Promise<ListPage> {
    try {
      const out = await this.#client.send(
        new this.#sdk.ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: prefix,
          MaxKeys: max,
          ...(cursor === null ? (startAfter === undefined ? {} : { StartAfter: startAfter }) : { ContinuationToken: cursor }),
        }),
      );
      const objects = (out.Contents ?? []).map((o) => ({
        key: o.Key as string,
        version: o.ETag ?? "",
        modifiedAt: o.LastModified?.getTime() ?? 0,
        size: o.Size ?? 0,
      }));
      return { objects, cursor: out.IsTruncated && out.NextContinuationToken ? out.NextContinuationToken : null };
    } catch (error) {
      throw s3Error(error, `ListObjectsV2 ${prefix}`);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#client.send(new this.#sdk.HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (error) {
      throw s3Error(error, `HeadBucket ${this.#bucket}`);
    }
  }
}
