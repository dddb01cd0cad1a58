/**
 * A store that listens on a Postgres schema and records the ids of the puts it hears from other
 * processes (its `externalChange` hook), opened: for tests that check a writer in another
 * process is heard.
 */
import { postgresAdapter } from "../../adapters/postgres/index.js";
import { createStore, type Store } from "../../core/store.js";

export async function putsHeard(url: string, namespace: string): Promise<{ store: Store; heard: Set<string> }> {
  const store = createStore({ tiers: [postgresAdapter({ url, namespace })] });
  const heard = new Set<string>();
  store.hooks.externalChange.tap("test", (event) => {
    if (event.op === "put") heard.add(event.id);
  });
  await store.open();
  return { store, heard };
}
