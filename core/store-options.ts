import type { Adapter } from "./protocol.js";
import type { AnyPluginUse } from "./registry.js";
import type { RetentionPolicy } from "./retention.js";
import type { UpgraderPolicy } from "./upgrader.js";

/** What `createStore` takes. */
export interface StoreOptions {
  /**
   * One or more tiers, in any order: the store orders them by rank, most durable first (tiers of
   * equal rank keep the order given). Writes land on the most durable unless `landing` says.
   */
  tiers: readonly Adapter[];
  /** Applied in the order given, except that a plugin's `dependsOn` apply before it. */
  plugins?: readonly AnyPluginUse[];
  /** Names this store in reports and to plugins (tiers carry their own namespace option). */
  namespace?: string;
  /** Longest causal chain returned before `DGENT_CAUSAL_DEPTH` (default 10 000). */
  maxChainDepth?: number;
  /** The tier writes land on while it is up (default: the most durable). */
  landing?: string;
  /** When data moves up the lattice by itself (size, age); `false` turns the loop off. */
  upgrader?: UpgraderPolicy | false;
  /** A file where deletes made while a tier is down are journaled until it returns. */
  journalPath?: string;
  /** Re-probe backoff of a failed tier, in ms. */
  probeBackoffMs?: { min?: number; max?: number };
  /**
   * Retention policies (core/RETENTION.md): the default of `store.planRetention()` and
   * `store.applyRetention()`. Nothing runs by itself: retention happens when it is applied.
   */
  retention?: readonly RetentionPolicy[];
  /** Who this store is in reflogs (default `<hostname>:<pid>`). */
  actor?: string;
  /**
   * The clock expiry is judged by, in epoch ms (default `Date.now`); tests pass a fake one
   * (EXPIRY.md).
   */
  clock?: () => number;
  /**
   * Pause between background sweeps that delete expired datums from a tier without native
   * expiry, once that tier has held an expiring datum (default 60 000); `false`: only
   * `store.sweepExpired()` reclaims them.
   */
  expirySweepMs?: number | false;
}
