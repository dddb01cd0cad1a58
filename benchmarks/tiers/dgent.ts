import type { Datum } from "../../core/datum.js";
import type { Adapter } from "../../core/protocol.js";
import { createStore, type PluginUse, type Store } from "../../core/store.js";
import type { Contender } from "../contender.js";

export interface DgentContenderOptions {
  readonly name?: string;
  readonly plugins?: readonly PluginUse<never>[];
  /** Prefill with this many puts in flight instead of `putMany` batches (object stores). */
  readonly prefillConcurrency?: number;
}

/** A dgent store over one tier, configured as a user would (`createStore({ tiers: [adapter] })`). */
export function dgentContender(adapter: Adapter, description: string, options: DgentContenderOptions = {}): Contender & { store: Store } {
  const store = createStore({ tiers: [adapter], ...(options.plugins ? { plugins: options.plugins } : {}) });
  return {
    name: options.name ?? "dgent",
    kind: "dgent",
    description,
    store,
    put: (d) => store.put(d),
    putMany: (ds) => store.putMany(ds),
    get: (id) => store.get(id),
    list: (limit) => store.list({ limit }),
    chain: (id) => store.causalChain(id),
    async prefill(datums) {
      await store.open();
      const concurrency = options.prefillConcurrency;
      if (concurrency === undefined) {
        for (let i = 0; i < datums.length; i += 1000) await store.putMany(datums.slice(i, i + 1000));
        return;
      }
      let next = 0;
      const worker = async () => {
        while (next < datums.length) await store.put(datums[next++] as Datum);
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    },
    close: () => store.close(),
  };
}
