import { RANKS } from "../ranks.js";
import { localPathFromUrl } from "../../core/paths.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { SqliteAdapter } from "./adapter.js";
import { ADAPTER_NAME, OPTIONS_SCHEMA, resolveConfig, type SqliteOptions } from "./options.js";

export { ADAPTER_NAME, DEFAULT_MMAP_SIZE, MEMORY_PATH, type SqliteOptions, type SynchronousMode } from "./options.js";
export { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, type Migration } from "./migrations.js";
export { SqliteAdapter } from "./adapter.js";
export type { ChangeRecord, ChangeTable } from "./changes.js";
export type { QueryPlan } from "./queries.js";

/** The sqlite tier's definition: registry key `"sqlite"`, rank `RANKS.sqlite`. */
export const sqlite = defineAdapter<SqliteOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.sqlite,
  description: "Embedded SQLite file (WAL): durable, multi-process, native causal chains and indexed queries. The default tier.",
  optionsSchema: OPTIONS_SCHEMA,
  urlSchemes: ["sqlite"],
  fromUrl: (url) => ({ path: localPathFromUrl(url) }),
  create: (options) => new SqliteAdapter(resolveConfig(options)),
});

/**
 * A SQLite tier. `sqliteAdapter({ namespace: "agent-7" })` stores in
 * `$XDG_DATA_HOME/dgent/agent-7.db`; `sqliteAdapter({ path: ":memory:" })` keeps nothing.
 */
export function sqliteAdapter(options: SqliteOptions = {}): SqliteAdapter {
  return instantiateAdapter(sqlite, options) as SqliteAdapter;
}
