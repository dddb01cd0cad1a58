import { join, resolve } from "node:path";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "../../core/paths.js";

export const ADAPTER_NAME = "sqlite";

/** The path that keeps the database in memory (tests; not persistent, not shared). */
export const MEMORY_PATH = ":memory:";

export type SynchronousMode = "NORMAL" | "FULL";

export interface SqliteOptions {
  /** The database file is `<dataDir>/<namespace>.db`. Default `"default"`. */
  namespace?: string;
  /** Default: `$XDG_DATA_HOME/dgent`, else `~/.local/share/dgent`. */
  dataDir?: string;
  /** An explicit database file (overrides namespace and dataDir), or `":memory:"`. */
  path?: string;
  /** How long a write waits for another connection's lock before `DGENT_UNAVAILABLE`. Default 5000. */
  busyTimeoutMs?: number;
  /**
   * `NORMAL` (default): an acknowledged put survives a crash of the process; an OS crash or power
   * loss may lose the last few commits but never corrupts the file. `FULL`: every commit is
   * fsynced before it is acknowledged, so it survives power loss too (slower writes).
   */
  synchronous?: SynchronousMode;
}

/** Options after defaults: what the adapter runs with. */
export interface SqliteConfig {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: SynchronousMode;
  readonly inMemory: boolean;
}

export const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    namespace: { type: "string", minLength: 1, maxLength: 128 },
    dataDir: { type: "string", minLength: 1 },
    path: { type: "string", minLength: 1 },
    busyTimeoutMs: { type: "integer", minimum: 0, maximum: 2_147_483_647, default: 5000 },
    synchronous: { enum: ["NORMAL", "FULL"], default: "NORMAL" },
  },
};

/** Applies defaults and resolves the file path (eagerly, so a bad option fails at creation). */
export function resolveConfig(options: SqliteOptions): SqliteConfig {
  const { namespace = DEFAULT_NAMESPACE, dataDir, path, busyTimeoutMs = 5000, synchronous = "NORMAL" } = options;
  if (path !== undefined && dataDir !== undefined) {
    throw dgentError("DGENT_INVALID_OPTIONS", 'give the sqlite tier either "path" or "dataDir", not both', {
      unit: ADAPTER_NAME,
    });
  }
  assertNamespace(namespace);
  const file = path === MEMORY_PATH ? MEMORY_PATH : resolve(path ?? join(dataDir ?? defaultDataDir(), `${namespace}.db`));
  return { path: file, busyTimeoutMs, synchronous, inMemory: file === MEMORY_PATH };
}
