import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { dgentError } from "../../core/errors.js";
import { RANKS } from "../ranks.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "../../core/paths.js";
import { redactUrl } from "./errors.js";
import { optionWord, ORIGIN } from "./origin.js";

import { POSTGRES_DOCKER, POSTGRES_KIND, type ProfileName } from "./profile-for-url.js";

export { POSTGRES_DOCKER, POSTGRES_KIND, profileForUrl, type ProfileName } from "./profile-for-url.js";

/** `off`: plain TCP. `require`: encrypted, certificate not checked. `verify-full`: encrypted, certificate and host name checked. */
export type TlsMode = "off" | "require" | "verify-full";

export interface Profile {
  readonly name: ProfileName;
  readonly rank: number;
  /** Used when neither the options nor the environment give a URL. */
  readonly defaultUrl: string;
  readonly poolSize: number;
  readonly tls: TlsMode;
  /** Server-side `statement_timeout` per connection, in ms (0: none). */
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly probeTimeoutMs: number;
}

export const PROFILES: Readonly<Record<ProfileName, Profile>> = Object.freeze({
  [POSTGRES_DOCKER]: Object.freeze({
    name: POSTGRES_DOCKER,
    rank: RANKS["postgres-docker"],
    defaultUrl: "postgres://dgent@localhost:5432/dgent",
    poolSize: 4,
    tls: "off",
    statementTimeoutMs: 0,
    connectTimeoutMs: 5_000,
    probeTimeoutMs: 1_000,
  }),
  [POSTGRES_KIND]: Object.freeze({
    name: POSTGRES_KIND,
    rank: RANKS["postgres-kind"],
    defaultUrl: "postgres://dgent@postgres.dgent.svc.cluster.local:5432/dgent",
    poolSize: 16,
    tls: "require",
    statementTimeoutMs: 30_000,
    connectTimeoutMs: 10_000,
    probeTimeoutMs: 2_000,
  }),
} satisfies Record<ProfileName, Profile>);

