import { RANKS } from "../ranks.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { ObjectStoreAdapter } from "../object-store/adapter.js";
import { bucketFromUrl } from "../object-store/options.js";
import { connectGcs } from "./backend.js";
import { ADAPTER_NAME, OPTIONS_SCHEMA, resolveConfig, type GcsOptions } from "./options.js";

export { ADAPTER_NAME, type GcsOptions, type GcsStorageLike } from "./options.js";
export { GCS_PACKAGE } from "./backend.js";
export { classifyGcsError, gcsError, statusOf, type GcsErrorClass } from "./errors.js";
export { ObjectStoreAdapter } from "../object-store/adapter.js";

/** The gcs tier's definition: registry key `"gcs"`, rank `RANKS.gcs`. */
export const gcs = defineAdapter<GcsOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.gcs,
  urlSchemes: ["gs", "gcs"],
  // gs://bucket/key/prefix/ → the bucket, and the key prefix before the namespace.
  fromUrl: (url, context) => bucketFromUrl(url, context.namespace),
  description: "Google Cloud Storage: create-only objects (ifGenerationMatch=0) and a time index for list.",
  optionsSchema: OPTIONS_SCHEMA,
  create: (options) => {
    const config = resolveConfig(options);
    return new ObjectStoreAdapter({ name: ADAPTER_NAME, rank: RANKS.gcs, config: config.common, refs: true, connect: () => connectGcs(config) });
  },
});

/**
 * A GCS tier. `gcsAdapter({ bucket: "agents", namespace: "agent-7" })` keeps datums under
 * `gs://agents/dgent/agent-7/`. `@google-cloud/storage` must be installed (an optional peer
 * dependency, imported by `open`).
 */
export function gcsAdapter(options: GcsOptions): ObjectStoreAdapter {
  return instantiateAdapter(gcs, options) as ObjectStoreAdapter;
}
