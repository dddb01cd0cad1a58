import { join, resolve } from "node:path";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "../../core/paths.js";

export const ADAPTER_NAME = "sqlite";

/** The path that keeps the database in memory (tests; not persistent, not shared). */
export const MEMORY_PATH = ":memory:";

export type SynchronousMode = "NORMAL" | "FULL";

/**
 * The default `mmapSize`: 2 GiB, i.e. as much of the file as SQLite will map (its cap in
 * better-sqlite3's build is 0x7fff0000, 2 GiB − 64 KiB). See the README ("Memory map").
 */
export const DEFAULT_MMAP_SIZE = 2 ** 31;

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
  /**
   * Bytes of the database file SQLite reads through a memory map (`PRAGMA mmap_size`) instead of
   * `read` calls. Default `DEFAULT_MMAP_SIZE` (2 GiB; SQLite lowers anything above its build's
   * cap, 2 GiB − 64 KiB, to that cap); `0` turns the map off. With a map, an I/O error while
   * reading the file (a failing disk, a vanished network mount) kills the process with SIGBUS
   * instead of failing the call with `DGENT_BACKEND_ERROR`: SQLite's documented trade-off.
   */
  mmapSize?: number;
  /**
   * Open an existing database for reading only (what `dgent migrate` does to a source, and to
   * both ends of a dry run): a missing file is `DGENT_INVALID_OPTIONS` (`details.missing: true`)
   * and nothing is created, not even its directory; no schema step runs; writes fail. Default false.
   */
  readonly?: boolean;
}

/** Options after defaults: what the adapter runs with. */
export interface SqliteConfig {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: SynchronousMode;
  readonly mmapSize: number;
  readonly inMemory: boolean;
  readonly readonly: boolean;
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
    mmapSize: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: DEFAULT_MMAP_SIZE },
    readonly: { type: "boolean" },
  },
};

/** Applies defaults and resolves the file path (eagerly, so a bad option fails at creation). */
export function resolveConfig(options: SqliteOptions): SqliteConfig {
  const { namespace = DEFAULT_NAMESPACE, dataDir, path, busyTimeoutMs = 5000, synchronous = "NORMAL", mmapSize = DEFAULT_MMAP_SIZE, readonly = false } = options;
  if (path !== undefined && dataDir !== undefined) {
    throw dgentError("DGENT_INVALID_OPTIONS", 'give the sqlite tier either "path" or "dataDir", not both', {
      unit: ADAPTER_NAME,
    });
  }
  assertNamespace(namespace);
  const file = path === MEMORY_PATH ? MEMORY_PATH : resolve(path ?? join(dataDir ?? defaultDataDir(), `${namespace}.db`));
  if (readonly && file === MEMORY_PATH) {
    throw dgentError("DGENT_INVALID_OPTIONS", `the sqlite tier cannot open "${MEMORY_PATH}" read-only: it would always be empty`, { unit: ADAPTER_NAME });
  }
  return { path: file, busyTimeoutMs, synchronous, mmapSize, inMemory: file === MEMORY_PATH, readonly };
}