/** Options of both Postgres tiers (see README.md for the table). */
export interface PostgresOptions {
  /** Which defaults to use (default `postgres-docker`); the registry entries set it for you. */
  profile?: ProfileName;
  /** `postgres://user:password@host:port/db`. Default: the environment, then the profile's URL. */
  url?: string;
  /** The store's namespace; it is the Postgres schema that holds the table (default `"default"`). */
  namespace?: string;
  /** Table name inside the schema (default `"data"`). */
  table?: string;
  /** Most connections of the process-wide pool for this URL (default: the profile's). */
  poolSize?: number;
  /** TLS mode, or `{ mode, ca }` with a PEM string or a path to a PEM file. Default: the URL's `sslmode`, else the profile's. */
  tls?: TlsMode | { mode: TlsMode; ca?: string; servername?: string };
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Time limit of `probe()` (default: the profile's). */
  probeTimeoutMs?: number;
  /** Send `pg_notify` after each put and delete (default true). */
  notify?: boolean;
  /** Listen for other processes' changes and report them to the store's `externalChange` hook (default true). */
  listen?: boolean;
  /** `application_name` shown in `pg_stat_activity` (default `"dgent"`). */
  applicationName?: string;
  /**
   * Connect for reading only (a migration's source, both ends of a dry run): every session runs
   * with `default_transaction_read_only = on`, so the server itself refuses to create anything —
   * no schema, no table, no migrations row — and every write fails (SQLSTATE 25006). A table that
   * is missing or behind the current schema version cannot be opened this way. Default false.
   */
  readonly?: boolean;
}

/** Options after defaults: what the adapter and the pool use. */
export interface ResolvedOptions {
  readonly profile: Profile;
  /** The URL without TLS parameters (they are in `ssl`). Holds the password: never print it. */
  readonly url: string;
  /** The URL as it was given (explicit or from the environment): what messages are redacted from. */
  readonly givenUrl: string;
  readonly schema: string;
  readonly table: string;
  readonly poolSize: number;
  readonly tls: TlsMode;
  readonly ssl: false | ConnectionOptions;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly probeTimeoutMs: number;
  readonly notify: boolean;
  readonly listen: boolean;
  readonly applicationName: string;
  /** Sessions are read-only (`default_transaction_read_only`, sent in the URL's `options`). */
  readonly readonly: boolean;
}

/** Postgres truncates identifiers past 63 bytes; we refuse them instead of letting two names collide. */
const MAX_IDENTIFIER_BYTES = 63;
/** Table names: letters, digits and `_`; short enough that `<table>_created_idx` still fits. */
const TABLE = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;

const TLS_PARAMS = ["sslmode", "ssl", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslnegotiation", "uselibpqcompat"];

/**
 * The connection URL: explicit option, then `DGENT_DATABASE_URL` (when it is a postgres URL),
 * `DGENT_POSTGRES_URL`, the seed's `KGENTS_DATABASE_URL` / `KGENTS_POSTGRES_URL`, then the
 * profile's default. A SQLAlchemy-style `postgresql+asyncpg://` scheme is converted.
 */
export function resolveUrl(explicit: string | undefined, profile: Profile, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [explicit, env.DGENT_DATABASE_URL, env.DGENT_POSTGRES_URL, env.KGENTS_DATABASE_URL, env.KGENTS_POSTGRES_URL];
  for (const candidate of candidates) {
    if (!candidate) continue;
    const url = candidate.replace(/^postgres(ql)?\+[a-z0-9]+:\/\//i, "postgres://");
    if (/^postgres(ql)?:\/\//i.test(url)) return url;
    if (candidate === explicit) {
      throw dgentError("DGENT_INVALID_OPTIONS", `${profile.name}: url must start with postgres:// or postgresql://, got ${redactUrl(candidate)}`, {
        unit: profile.name,
      });
    }
  }
  return profile.defaultUrl;
}

export function resolveOptions(options: PostgresOptions, env: NodeJS.ProcessEnv = process.env): ResolvedOptions {
  const profile = PROFILES[options.profile ?? POSTGRES_DOCKER];
  if (!profile) throw invalid(POSTGRES_DOCKER, `profile must be "${POSTGRES_DOCKER}" or "${POSTGRES_KIND}"`);
  const unit = profile.name;
  const raw = resolveUrl(options.url, profile, env);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw invalid(unit, `url ${redactUrl(raw)} is not a valid URL`);
  }
  const urlTls = tlsFromUrl(parsed);
  for (const key of TLS_PARAMS) parsed.searchParams.delete(key);
  const readonly = options.readonly === true;
  // libpq's `options` startup parameter, which node-postgres reads from the URL too. Sessions are
  // READ COMMITTED whatever the role's or database's default: a write statement then takes its
  // snapshot after its table locks, which the change log's listeners rely on (notify.ts
  // `#register`; under REPEATABLE READ the snapshot can predate the lock). `dgent.origin` names
  // this process in the change-log rows its statements and the delete trigger write, and marks
  // the session as one whose inserts write their own tags (the insert trigger skips it:
  // migration 10, sql.ts `keptInStep`).
  const prior = parsed.searchParams.get("options");
  const settings = [
    "-c default_transaction_isolation=read\\ committed",
    `-c dgent.origin=${optionWord(ORIGIN)}`,
    ...(readonly ? ["-c default_transaction_read_only=on"] : []),
  ];
  parsed.searchParams.set("options", [...(prior ? [prior] : []), ...settings].join(" "));

  const schema = options.namespace ?? DEFAULT_NAMESPACE;
  assertNamespace(schema);
  if (Buffer.byteLength(schema) > MAX_IDENTIFIER_BYTES) {
    throw invalid(unit, `namespace ${JSON.stringify(schema)} is longer than Postgres' ${MAX_IDENTIFIER_BYTES}-byte identifier limit`);
  }
  if (schema.startsWith("pg_") || schema === "information_schema") {
    throw invalid(unit, `namespace ${JSON.stringify(schema)} is reserved for Postgres' system schemas`);
  }
  const table = options.table ?? "data";
  if (typeof table !== "string" || !TABLE.test(table)) {
    throw invalid(unit, `table ${JSON.stringify(table)} must be 1-40 letters, digits or "_", starting with a letter or "_"`);
  }

  const tlsOption = typeof options.tls === "string" ? { mode: options.tls } : options.tls;
  const mode: TlsMode = tlsOption?.mode ?? urlTls.mode ?? profile.tls;
  if (!["off", "require", "verify-full"].includes(mode)) throw invalid(unit, `tls must be "off", "require" or "verify-full"`);
  const ca = tlsOption?.ca ?? urlTls.ca;
  const ssl: false | ConnectionOptions =
    mode === "off"
      ? false
      : mode === "require"
        ? { rejectUnauthorized: false }
        : {
            rejectUnauthorized: true,
            ...(ca ? { ca: readPem(ca, unit) } : {}),
            ...(tlsOption && "servername" in tlsOption && tlsOption.servername ? { servername: tlsOption.servername } : {}),
          };

  const num = (name: string, value: number | undefined, fallback: number, min: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < min) throw invalid(unit, `${name} must be an integer ≥ ${min}, got ${String(v)}`);
    return v;
  };
  return Object.freeze({
    profile,
    url: parsed.toString(),
    givenUrl: raw,
    schema,
    table,
    poolSize: num("poolSize", options.poolSize, profile.poolSize, 1),
    tls: mode,
    ssl,
    statementTimeoutMs: num("statementTimeoutMs", options.statementTimeoutMs, profile.statementTimeoutMs, 0),
    connectTimeoutMs: num("connectTimeoutMs", options.connectTimeoutMs, profile.connectTimeoutMs, 1),
    probeTimeoutMs: num("probeTimeoutMs", options.probeTimeoutMs, profile.probeTimeoutMs, 1),
    notify: options.notify ?? true,
    listen: options.listen ?? true,
    applicationName: options.applicationName ?? "dgent",
    readonly,
  });
}

/** libpq's `sslmode` mapped onto our three modes (`prefer`/`allow` encrypt without checking). */
function tlsFromUrl(url: URL): { mode?: TlsMode; ca?: string } {
  const sslmode = url.searchParams.get("sslmode") ?? (url.searchParams.get("ssl") === "true" ? "require" : null);
  const ca = url.searchParams.get("sslrootcert") ?? undefined;
  const base = ca ? { ca } : {};
  switch (sslmode) {
    case null:
      return base;
    case "disable":
      return { ...base, mode: "off" };
    case "allow":
    case "prefer":
    case "require":
    case "no-verify":
      return { ...base, mode: "require" };
    case "verify-ca":
    case "verify-full":
      return { ...base, mode: "verify-full" };
    default:
      return base;
  }
}

function readPem(ca: string, unit: string): string {
  if (ca.includes("-----BEGIN")) return ca;
  try {
    return readFileSync(ca, "utf8");
  } catch (error) {
    throw dgentError("DGENT_INVALID_OPTIONS", `${unit}: cannot read the TLS CA file ${ca}`, { unit, cause: error });
  }
}

function invalid(unit: string, message: string) {
  return dgentError("DGENT_INVALID_OPTIONS", `${unit}: ${message}`, { unit });
}

/** The JSON Schema of `PostgresOptions`, checked by the registry before `create`. */
export const OPTIONS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    profile: { enum: [POSTGRES_DOCKER, POSTGRES_KIND] },
    url: { type: "string", minLength: 1 },
    namespace: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$" },
    table: { type: "string", pattern: "^[A-Za-z_][A-Za-z0-9_]{0,39}$" },
    poolSize: { type: "integer", minimum: 1, maximum: 1000 },
    tls: {
      oneOf: [
        { enum: ["off", "require", "verify-full"] },
        {
          type: "object",
          additionalProperties: false,
          required: ["mode"],
          properties: {
            mode: { enum: ["off", "require", "verify-full"] },
            ca: { type: "string", minLength: 1 },
            servername: { type: "string", minLength: 1 },
          },
        },
      ],
    },
    statementTimeoutMs: { type: "integer", minimum: 0 },
    connectTimeoutMs: { type: "integer", minimum: 1 },
    probeTimeoutMs: { type: "integer", minimum: 1 },
    notify: { type: "boolean" },
    listen: { type: "boolean" },
    applicationName: { type: "string", maxLength: 63 },
    readonly: { type: "boolean" },
  },
} as const;
