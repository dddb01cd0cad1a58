import { RANKS } from "../ranks.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { ObjectStoreAdapter } from "../object-store/adapter.js";
import { bucketFromUrl } from "../object-store/options.js";
import { connectS3 } from "./backend.js";
import { ADAPTER_NAME, OPTIONS_SCHEMA, resolveConfig, type S3Options } from "./options.js";

export { ADAPTER_NAME, type S3ClientLike, type S3Options } from "./options.js";
export { S3_PACKAGE } from "./backend.js";
export { classifyS3Error, s3Error, type S3ErrorClass } from "./errors.js";
export { ObjectStoreAdapter } from "../object-store/adapter.js";

/** The s3 tier's definition: registry key `"s3"`, rank `RANKS.s3`. */
export const s3 = defineAdapter<S3Options>({
  name: ADAPTER_NAME,
  rank: RANKS.s3,
  urlSchemes: ["s3"],
  // s3://bucket/key/prefix/ → the bucket, and the key prefix before the namespace.
  fromUrl: (url, context) => bucketFromUrl(url, context.namespace),
  description: "Amazon S3 or any S3-compatible store (MinIO, R2…): create-only objects and a time index for list.",
  optionsSchema: OPTIONS_SCHEMA,
  create: (options) => {
    const config = resolveConfig(options);
    return new ObjectStoreAdapter({ name: ADAPTER_NAME, rank: RANKS.s3, config: config.common, refs: true, connect: () => connectS3(config) });
  },
});

/**
 * An S3 tier. `s3Adapter({ bucket: "agents", namespace: "agent-7" })` keeps datums under
 * `s3://agents/dgent/agent-7/`. `@aws-sdk/client-s3` must be installed (an optional peer
 * dependency, imported by `open`).
 */
export function s3Adapter(options: S3Options): ObjectStoreAdapter {
  return instantiateAdapter(s3, options) as ObjectStoreAdapter;
}
