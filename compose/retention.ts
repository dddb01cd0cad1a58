/**
 * Retention as functions of a store (core/RETENTION.md): what the CLI's `dgent retention plan`
 * and `apply` call. `policies` defaults to the store's own (`createStore({ retention })`, or the
 * config file's `retention` key).
 */
import type { RetentionOptions, RetentionPolicy, RetentionReport } from "../core/retention.js";
import type { Store } from "../core/store.js";

/** What `policies` would delete and move at `options.now` (default now); changes nothing. */
export function planRetention(store: Store, policies?: readonly RetentionPolicy[] | null, options: Omit<RetentionOptions, "policies"> = {}): Promise<RetentionReport> {
  return store.planRetention({ ...options, ...(policies ? { policies } : {}) });
}

/** Deletes and moves what `policies` make due at `options.now` (default now), in batches. */
export function applyRetention(store: Store, policies?: readonly RetentionPolicy[] | null, options: Omit<RetentionOptions, "policies"> = {}): Promise<RetentionReport> {
  return store.applyRetention({ ...options, ...(policies ? { policies } : {}) });
}
