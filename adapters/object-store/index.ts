/**
 * The shared core of dgent's object-storage tiers (s3, gcs): key layout, time index, datum
 * envelope, manifest and retry. A tier for another object store implements `ObjectBackend`
 * (eight calls) and wraps it in `ObjectStoreAdapter`; see README.md.
 */
export { ObjectStoreAdapter, OBJECT_STORE_CAPABILITIES, type ObjectStoreTier } from "./adapter.js";
export type { ListedObject, ListPage, ObjectBackend } from "./backend.js";
export { CONTENT_TYPE, decodeEnvelope, encodeEnvelope } from "./envelope.js";
export {
  KeyLayout,
  LAYOUT_VERSION,
  MANIFEST_NAME,
  MAX_INLINE_ID_HEX,
  type Marker,
  indexedDirs,
  namespaceRoot,
  parseTimeKey,
  queryDir,
  sha256Hex,
  timeKey,
} from "./keys.js";
export { listNewestFirst, mapLimit, type ListContext, type ListResult } from "./list.js";
export { loadManifest, type Manifest } from "./manifest.js";
export { importOptional } from "./optional-import.js";
export {
  COMMON_PROPERTIES,
  DEFAULT_INDEX_DEPTH,
  DEFAULT_PREFIX,
  resolveCommon,
  type ObjectStoreConfig,
  type ObjectStoreOptions,
} from "./options.js";
export { withRetry, type RetryPolicy } from "./retry.js";
