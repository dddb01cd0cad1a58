import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import { classify, passwordsOf, redactText, redactUrl } from "./errors.js";
import { NotifyHub } from "./notify.js";

/**
 * The one connection manager (seed 003, "Connection Pooling: future work"): every store and
 * plugin of a process that connects to the same URL with the same connection settings shares one
 * `pg.Pool` and one LISTEN connection. Leases are counted; the pool is ended once, when the last
 * lease is released.
 */

export interface PoolSettings {
  /** Holds the password: used as the key and to connect, never printed. */
  readonly url: string;
  /** The URL as given (redacted for pool reports); `url` when absent. */
  readonly givenUrl?: string;
  readonly ssl: false | ConnectionOptions;
  /** Most connections; a later lease asking for more grows the shared pool. */
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly applicationName: string;
}

export interface PoolLease {
  readonly pool: pg.Pool;
  readonly notifications: NotifyHub;
  /** Gives the lease back; the last one ends the pool. Idempotent. */
  release(): Promise<void>;
}

interface Shared {
  readonly key: string;
  readonly redacted: string;
  readonly pool: pg.Pool;
  readonly hub: NotifyHub;
  refs: number;
}

const shared = new Map<string, Shared>();
let poolsCreated = 0;
let poolsEnded = 0;

/** Connection settings that make two pools different even for the same URL. */
function keyOf(s: PoolSettings): string {
  return JSON.stringify([s.url, s.ssl, s.statementTimeoutMs, s.applicationName]);
}

function clientConfig(s: PoolSettings): pg.ClientConfig {
  return {
    connectionString: s.url,
    ssl: s.ssl,
    application_name: s.applicationName,
    connectionTimeoutMillis: s.connectTimeoutMs,
    keepAlive: true,
    ...(s.statementTimeoutMs > 0 ? { statement_timeout: s.statementTimeoutMs } : {}),
  };
}

/** Takes a lease on the process-wide pool for these settings, creating it on first use. */
export function acquirePool(settings: PoolSettings): PoolLease {
  const key = keyOf(settings);
  let entry = shared.get(key);
  if (!entry) {
    const config = clientConfig(settings);
    const pool = new pg.Pool({ ...config, max: settings.poolSize, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
    // An idle connection dying (server restart, failover) is not an operation's failure: the pool
    // drops it and the next operation reconnects or fails with its own coded error. Without this
    // listener Node would crash the process on the 'error' event.
    pool.on("error", (error) => {
      if (!classify(error).retryable) {
        const secrets = [...passwordsOf(settings.givenUrl ?? settings.url), ...passwordsOf(settings.url)];
        process.emitWarning(`[dgent:postgres] idle connection error: ${redactText(error.message, secrets)}`, { type: "DgentWarning" });
      }
    });
    entry = { key, redacted: redactUrl(settings.givenUrl ?? settings.url), pool, hub: new NotifyHub(config), refs: 0 };
    shared.set(key, entry);
    poolsCreated++;
  }
  const pool = entry.pool;
  if (pool.options.max < settings.poolSize) pool.options.max = settings.poolSize;
  entry.refs++;
  const held = entry;
  let released = false;
  return {
    pool,
    notifications: held.hub,
    async release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs > 0) return;
      if (shared.get(held.key) === held) shared.delete(held.key);
      poolsEnded++;
      await held.hub.close();
      await held.pool.end().catch(() => undefined);
    },
  };
}

export interface PoolReport {
  /** The URL with the password redacted. */
  readonly url: string;
  readonly leases: number;
  readonly max: number;
  readonly connections: number;
  readonly idle: number;
  readonly waiting: number;
  readonly listening: readonly string[];
}

/** The pools alive in this process, with their lease counts (for reports and tests). */
export function poolReport(): PoolReport[] {
  return [...shared.values()].map((s) => ({
    url: s.redacted,
    leases: s.refs,
    max: s.pool.options.max,
    connections: s.pool.totalCount,
    idle: s.pool.idleCount,
    waiting: s.pool.waitingCount,
    listening: s.hub.channels,
  }));
}

/** How many pools this process created and ended so far. */
export function poolCounters(): { created: number; ended: number } {
  return { created: poolsCreated, ended: poolsEnded };
}

/**
 * True when the server answers `SELECT 1` within `probeTimeoutMs`; never throws. `viaPool` sends
 * it over an open pool; without one, a one-off connection is made and ended.
 */
export async function probe(
  settings: PoolSettings & { readonly probeTimeoutMs: number },
  viaPool: (() => Promise<unknown>) | null,
): Promise<boolean> {
  const timeout = settings.probeTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeout);
  });
  const attempt = (async () => {
    if (viaPool) {
      await viaPool();
      return true;
    }
    const client = new pg.Client({ connectionString: settings.url, ssl: settings.ssl, connectionTimeoutMillis: timeout, application_name: settings.applicationName });
    client.on("error", () => undefined);
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } finally {
      void client.end().catch(() => undefined);
    }
  })().catch(() => false);
  try {
    return await Promise.race([attempt, expired]);
  } finally {
    clearTimeout(timer);
  }
}
