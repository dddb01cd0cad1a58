/**
 * `dgent get` and its direct read: the embedded default store's answer read straight from its
 * SQLite file, without composing the store (the kernel, the router, the memory tier, the SQLite
 * tier's modules). It applies only where the store it stands for is provably the embedded default
 * and the answer provably the same; in every other case `directGet` returns `null` and the
 * command opens the store as every other command does. See cli/README.md ("`dgent get`'s direct
 * read") for the conditions, and cli/fast-get.test.ts for the checks that both answer alike.
 *
 * What the store does on that path, and what this does instead:
 * - tiers: SQLite at `<dataDir>/<namespace>.db`, then memory. The memory tier of a new process is
 *   empty and the router does not read it, so the answer is the SQLite file's.
 * - open: the SQLite tier creates the directory and the file, and migrates an older schema; a
 *   journal of pending deletes left by a store that died is adopted and applied before any read.
 *   Here the directory must be writable, the file one of dgent's at the current schema version,
 *   in WAL mode, and no journal may exist; otherwise `null` (the store does its work).
 * - get: the tier's own statements (`GET` for one id, `GET_MANY` for several, from
 *   `adapters/sqlite/sql.ts`), rows read as the tier reads them, then the expiry view's rule: a
 *   datum whose `dgent.expiresAt` has passed is absent.
 * - close: the tier's (`PRAGMA optimize` without waiting for a lock, then close).
 *
 * A `dgent get` process loads this module before anything else of dgent's (cli/main.ts), so it
 * imports only what is small and imports nothing heavier: the SQL texts, the command-line reader,
 * the terminal helpers (and with `--json` the datum formatter). The few facts it needs from modules that
 * would pull in dgent's error machinery (the schema version, the tier's defaults, where the data
 * directory is, the config file names, the id and namespace rules, the expiry tag) are restated
 * here, and cli/fast-get.test.ts checks each against its source.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { GET, GET_MANY, PRAGMA, SCHEMA_STATE } from "../adapters/sqlite/sql.js";
import type { Datum } from "../core/datum.js";
import { requireNow } from "../core/lazy.js";
import { parseCommandLine, splitCommand } from "./args.js";
import type { Command, Io } from "./command.js";
import { printJson, quoted } from "./terminal.js";

/** `dgent get`'s summary, usage and options (its `run` is in cli/query-commands.ts). */
export const GET_COMMAND: Omit<Command, "run"> = {
  summary: "write datums' raw bytes to stdout (several ids: one after another; --json: the whole datums)",
  usage: "dgent get ID... [--json]",
  options: {},
};

/**
 * What `dgent get` prints for the datums of `ids` (`null`: none) and its exit code: the bytes
 * themselves, or with `--json` (`asJson`: cli/format.ts's `datumJson`, which a plain get does
 * not load) the datum (one id) or the array; a line on stderr per missing id.
 */
