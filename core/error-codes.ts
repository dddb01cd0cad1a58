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
    summary: "Datum content is not a Uint8Array (or Buffer), or does not encode/decode with the codec the reader or its metadata (`dgent.codec`) names; `details: { id, codec, recorded }`.",
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
  DGENT_INVALID_QUERY: {
    kind: "validation",
    retryable: false,
    summary: "A query's options are wrong: an unknown option or filter operator, a malformed cursor or one made for other filters, a limit out of range; `details: { field }` names the option.",
  },
  DGENT_CONFLICT: {
    kind: "conflict",
    retryable: false,
    summary: "A different datum already exists under this id (the append-only law); nothing was changed.",
  },
  DGENT_REF_CONFLICT: {
    kind: "conflict",
    retryable: false,
    summary: "A ref did not hold what a move expected (a version, a target, or absence); nothing was changed. `details: { name, expected, actual }` says what the ref holds now.",
  },
  DGENT_UNSUPPORTED: {
    kind: "config",
    retryable: false,
    summary: "The tier an operation needs does not declare the capability it takes (refs, transactions); `details: { tier, capability }`. Compose the store with a tier that has it.",
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
  DGENT_DELETE_UNKNOWN: {
    kind: "unavailable",
    retryable: true,
    summary: "A delete cannot tell whether the id existed: no tier that is up held it and a tier that may hold it is down (`details: { id, tiers }`). The delete is journaled and applies when the tier returns; a retry then answers for that time.",
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
  DGENT_UNKNOWN_PATH: {
    kind: "config",
    retryable: false,
    summary: "A `self.data.*` path that does not exist; `details: { path, nearest? }` names the nearest known path.",
  },
  DGENT_UNKNOWN_SERVICE: {
    kind: "config",
    retryable: false,
    summary: "No service or store of that name is defined in the service registry; `details: { name, known }`.",
  },
  DGENT_SERVICE_CYCLE: {
    kind: "config",
    retryable: false,
    summary: "Services of the registry need each other in a circle; `details.chain` names them in order.",
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
    summary: "The config file does not fit its schema (`compose/config/schema.json`), names a landing tier it does not list, lists tiers out of lattice order, or two config files compete; the message gives the file, the path inside it and the line.",
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
  DGENT_UNAUTHORIZED: {
    kind: "config",
    retryable: false,
    summary: "The server needs a bearer token and got none, or one it does not know, or one that has expired (HTTP 401); the answer says nothing about what is stored.",
  },
  DGENT_FORBIDDEN: {
    kind: "config",
    retryable: false,
    summary: "The bearer token is valid but not scoped for this namespace and right (read, write, admin) (HTTP 403); the answer says nothing about what is stored.",
  },
  DGENT_NOT_FOUND: {
    kind: "validation",
    retryable: false,
    summary: "An HTTP request named a datum, ref or route that does not exist (HTTP 404); the remote tier turns it into `null` where the protocol returns one.",
  },
  DGENT_RATE_LIMITED: {
    kind: "unavailable",
    retryable: true,
    summary: "A bearer token (or, without auth, a client address) made more requests than its rate allows (HTTP 429); `details: { retryAfterSeconds }`.",
  },
  DGENT_PAYLOAD_TOO_LARGE: {
    kind: "budget",
    retryable: false,
    summary: "An HTTP request body is larger than the server's body limit (HTTP 413); `details: { limit }`.",
  },
  DGENT_REQUEST_TIMEOUT: {
    kind: "unavailable",
    retryable: true,
    summary: "An HTTP client did not send its whole request (headers and body) within the server's request timeout (HTTP 408; the server then closes the connection); `details: { timeoutMs }`.",
  },
  DGENT_BACKUP_CORRUPT: {
    kind: "backend",
    retryable: false,
    summary: "A backup archive's bytes do not match its manifest: a chunk's SHA-256 or size, the manifest's own digest, or a chunk that does not decode; `details: { archive, chunk }` names the part. Nothing was restored.",
  },
  DGENT_BACKUP_TRUNCATED: {
    kind: "backend",
    retryable: false,
    summary: "A backup archive ends early (no trailer, a chunk cut short or missing); `details: { archive, chunk }` names the chunk that is cut or the last whole one. Nothing was restored.",
  },
  DGENT_BACKUP_FORMAT: {
    kind: "backend",
    retryable: false,
    summary: "A file or object is not a dgent backup archive, or was written in a newer format version than this dgent reads (`details: { archive, version }`).",
  },
  DGENT_BACKUP_CHAIN: {
    kind: "config",
    retryable: false,
    summary: "An incremental backup's chain cannot be followed: its parent archive is missing or is not the archive it was made on, or no backup is as old as `--as-of`; `details: { archive, parent }`.",
  },
  DGENT_BACKUP_DECRYPT: {
    kind: "config",
    retryable: false,
    summary: "An encrypted backup cannot be read: no `--identity` was given, or none of the identities given is a recipient of the archive; nothing was restored.",
  },
  DGENT_RESTORE_MISMATCH: {
    kind: "backend",
    retryable: false,
    summary: "After a restore (or a restore drill), the digest of the restored datums differs from the digest the backup recorded; `details: { expected, actual }`.",
  },
  DGENT_CORRUPT: {
    kind: "backend",
    retryable: false,
    summary: "A datum's stored bytes fail their checksum (a JSONL record's CRC-32; an encrypted datum that fails authentication is `DGENT_DECRYPT_FAILED`): the read fails instead of returning wrong bytes; `details: { id }`.",
  },
  DGENT_DECRYPT_FAILED: {
    kind: "backend",
    retryable: false,
    summary: "An encrypted datum does not authenticate: its ciphertext, id, causal parent, namespace or clear metadata changed since it was sealed (e.g. moved to another id), or the key under its key id is not the one it was sealed with; `details: { id, keyId }`.",
  },
  DGENT_KEY_MISSING: {
    kind: "config",
    retryable: false,
    summary: "The encryption plugin has no key: none configured (env `DGENT_ENCRYPTION_KEY`, a key file or a key provider), or a datum names a key id the keyring does not hold; `details: { keyId }`.",
  },
  DGENT_CRDT_TYPE: {
    kind: "validation",
    retryable: false,
    summary: "A replicated value (dgent/patterns CRDTs) is stored as another CRDT type than the handle reading it; `details: { name, id, stored, expected }`.",
  },
  DGENT_CRDT_REPLICA_CLASH: {
    kind: "conflict",
    retryable: false,
    summary: "A CRDT write number of this replica id is already stored with other content: two live writers share one replica id; `details: { name, replica, dot }`. Give each writer its own id (the default).",
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
