import { RANKS } from "../ranks.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { RedisAdapter } from "./adapter.js";
import { ADAPTER_NAME, OPTIONS_SCHEMA, resolveOptions, type RedisOptions } from "./options.js";

export { RedisAdapter, ORIGIN, type Persistence } from "./adapter.js";
export { ADAPTER_NAME, DEFAULT_URL, type RedisOptions, type RedisTlsOptions } from "./options.js";
export { encodeDatum, decodeDatum, metadataJson } from "./codec.js";
export { putScript, SCRIPTS, type Script, type ScriptName } from "./scripts.js";

/**
 * The redis tier's definition: registry key `"redis"`, rank `RANKS.redis` (25: above the local
 * files, below Postgres), URL schemes `redis://` and `rediss://` (TLS).
 */
export const redis = defineAdapter<RedisOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.redis,
  description:
    "Redis (node-redis): shared by every process and host that reaches the server; Lua scripts make every write atomic; pub/sub change events; persistent only if the server keeps an AOF or RDB snapshots.",
  optionsSchema: OPTIONS_SCHEMA,
  urlSchemes: ["redis", "rediss"],
  fromUrl: (url, context) => ({ url, namespace: context.namespace, ...(context.purpose === "store" ? {} : { listen: false, notify: false }) }),
  create: (options) => new RedisAdapter(resolveOptions(options), RANKS.redis),
});

/** A Redis tier: `redisAdapter({ url: "redis://127.0.0.1:6379", namespace: "agent-7" })`. */
export function redisAdapter(options: RedisOptions = {}): RedisAdapter {
  return instantiateAdapter(redis, options) as RedisAdapter;
}