export function printGet(io: Pick<Io, "stdout" | "stderr">, asJson: ((d: Datum) => unknown) | null, ids: readonly string[], datums: readonly (Datum | null)[]): number {
  if (asJson) printJson(io, ids.length === 1 ? (datums[0] ? asJson(datums[0]) : null) : datums.map((d) => (d ? asJson(d) : null)));
  // The bytes themselves, as cat would: the data, not a report.
  else for (const d of datums) if (d !== null) io.stdout(d.content);
  ids.forEach((id, i) => datums[i] === null && io.stderr(`dgent: no datum with id ${quoted(id)}\n`));
  return datums.includes(null) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Facts restated from elsewhere (cli/fast-get.test.ts checks each against its source)
// ---------------------------------------------------------------------------------------------

/** `SCHEMA_VERSION` and `APPLICATION_ID` of adapters/sqlite/migrations.ts. */
export const SQLITE_SCHEMA = { version: 6, applicationId: 0x64676e74 } as const;
/** What `resolveConfig` (adapters/sqlite/options.ts) gives a tier named only by namespace and data directory. */
export const SQLITE_DEFAULTS = { busyTimeoutMs: 5000, synchronous: "NORMAL", mmapSize: 2 ** 31 } as const;
/** `CONFIG_FILE_NAMES` of compose/config/find.ts. */
export const CONFIG_FILE_NAMES = ["dgent.config.json", "dgent.config.yaml", "dgent.config.yml"] as const;
/** `EXPIRES_AT` of core/expiry.ts. */
export const EXPIRES_AT = "dgent.expiresAt";
/** The most ids one direct read takes (more go through the store); below `MAX_GET_MANY` (core/query.ts). */
export const DIRECT_MAX_IDS = 1_000;
/** `assertNamespace`'s rule (core/paths.ts). */
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** What `assertId` (core/datum.ts) refuses: C0 controls, DEL and C1 controls. */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Ids this read takes: ones `assertId` accepts, checked more narrowly (no id over 341 UTF-16
 * units, which cannot exceed its 1 024 bytes of UTF-8). Any other id goes through the store,
 * which accepts or refuses it.
 */
export const plainId = (id: string) => id.length > 0 && id.length <= 341 && !CONTROL_CHARS.test(id) && id.isWellFormed();

/** `defaultDataDir` (core/paths.ts): `$XDG_DATA_HOME/dgent` when it is absolute, else `~/.local/share/dgent`. */
export function dataDirOf(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME;
  return xdg && xdg.startsWith("/") ? join(xdg, "dgent") : join(homedir(), ".local", "share", "dgent");
}

/** The default store's journal of pending deletes (`journalPath` in compose/default-store.ts); segments start with it. */
export const journalName = (namespace: string) => `${namespace}.pending-deletes.jsonl`;

/**
 * True when the environment may choose another store than the embedded default: any variable
 * named `DGENT_*` or `KGENTS_*` with a value, except `DGENT_NAMESPACE` (which names the file).
 * Wider than what the default store reads (the database URLs, `DGENT_BACKEND`, `DGENT_CONFIG`) on
 * purpose: a variable added later sends `dgent get` through the store, not past it.
 */
export function environmentChoosesStore(env: NodeJS.ProcessEnv): boolean {
  for (const name in env) if (env[name] && name !== "DGENT_NAMESPACE" && /^(DGENT|KGENTS)_/.test(name)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// The direct read
// ---------------------------------------------------------------------------------------------

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

/**
 * The SQLite file the embedded default store would read for this command line, or `null` when
 * it may be another store: `--config`, a config file in the working directory, an environment
 * that chooses the store, a namespace or data directory the store would refuse.
 */
export function defaultFile(values: Values, env: NodeJS.ProcessEnv, cwd = process.cwd()): { path: string; namespace: string } | null {
  if (values.config !== undefined || environmentChoosesStore(env)) return null;
  if (CONFIG_FILE_NAMES.some((name) => existsSync(join(cwd, name)))) return null;
  const namespace = (values.namespace as string | undefined) ?? (env.DGENT_NAMESPACE || "default");
  const dataDir = (values["data-dir"] as string | undefined) ?? dataDirOf(env);
  if (!NAMESPACE.test(namespace) || dataDir === "") return null;
  return { path: resolve(cwd, join(dataDir, `${namespace}.db`)), namespace };
}

const HEADER = Buffer.from("SQLite format 3\0", "latin1");

/** True when the store's open would find the file ready and change nothing before the read. */
function readyToRead(path: string, namespace: string): boolean {
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return false;
    accessSync(dir, constants.W_OK | constants.X_OK);
    const file = statSync(path);
    if (!file.isFile() || file.size < HEADER.length) return false;
    const fd = openSync(path, "r");
    try {
      const head = Buffer.alloc(HEADER.length);
      if (readSync(fd, head, 0, head.length, 0) !== head.length || !head.equals(HEADER)) return false;
    } finally {
      closeSync(fd);
    }
    const journal = journalName(namespace);
    return !readdirSync(dir).some((name) => name === journal || name.startsWith(`${journal}.`));
  } catch {
    return false;
  }
}

type Row = [Buffer, number, string | null, string | null];
type FullRow = [string, ...Row];

/** A row as the tier reads it (adapters/sqlite/adapter.ts `get`, queries.ts `toDatum`). */
const datumOf = (id: string, row: Row): Datum => ({
  id,
  content: row[0],
  createdAt: row[1],
  causalParent: row[2],
  metadata: row[3] === null ? {} : (JSON.parse(row[3]) as Record<string, string>),
});

/** The expiry view's rule (core/expiry-view.ts, `isExpired`): from its expiry on, a datum is absent. */
function live(d: Datum | null, now: number): Datum | null {
  const tag = d?.metadata[EXPIRES_AT];
  return tag !== undefined && Number(tag) <= now ? null : d;
}

/**
 * The datums of `ids` as the embedded default store answers `get` (one id) or `getMany`
 * (several), read straight from its SQLite file; `null` when that cannot be shown to be the
 * same answer (see `defaultFile`; a missing, foreign or older file; a journal of pending deletes;
 * an id the store might refuse; any error): the caller then opens the store.
 */
export function directGet(values: Values, env: NodeJS.ProcessEnv, ids: readonly string[]): Array<Datum | null> | null {
  if (ids.length === 0 || ids.length > DIRECT_MAX_IDS || !ids.every(plainId)) return null;
  const file = defaultFile(values, env);
  if (file === null || !readyToRead(file.path, file.namespace)) return null;
  let db: BetterSqlite3.Database;
  try {
    db = new (requireNow<typeof BetterSqlite3>("better-sqlite3"))(file.path, { timeout: SQLITE_DEFAULTS.busyTimeoutMs, fileMustExist: true });
  } catch {
    return null;
  }
  let found: Array<Datum | null> | null = null;
  try {
    const [app, version] = db.prepare(SCHEMA_STATE).raw(true).get() as [number, number, number];
    // Current schema, WAL: the store's open would change nothing but these two connection settings.
    if (app === SQLITE_SCHEMA.applicationId && version === SQLITE_SCHEMA.version && db.pragma("journal_mode", { simple: true }) === "wal") {
      db.pragma(PRAGMA.synchronous(SQLITE_DEFAULTS.synchronous));
      db.pragma(PRAGMA.mmapSize(SQLITE_DEFAULTS.mmapSize));
      found = ids.length === 1 ? [one(db, ids[0] as string)] : many(db, ids);
    }
  } catch {
    found = null;
  }
  try {
    db.pragma(PRAGMA.noBusyWait);
    db.pragma(PRAGMA.optimize);
  } catch {
    // as the tier's close: a busy file must not stop it
  }
  try {
    db.close();
  } catch {
    return null;
  }
  return found;
}

/** `get`: the tier's `GET`, then the expiry view. */
function one(db: BetterSqlite3.Database, id: string): Datum | null {
  const row = db.prepare(GET).raw(true).get(id) as Row | undefined;
  return live(row === undefined ? null : datumOf(id, row), Date.now());
}

/** `getMany`: the tier's `GET_MANY` (one statement, the ids as a JSON array), then the expiry view. */
function many(db: BetterSqlite3.Database, ids: readonly string[]): Array<Datum | null> {
  const byId = new Map<string, Datum>();
  for (const row of db.prepare(GET_MANY).raw(true).all(JSON.stringify(ids)) as FullRow[]) byId.set(row[0], datumOf(row[0], row.slice(1) as Row));
  const now = Date.now();
  return ids.map((id) => live(byId.get(id) ?? null, now));
}

/**
 * A process's `dgent get`, answered by the direct read when one applies: the command line read
 * as `run` reads it (cli/args.ts), then `directGet`, then `printGet`. The exit code, or `null`
 * for anything else (another command, `--help`, a command line that does not parse, no direct
 * read): the caller then runs the command line with `run`, which reports or answers it.
 */
export async function fastGet(argv: readonly string[], io: Pick<Io, "stdout" | "stderr" | "env">): Promise<number | null> {
  let positionals: string[];
  let values: Values;
  try {
    const { leading, name, rest } = splitCommand(argv);
    if (name !== "get") return null;
    ({ positionals, values } = parseCommandLine([...leading, ...rest], GET_COMMAND.options, GET_COMMAND.usage));
  } catch {
    return null;
  }
  if (values.help) return null;
  const datums = directGet(values, io.env, positionals);
  if (datums === null) return null;
  return printGet(io, values.json === true ? (await import("./format.js")).datumJson : null, positionals, datums);
}
