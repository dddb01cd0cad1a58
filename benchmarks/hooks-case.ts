import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Datum } from "../core/datum.js";
import type { Adapter } from "../core/protocol.js";
import { definePlugin, type PluginDefinition } from "../core/registry.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import type { Contender, TierSetup } from "./contender.js";
import { dgentContender } from "./tiers/dgent.js";

/** Plugin counts the hook-overhead case compares. */
export const PLUGIN_COUNTS = [0, 1, 5] as const;

/**
 * A trivial plugin: taps `beforePut` (returns the datum unchanged), `afterPut` (does nothing)
 * and `read` (returns the datum unchanged), synchronously. What is measured is the hooks'
 * machinery, not a plugin's work.
 */
export function trivialPlugin(n: number): PluginDefinition<Record<string, unknown>, void> {
  const name = `bench-tap-${n}`;
  return definePlugin({
    name,
    description: "taps beforePut, afterPut and read; does nothing",
    apply(api) {
      api.hooks.beforePut.tap({ name }, (d: Datum) => d);
      api.hooks.afterPut.tap({ name }, () => undefined);
      api.hooks.read.tap({ name }, (d: Datum) => d);
    },
  });
}

function withPlugins(makeAdapter: () => Adapter, count: number, tierLabel: string): Contender {
  const plugins = Array.from({ length: count }, (_, i) => trivialPlugin(i + 1));
  return dgentContender(makeAdapter(), `${tierLabel} store with ${count} plugin${count === 1 ? "" : "s"} tapped (beforePut, afterPut, read)`, {
    name: `${count} plugin${count === 1 ? "" : "s"}`,
    plugins,
  });
}

/** The hook-overhead case as a tier: one store per plugin count, measured interleaved. */
export function hooksTier(tier: "memory" | "sqlite", dir: string): TierSetup {
  let make: () => Adapter;
  if (tier === "memory") make = () => memoryAdapter();
  else {
    const base = join(dir, "hooks-sqlite");
    mkdirSync(base, { recursive: true });
    let n = 0;
    make = () => sqliteAdapter({ dataDir: base, namespace: `plugins-${n++}` });
  }
  return {
    tier: `hooks-${tier}`,
    label: `hook overhead on the ${tier} tier: 0, 1 and 5 trivial plugins`,
    contenders: PLUGIN_COUNTS.map((count) => withPlugins(make, count, tier)),
    dispose: async () => undefined,
  };
}
