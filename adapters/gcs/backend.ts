import type * as Gcs from "@google-cloud/storage";
import { dgentError } from "../../core/errors.js";
import type { HeadRead, ListPage, ObjectBackend, VersionedBody } from "../object-store/backend.js";
import { CONTENT_TYPE } from "../object-store/envelope.js";
import { importOptional } from "../../core/adapter-support.js";
import { classifyGcsError, gcsError } from "./errors.js";
import { ADAPTER_NAME, type GcsConfig } from "./options.js";

type Sdk = typeof import("@google-cloud/storage");

export const GCS_PACKAGE = "@google-cloud/storage";

/** Imports the SDK (a missing package is `DGENT_MISSING_DEPENDENCY`) and builds the backend. */
export async function connectGcs(config: GcsConfig): Promise<ObjectBackend> {
  const sdk = await importOptional<Sdk>(GCS_PACKAGE, ADAPTER_NAME);
  const storage =
    (config.storage as Gcs.Storage | undefined) ??
    new sdk.Storage({
      ...(config.apiEndpoint ? { apiEndpoint: config.apiEndpoint } : {}),
      ...(config.useAuthWithCustomEndpoint === undefined ? {} : { useAuthWithCustomEndpoint: config.useAuthWithCustomEndpoint }),
      ...(config.projectId ? { projectId: config.projectId } : {}),
      ...(config.keyFilename ? { keyFilename: config.keyFilename } : {}),
      ...(config.credentials ? { credentials: { ...config.credentials } } : {}),
      timeout: config.requestTimeoutMs,
      // dgent retries (with backoff, only what is retryable), so the SDK must not retry as well.
      retryOptions: { autoRetry: false, maxRetries: 0 },
    });
  return new GcsBackend(storage.bucket(config.bucket), config);
}

/** `ObjectBackend` on `@google-cloud/storage`: create-only writes are `ifGenerationMatch: 0`, compare-and-set writes `ifGenerationMatch: <generation>`. */
class GcsBackend implements ObjectBackend {
  readonly location: string;
  readonly #bucket: Gcs.Bucket;
  readonly #config: GcsConfig;

  constructor(bucket: Gcs.Bucket, config: GcsConfig) {
    this.#bucket = bucket;
    this.#config = config;
    this.location = `gs://${config.bucket}`;
  }

  async open(createBucket: boolean): Promise<void> {
    let exists: boolean;
    try {
      [exists] = await this.#bucket.exists();
    } catch (error) {
      throw gcsError(error, `bucket exists ${this.#config.bucket}`);
    }
    if (exists) return;
    if (!createBucket) {
      throw dgentError("DGENT_BACKEND_ERROR", `the bucket ${this.location} does not exist; create it or pass createBucket: true`, {
        unit: ADAPTER_NAME,
        details: { bucket: this.#config.bucket },
      });
    }
    try {
      await this.#bucket.create();
    } catch (error) {
      if ((error as { code?: unknown }).code !== 409) throw gcsError(error, `bucket create ${this.#config.bucket}`);
    }
  }

  async close(): Promise<void> {
    // The SDK holds no connections of its own beyond the shared HTTP agent.
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const [data] = await this.#bucket.file(key).download();
      return data;
    } catch (error) {
      if (classifyGcsError(error) === "not-found") return null;
      throw gcsError(error, `download ${key}`);
    }
  }

