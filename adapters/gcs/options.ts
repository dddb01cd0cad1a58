import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { COMMON_PROPERTIES, resolveCommon, type ObjectStoreConfig, type ObjectStoreOptions } from "../object-store/options.js";

export const ADAPTER_NAME = "gcs";

/** Something that hands out buckets: a `Storage` from `@google-cloud/storage`. */
export interface GcsStorageLike {
  bucket(name: string): unknown;
}

export interface GcsOptions extends ObjectStoreOptions {
  /** The bucket. Required. */
  bucket: string;
  /** Default: from the credentials or the environment (the SDK's chain). */
  projectId?: string;
  /**
   * Another endpoint (an emulator), e.g. `"http://127.0.0.1:4443"`. The SDK then sends no
   * credentials unless `useAuthWithCustomEndpoint` is set.
   */
  apiEndpoint?: string;
  /** Send credentials to a custom `apiEndpoint` too. */
  useAuthWithCustomEndpoint?: boolean;
  /** A service-account key file; otherwise the SDK's default chain (ADC). */
  keyFilename?: string;
  /** An explicit service-account key. */
  credentials?: { client_email: string; private_key: string };
  /** Datums whose stored body exceeds this many bytes go up as resumable uploads. Default 8 MiB. */
  resumableThreshold?: number;
  /** Chunk size of resumable uploads (a multiple of 256 KiB); default: one request for the rest. */
  chunkSize?: number;
  /** Abort a request that has not finished after this long (then retried). Default 120 000 ms. */
  requestTimeoutMs?: number;
  /** A `Storage` you built yourself; used instead of making one. */
  storage?: GcsStorageLike;
}

export interface GcsConfig {
  readonly common: ObjectStoreConfig;
  readonly bucket: string;
  readonly projectId: string | undefined;
  readonly apiEndpoint: string | undefined;
  readonly useAuthWithCustomEndpoint: boolean | undefined;
  readonly keyFilename: string | undefined;
  readonly credentials: GcsOptions["credentials"];
  readonly resumableThreshold: number;
  readonly chunkSize: number | undefined;
  readonly requestTimeoutMs: number;
  readonly storage: GcsStorageLike | undefined;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  required: ["bucket"],
  properties: {
    ...COMMON_PROPERTIES,
    bucket: { type: "string", minLength: 3, maxLength: 222 },
    projectId: { type: "string", minLength: 1 },
    apiEndpoint: { type: "string", pattern: "^https?://" },
    useAuthWithCustomEndpoint: { type: "boolean" },
    keyFilename: { type: "string", minLength: 1 },
    credentials: {
      type: "object",
      required: ["client_email", "private_key"],
      properties: { client_email: { type: "string" }, private_key: { type: "string" } },
    },
    resumableThreshold: { type: "integer", minimum: 0 },
    chunkSize: { type: "integer", minimum: 256 * KiB, multipleOf: 256 * KiB },
    requestTimeoutMs: { type: "integer", minimum: 1 },
    storage: { type: "object" },
  },
};

export function resolveConfig(options: GcsOptions): GcsConfig {
  const storage = options.storage;
  if (storage !== undefined && typeof storage.bucket !== "function") {
    throw dgentError("DGENT_INVALID_OPTIONS", 'the gcs option "storage" must be a Storage (it has no bucket method)', {
      unit: ADAPTER_NAME,
    });
  }
  return {
    common: resolveCommon(options, ADAPTER_NAME),
    bucket: options.bucket,
    projectId: options.projectId,
    apiEndpoint: options.apiEndpoint,
    useAuthWithCustomEndpoint: options.useAuthWithCustomEndpoint,
    keyFilename: options.keyFilename,
    credentials: options.credentials,
    resumableThreshold: options.resumableThreshold ?? 8 * MiB,
    chunkSize: options.chunkSize,
    requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
    storage,
  };
}
