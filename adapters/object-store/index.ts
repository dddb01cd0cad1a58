/**
 * The shared core of dgent's object-storage tiers (s3, gcs): key layout, time index, datum
 * envelope, manifest, retry and queries. A tier for another object store implements
 * `ObjectBackend` (eight calls, and optional ones for refs and cheaper queries) and wraps it in
 * `ObjectStoreAdapter`; see README.md.
 */
export { ObjectStoreAdapter, OBJECT_STORE_CAPABILITIES, type ObjectStoreTier } from "./adapter.js";
export type { HeadRead, ListedObject, ListPage, ObjectBackend, VersionedBody } from "./backend.js";
export { ObjectRefs, REF_LAYOUT_VERSION, refKey, refListingPrefix, refsPrefix, type RefsContext } from "./refs.js";
export { CONTENT_TYPE, decodeEnvelope, decodeHead, encodeEnvelope, ENVELOPE_PROBE_BYTES, type EnvelopeHead } from "./envelope.js";
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
export { importOptional } from "../../core/adapter-support.js";
export {
  COMMON_PROPERTIES,
  DEFAULT_INDEX_DEPTH,
  DEFAULT_PREFIX,
  resolveCommon,
  type ObjectStoreConfig,
  type ObjectStoreOptions,
} from "./options.js";
export { withRetry, type RetryPolicy } from "./retry.js";