  async create(key: string, body: Uint8Array): Promise<boolean> {
    const resumable = body.byteLength > this.#config.resumableThreshold;
    try {
      await this.#bucket.file(key).save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), {
        resumable,
        ...(resumable && this.#config.chunkSize ? { chunkSize: this.#config.chunkSize } : {}),
        contentType: CONTENT_TYPE,
        metadata: { contentType: CONTENT_TYPE },
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      return true;
    } catch (error) {
      // A 412 arrives as ApiError (multipart), GaxiosError (resumable start) or {code} (resumable end).
      if (classifyGcsError(error) === "precondition") return false;
      throw gcsError(error, `${resumable ? "resumable" : "multipart"} upload (ifGenerationMatch=0) ${key}`);
    }
  }

  /** One download; the generation comes from its `x-goog-generation` header. */
  async read(key: string): Promise<VersionedBody | null> {
    try {
      return await new Promise<VersionedBody>((resolve, reject) => {
        let generation: unknown;
        const chunks: Buffer[] = [];
        this.#bucket
          .file(key)
          .createReadStream()
          .on("response", (res: { headers?: Record<string, unknown> }) => {
            generation = res.headers?.["x-goog-generation"];
          })
          .on("data", (chunk: Buffer) => chunks.push(chunk))
          .on("error", reject)
          .on("end", () => {
            if (typeof generation !== "string" || generation === "") {
              reject(dgentError("DGENT_BACKEND_ERROR", `gcs download ${key} answered without x-goog-generation; compare-and-set needs it`, {
                unit: ADAPTER_NAME,
                details: { key },
              }));
            } else {
              resolve({ body: Buffer.concat(chunks), version: generation });
            }
          });
      });
    } catch (error) {
      if (classifyGcsError(error) === "not-found") return null;
      throw gcsError(error, `download ${key}`);
    }
  }

  async write(key: string, body: Uint8Array, ifVersion: string | null): Promise<string | null> {
    const file = this.#bucket.file(key);
    try {
      await file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), {
        resumable: false,
        contentType: "application/json",
        preconditionOpts: { ifGenerationMatch: ifVersion ?? 0 },
      });
      return String(file.metadata.generation ?? "");
    } catch (error) {
      // 412: the generation moved on (or the object exists, for ifGenerationMatch=0), or it is gone.
      const cls = classifyGcsError(error);
      if (cls === "precondition" || cls === "not-found") return null;
      throw gcsError(error, `upload (ifGenerationMatch=${ifVersion ?? 0}) ${key}`);
    }
  }

  async put(key: string, body: Uint8Array): Promise<string> {
    const file = this.#bucket.file(key);
    try {
      await file.save(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { resumable: false });
      return String(file.metadata.generation ?? "");
    } catch (error) {
      throw gcsError(error, `upload ${key}`);
    }
  }

  async delete(key: string, ifVersion?: string): Promise<boolean> {
    try {
      await this.#bucket.file(key).delete(ifVersion ? { ifGenerationMatch: ifVersion } : {});
      return true;
    } catch (error) {
      const cls = classifyGcsError(error);
      if (cls === "not-found" || cls === "precondition") return false;
      throw gcsError(error, `delete ${key}`);
    }
  }

  /** A ranged download of bytes 0…length−1; the size comes from `Content-Range`. */
  async readHead(key: string, length: number): Promise<HeadRead | null> {
    try {
      return await new Promise<HeadRead>((resolve, reject) => {
        let size: number | null = null;
        const chunks: Buffer[] = [];
        this.#bucket
          .file(key)
          .createReadStream({ start: 0, end: length - 1 })
          .on("response", (res: { headers?: Record<string, unknown> }) => {
            const range = /\/(\d+)$/.exec(String(res.headers?.["content-range"] ?? ""));
            const stored = Number(res.headers?.["x-goog-stored-content-length"]);
            size = range ? Number(range[1]) : Number.isSafeInteger(stored) ? stored : null;
          })
          .on("data", (chunk: Buffer) => chunks.push(chunk))
          .on("error", reject)
          .on("end", () => resolve({ body: Buffer.concat(chunks), size }));
      });
    } catch (error) {
      if (classifyGcsError(error) === "not-found") return null;
      throw gcsError(error, `download (range 0-${length - 1}) ${key}`);
    }
  }

  async list(prefix: string, cursor: string | null, max: number, startAfter?: string): Promise<ListPage> {
    try {
      const [files, next] = await this.#bucket.getFiles({
        prefix,
        maxResults: max,
        autoPaginate: false,
        // startOffset is inclusive: the caller drops the key equal to startAfter.
        ...(cursor === null ? {} : { pageToken: cursor }),
        ...(startAfter === undefined ? {} : { startOffset: startAfter }),
      });
      const objects = files.map((f) => ({
        key: f.name,
        version: String(f.metadata.generation ?? ""),
        modifiedAt: Date.parse(String(f.metadata.updated ?? "")) || 0,
        size: Number(f.metadata.size ?? 0),
      }));
      const token = (next as { pageToken?: string } | null | undefined)?.pageToken;
      return { objects, cursor: token ? token : null };
    } catch (error) {
      throw gcsError(error, `list ${prefix}`);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#bucket.getMetadata();
    } catch (error) {
      throw gcsError(error, `bucket get ${this.#config.bucket}`);
    }
  }
}
