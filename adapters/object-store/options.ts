import { dgentError } from "../../core/errors.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "../../core/paths.js";
import { namespaceRoot } from "./keys.js";
import type { RetryPolicy } from "./retry.js";

/** Options every object-store tier (s3, gcs) takes besides its service's own. */
export interface ObjectStoreOptions {
  /** The store's namespace; its objects live under `<prefix><namespace>/`. Default `"default"`. */
  namespace?: string;
  /** Key prefix in the bucket, before the namespace. Default `"dgent/"`; `""` for the bucket root. */
  prefix?: string;
  /**
   * How many `/`-levels of ids get their own time index (see README "Key layout"). Fixed per
   * namespace when it is first opened; later opens read it from the manifest. Default 3.
   */
  indexDepth?: number;
  /** Create the bucket on `open` when it does not exist. Default false. */
  createBucket?: boolean;
  /** Tries per request, the first included, on throttling, 5xx and network errors. Default 4. */
  maxAttempts?: number;
  /** Backoff ceiling of the first retry, doubled per retry, with full jitter. Default 100 ms. */
  retryBaseDelayMs?: number;
  /** Largest backoff ceiling. Default 5000 ms. */
  retryMaxDelayMs?: number;
  /** Requests `list`, `scan`, queries, `getMany` and one-by-one `deleteMany` run in parallel. Default 16. */
  concurrency?: number;
  /**
   * Index markers whose datum is gone (deleted, or never written by a writer that died) are
   * deleted by the `list` that meets them once they are older than this. Default 15 minutes.
   */
  repairAfterMs?: number;
}

export const DEFAULT_PREFIX = "dgent/";
export const DEFAULT_INDEX_DEPTH = 3;

/** JSON Schema properties of `ObjectStoreOptions`, merged into each tier's schema. */
export const COMMON_PROPERTIES = {
  namespace: { type: "string", minLength: 1, maxLength: 128 },
  prefix: { type: "string", maxLength: 512 },
  indexDepth: { type: "integer", minimum: 0, maximum: 16 },
  createBucket: { type: "boolean" },
  maxAttempts: { type: "integer", minimum: 1, maximum: 20 },
  retryBaseDelayMs: { type: "integer", minimum: 0, maximum: 60_000 },
  retryMaxDelayMs: { type: "integer", minimum: 0, maximum: 600_000 },
  concurrency: { type: "integer", minimum: 1, maximum: 256 },
  repairAfterMs: { type: "integer", minimum: 0 },
} as const;

/** `ObjectStoreOptions` after defaults. */
export interface ObjectStoreConfig {
  readonly root: string;
  /** Undefined: take the manifest's (or the default for a new namespace). */
  readonly indexDepth: number | undefined;
  readonly createBucket: boolean;
  readonly retry: RetryPolicy;
  readonly concurrency: number;
  readonly repairAfterMs: number;
}

export function resolveCommon(options: ObjectStoreOptions, unit: string): ObjectStoreConfig {
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  assertNamespace(namespace);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (prefix.startsWith("/") || prefix.includes("//")) {
    throw dgentError("DGENT_INVALID_OPTIONS", `the ${unit} prefix ${JSON.stringify(prefix)} must not start with "/" or contain "//"`, {
      unit,
    });
  }
  return {
    root: namespaceRoot(prefix, namespace),
    indexDepth: options.indexDepth,
    createBucket: options.createBucket ?? false,
    retry: {
      maxAttempts: options.maxAttempts ?? 4,
      baseDelayMs: options.retryBaseDelayMs ?? 100,
      maxDelayMs: options.retryMaxDelayMs ?? 5000,
    },
    concurrency: options.concurrency ?? 16,
    repairAfterMs: options.repairAfterMs ?? 15 * 60_000,
  };
}

/**
 * `s3://bucket`, `s3://bucket/key/prefix/`, `gs://bucket/…`: the bucket and, when the URL has a
 * path, the key prefix before the namespace (a trailing `/` is added).
 */
export function bucketFromUrl(url: string, namespace: string): { bucket: string; namespace: string; prefix?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(url)} is not a bucket URL; use ${url.split(":", 1)[0]}://bucket/optional/prefix/`);
  }
  const bucket = parsed.hostname;
  if (!bucket) throw dgentError("DGENT_INVALID_OPTIONS", `the URL ${JSON.stringify(url)} names no bucket`);
  const path = decodeURIComponent(parsed.pathname.replace(/^\/+/, ""));
  return { bucket, namespace, ...(path ? { prefix: path.endsWith("/") ? path : `${path}/` } : {}) };
}
