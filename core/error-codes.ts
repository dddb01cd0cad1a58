/**
 * The one table of error codes. `core/ERRORS.md` documents the same rows; `test/errors-doc.test.ts`
 * keeps the two in step. Add a row here and there together.
 */

/** How a caller is expected to react; each kind maps to one `DgentError` subclass. */
export type ErrorKind =
  | "validation"
  | "conflict"
  | "config"
  | "backend"
  | "unavailable"
  | "budget"
  | "lifecycle";

export interface ErrorCodeInfo {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly summary: string;
}

export const ERROR_CODES = {
  DGENT_INVALID_ID: {
    kind: "validation",
    retryable: false,
    summary: "An id is not a string of 1..1024 UTF-8 bytes without control characters.",
  },
  DGENT_INVALID_DATUM: {
    kind: "validation",
    retryable: false,
    summary: "A datum is not an object of the Datum shape (createdAt, causalParent, field types).",
  },
  DGENT_INVALID_CONTENT: {
    kind: "validation",
    retryable: false,
    summary: "Datum content is not a Uint8Array (or Buffer).",
  },
  DGENT_INVALID_METADATA: {
    kind: "validation",
    retryable: false,
    summary: "Metadata is not a plain object whose values are all strings.",
  },
  DGENT_INVALID_OPTIONS: {
    kind: "validation",
    retryable: false,
    summary: "Options passed to an operation, adapter or plugin do not fit their schema.",
  },
  DGENT_CONFLICT: {
    kind: "conflict",
    retryable: false,
    summary: "A different datum already exists under this id (the append-only law); nothing was changed.",
  },
  DGENT_CAUSAL_CYCLE: {
    kind: "validation",
    retryable: false,
    summary: "A causal chain walk met the same id twice; the parents form a cycle.",
  },
  DGENT_CAUSAL_DEPTH: {
    kind: "validation",
    retryable: false,
    summary: "A causal chain is deeper than the configured maximum depth.",
  },
  DGENT_CLOSED: {
    kind: "lifecycle",
    retryable: false,
    summary: "An operation was called on a store or adapter after close().",
  },
  DGENT_NOT_OPEN: {
    kind: "lifecycle",
    retryable: false,
    summary: "An adapter operation was called before open().",
  },
  DGENT_CORRUPT_LOG: {
    kind: "backend",
    retryable: false,
    summary: "A JSONL log has an unreadable record before its last line; the log is left untouched.",
  },
  DGENT_LOCKED: {
    kind: "unavailable",
    retryable: true,
    summary: "Another live process holds the write lock of this log.",
  },
  DGENT_NOT_A_DATABASE: {
    kind: "backend",
    retryable: false,
    summary: "The file at the tier's path exists but is not storage of that tier (not a SQLite database, not a JSONL log); it is left untouched.",
  },
  DGENT_SCHEMA_TOO_NEW: {
    kind: "backend",
    retryable: false,
    summary: "The database schema was written by a newer dgent; upgrade dgent to open it.",
  },
  DGENT_DATA_DIR_UNWRITABLE: {
    kind: "config",
    retryable: false,
    summary: "The data directory cannot be created or written.",
  },
  DGENT_BACKEND_ERROR: {
    kind: "backend",
    retryable: false,
    summary: "The storage backend failed in a way that is not expected to pass on retry.",
  },
  DGENT_UNAVAILABLE: {
    kind: "unavailable",
    retryable: true,
    summary: "The storage backend cannot be reached right now; retrying later may succeed.",
  },
  DGENT_MISSING_DEPENDENCY: {
    kind: "config",
    retryable: false,
    summary: "An optional peer dependency the tier needs is not installed; the message names the package to install.",
  },
  DGENT_UNKNOWN_ADAPTER: {
    kind: "config",
    retryable: false,
    summary: "No adapter is registered under this name.",
  },
  DGENT_UNKNOWN_PLUGIN: {
    kind: "config",
    retryable: false,
    summary: "No plugin is registered under this name.",
  },
  DGENT_DUPLICATE_NAME: {
    kind: "config",
    retryable: false,
    summary: "An adapter or plugin with this name is already registered, or used twice in one store.",
  },
  DGENT_PLUGIN_DEPENDENCY: {
    kind: "config",
    retryable: false,
    summary: "A plugin depends on another plugin that is not in the store.",
  },
  DGENT_PLUGIN_FAILED: {
    kind: "backend",
    retryable: false,
    summary: "A plugin's tap threw an error that was not a DgentError; the plugin is named in `unit`.",
  },
  DGENT_NO_TIERS: {
    kind: "config",
    retryable: false,
    summary: "A store was created without any tier.",
  },
  DGENT_BUDGET_EXCEEDED: {
    kind: "budget",
    retryable: false,
    summary: "A datum is larger than its entropy budget allows (`details: { limit, actual }` in bytes); nothing was written.",
  },
  DGENT_LENS_INVALID: {
    kind: "validation",
    retryable: false,
    summary: "Content does not fit a lens's JSON Schema, or is not JSON; `details.errors` holds ajv's errors.",
  },
  DGENT_STREAM_OVERFLOW: {
    kind: "unavailable",
    retryable: true,
    summary: "A change-stream consumer fell further behind than its buffer holds; subscribe again (and resynchronise with list) to continue.",
  },
  DGENT_USAGE: {
    kind: "validation",
    retryable: false,
    summary: "The command line was not understood (unknown command, missing argument, bad flag).",
  },
  DGENT_CONFIG_NOT_FOUND: {
    kind: "config",
    retryable: false,
    summary: "The config file named by `--config` or `DGENT_CONFIG` does not exist.",
  },
  DGENT_CONFIG_SYNTAX: {
    kind: "config",
    retryable: false,
    summary: "The config file is not valid YAML or JSON; the message gives the file, line and column.",
  },
  DGENT_CONFIG_INVALID: {
    kind: "config",
    retryable: false,
    summary: "The config file does not fit its schema (`core/config/schema.json`), names a landing tier it does not list, lists tiers out of lattice order, or two config files compete; the message gives the file, the path inside it and the line.",
  },
  DGENT_CONFIG_ENV_MISSING: {
    kind: "config",
    retryable: false,
    summary: "The config file refers to an environment variable with `${VAR}` (no default) that is not set.",
  },
  DGENT_MODULE_LOAD: {
    kind: "config",
    retryable: false,
    summary: "A third-party module named in the config file cannot be found, throws on import, exports no adapter or plugin, or does not declare the dgent versions it supports.",
  },
  DGENT_VERSION_MISMATCH: {
    kind: "config",
    retryable: false,
    summary: "A third-party module declares a range of supported dgent versions that excludes this dgent.",
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
