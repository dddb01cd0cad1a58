import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "../../core/paths.js";

export const ADAPTER_NAME = "redis";

export const DEFAULT_URL = "redis://127.0.0.1:6379";

/** How long after its expiry a datum's key lives on in Redis by default (native expiry). */
export const DEFAULT_EXPIRY_GRACE_MS = 60_000;

/** TLS settings for `rediss://` (or `tls: true` with a `redis://` URL). */
export interface RedisTlsOptions {
  /** PEM of the certificate authority that signed the server's certificate (default: the system's). */
  ca?: string;
  /** PEM client certificate and key, for servers that ask for one (`tls-auth-clients yes`). */
  cert?: string;
  key?: string;
  /** Check the server's certificate (default true). */
  rejectUnauthorized?: boolean;
  /** The name the certificate must carry (default: the URL's host). */
  servername?: string;
}

export interface RedisOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Keys live under `<keyPrefix>:{<namespace>}:`. Default `"default"`. */
  namespace?: string;
  /** Default `"dgent"`. */
  keyPrefix?: string;
  /** TLS: `true`, or the settings; a `rediss://` URL turns it on by itself. */
  tls?: boolean | RedisTlsOptions;
  /** How long `open()` (connecting, reading the server's persistence settings, loading the scripts) may take. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `probe()` waits for PONG. Default 1000. */
  probeTimeoutMs?: number;
  /**
   * Whether data outlives the Redis process (`capabilities.persistent`). `"auto"` (default) reads
   * the server's own settings at open: persistent when the append-only file is on or RDB
   * snapshots are configured (`CONFIG GET appendonly`, `CONFIG GET save`); a server that keeps
   * nothing on disk is volatile. `true`/`false` override it (e.g. where CONFIG is disabled).
   */
  persistent?: "auto" | boolean;
  /** Report other processes' changes (pub/sub → the `externalChange` hook). Default true. */
  listen?: boolean;
  /** Announce this process's puts and deletes on the namespace's channel. Default true. */
  notify?: boolean;
  /**
   * Native expiry (README.md, "Expiry"): a datum carrying `dgent.expiresAt` is written with
   * `PXAT <expiresAt + margin>`, so Redis reclaims it by itself. `"auto"` (default) arms it only
   * when the store's clock is the system clock (`Date.now`; a store with an injected clock, e.g. a
   * test's fake one, does not arm it, because Redis expires by its own real clock); `true` arms it
   * whatever the clock (you say the store's clock follows real time); `false` never.
   */
  nativeExpiry?: "auto" | boolean;
  /**
   * How long after a datum's expiry Redis may remove it, in ms (default 60 000): room for the
   * server's clock running ahead of the store's. A server found ahead at open adds its lead.
   */
  expiryGraceMs?: number;
}

export interface ResolvedOptions {
  readonly url: string;
  readonly namespace: string;
  readonly keyPrefix: string;
  /** `<keyPrefix>:{<namespace>}:` */
  readonly prefix: string;
  readonly tls: RedisTlsOptions | null;
  readonly connectTimeoutMs: number;
  readonly probeTimeoutMs: number;
  readonly persistent: "auto" | boolean;
  readonly listen: boolean;
  readonly notify: boolean;
  readonly nativeExpiry: "auto" | boolean;
  readonly expiryGraceMs: number;
}

const TLS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ca: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    rejectUnauthorized: { type: "boolean" },
    servername: { type: "string" },
  },
};

export const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    url: { type: "string", minLength: 1 },
    namespace: { type: "string", minLength: 1, maxLength: 128 },
    keyPrefix: { type: "string", minLength: 1, maxLength: 64 },
    tls: { anyOf: [{ type: "boolean" }, TLS_SCHEMA] },
    connectTimeoutMs: { type: "integer", minimum: 1, maximum: 600_000 },
    probeTimeoutMs: { type: "integer", minimum: 1, maximum: 600_000 },
    persistent: { anyOf: [{ type: "boolean" }, { const: "auto" }] },
    listen: { type: "boolean" },
    notify: { type: "boolean" },
    nativeExpiry: { anyOf: [{ type: "boolean" }, { const: "auto" }] },
    expiryGraceMs: { type: "integer", minimum: 0, maximum: 31_536_000_000 },
  },
};

export function resolveOptions(options: RedisOptions): ResolvedOptions {
  const {
    url = DEFAULT_URL,
    namespace = DEFAULT_NAMESPACE,
    keyPrefix = "dgent",
    tls,
    connectTimeoutMs = 5000,
    probeTimeoutMs = 1000,
    persistent = "auto",
    listen = true,
    notify = true,
    nativeExpiry = "auto",
    expiryGraceMs = DEFAULT_EXPIRY_GRACE_MS,
  } = options;
  assertNamespace(namespace);
  if (!/^[A-Za-z0-9._:-]+$/.test(keyPrefix)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `keyPrefix ${JSON.stringify(keyPrefix)} must be letters, digits, ".", "_", ":" or "-"`, { unit: ADAPTER_NAME });
  }
  let scheme: string;
  try {
    scheme = new URL(url).protocol;
  } catch {
    throw dgentError("DGENT_INVALID_OPTIONS", "the redis tier's url is not a URL (expected redis://host:port or rediss://host:port)", { unit: ADAPTER_NAME });
  }
  if (scheme !== "redis:" && scheme !== "rediss:") {
    throw dgentError("DGENT_INVALID_OPTIONS", `the redis tier's url must start with redis:// or rediss://, got ${scheme}//`, { unit: ADAPTER_NAME });
  }
  const tlsOptions = tls === false ? (scheme === "rediss:" ? {} : null) : tls === true ? {} : (tls ?? (scheme === "rediss:" ? {} : null));
  return {
    url,
    namespace,
    keyPrefix,
    prefix: `${keyPrefix}:{${namespace}}:`,
    tls: tlsOptions,
    connectTimeoutMs,
    probeTimeoutMs,
    persistent,
    listen,
    notify,
    nativeExpiry,
    expiryGraceMs,
  };
}
