import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { COMMON_PROPERTIES, resolveCommon, type ObjectStoreConfig, type ObjectStoreOptions } from "../object-store/options.js";

export const ADAPTER_NAME = "s3";

/** Something that sends S3 commands: an `S3Client` from `@aws-sdk/client-s3`. */
export interface S3ClientLike {
  send(command: never): Promise<unknown>;
  destroy(): void;
}

export interface S3Options extends ObjectStoreOptions {
  /** The bucket. Required. */
  bucket: string;
  /** Default: the SDK's chain (`AWS_REGION`, profile), else `"us-east-1"`. */
  region?: string;
  /** An S3-compatible endpoint (MinIO, R2, s3rver…), e.g. `"http://127.0.0.1:9000"`. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`); most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Explicit credentials; otherwise the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Datums whose stored body exceeds this many bytes go up as multipart uploads. Default 16 MiB. */
  multipartThreshold?: number;
  /** Part size of multipart uploads (≥ 5 MiB, S3's minimum). Default 8 MiB. */
  partSize?: number;
  /** Parts uploaded at once. Default 4. */
  partConcurrency?: number;
  /** Abort a request that has not finished after this long (then retried). Default 120 000 ms. */
  requestTimeoutMs?: number;
  /** A client you built yourself (custom middleware, credentials…); used instead of making one. */
  client?: S3ClientLike;
}

export interface S3Config {
  readonly common: ObjectStoreConfig;
  readonly bucket: string;
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  readonly forcePathStyle: boolean | undefined;
  readonly credentials: S3Options["credentials"];
  readonly multipartThreshold: number;
  readonly partSize: number;
  readonly partConcurrency: number;
  readonly requestTimeoutMs: number;
  readonly client: S3ClientLike | undefined;
}

const MiB = 1024 * 1024;

export const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  required: ["bucket"],
  properties: {
    ...COMMON_PROPERTIES,
    bucket: { type: "string", minLength: 3, maxLength: 255 },
    region: { type: "string", minLength: 1 },
    endpoint: { type: "string", pattern: "^https?://" },
    forcePathStyle: { type: "boolean" },
    credentials: {
      type: "object",
      additionalProperties: false,
      required: ["accessKeyId", "secretAccessKey"],
      properties: {
        accessKeyId: { type: "string", minLength: 1 },
        secretAccessKey: { type: "string", minLength: 1 },
        sessionToken: { type: "string" },
      },
    },
    multipartThreshold: { type: "integer", minimum: 5 * MiB },
    partSize: { type: "integer", minimum: 5 * MiB, maximum: 5 * 1024 * MiB },
    partConcurrency: { type: "integer", minimum: 1, maximum: 64 },
    requestTimeoutMs: { type: "integer", minimum: 1 },
    client: { type: "object" },
  },
};

export function resolveConfig(options: S3Options): S3Config {
  const client = options.client;
  if (client !== undefined && typeof client.send !== "function") {
    throw dgentError("DGENT_INVALID_OPTIONS", 'the s3 option "client" must be an S3Client (it has no send method)', {
      unit: ADAPTER_NAME,
    });
  }
  return {
    common: resolveCommon(options, ADAPTER_NAME),
    bucket: options.bucket,
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    multipartThreshold: options.multipartThreshold ?? 16 * MiB,
    partSize: options.partSize ?? 8 * MiB,
    partConcurrency: options.partConcurrency ?? 4,
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
    client,
  };
}
