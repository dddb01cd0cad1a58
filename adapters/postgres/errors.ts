import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";

/**
 * Error handling at the Postgres boundary: every driver error is wrapped once, classified as
 * retryable (`DGENT_UNAVAILABLE`: the server cannot be reached or asked us to retry) or permanent
 * (`DGENT_BACKEND_ERROR`), and no message ever carries a password.
 */

/** SQLSTATEs that mean "try again later": the server went away, is starting or stopping, or asked for a retry. */
const RETRYABLE_SQLSTATES = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03", // lock_not_available
  "57P01", // admin_shutdown (fast shutdown, pg_terminate_backend)
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down, recovering)
  "57014", // query_canceled (statement_timeout): the server was too slow this time
  "53300", // too_many_connections
  "25006", // read_only_sql_transaction: connected to a standby, e.g. during a failover
]);

/** Socket-level error codes from Node that mean the server cannot be reached now. */
const RETRYABLE_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "EADDRNOTAVAIL",
  "EAI_AGAIN",
  // The service name does not resolve (yet): in Kubernetes a Service may appear after the client starts.
  "ENOTFOUND",
]);

/** Messages node-postgres uses for a connection that died or never came up. */
const RETRYABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection error and is not queryable/i,
  /client was closed and is not queryable/i,
  /query read timeout/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

export interface Classification {
  readonly code: "DGENT_UNAVAILABLE" | "DGENT_BACKEND_ERROR";
  readonly retryable: boolean;
  /** The SQLSTATE or errno that decided it, when there was one. */
  readonly reason: string | null;
}

/** Decides whether a driver error is worth retrying. */
export function classify(error: unknown): Classification {
  const e = (error ?? {}) as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === "string" ? e.code : null;
  if (code !== null) {
    if (/^\d[0-9A-Z]{4}$/.test(code)) {
      if (code.startsWith("08") || RETRYABLE_SQLSTATES.has(code)) return { code: "DGENT_UNAVAILABLE", retryable: true, reason: code };
      return { code: "DGENT_BACKEND_ERROR", retryable: false, reason: code };
    }
    if (RETRYABLE_ERRNOS.has(code)) return { code: "DGENT_UNAVAILABLE", retryable: true, reason: code };
  }
  // An AggregateError from a dual-stack connect (localhost → ::1 and 127.0.0.1) carries the errnos inside.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((inner) => classify(inner).retryable)) {
    return { code: "DGENT_UNAVAILABLE", retryable: true, reason: classify(e.errors[0]).reason };
  }
  const message = typeof e.message === "string" ? e.message : "";
  if (RETRYABLE_MESSAGES.some((re) => re.test(message))) return { code: "DGENT_UNAVAILABLE", retryable: true, reason: code };
  return { code: "DGENT_BACKEND_ERROR", retryable: false, reason: code };
}

/**
 * The URL with its password replaced by `***` (also a `password=` query parameter). Strings that
 * are not URLs are redacted by pattern, so the result is always safe to print.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const key of [...u.searchParams.keys()]) {
      if (/^(password|sslpassword|sslkey)$/i.test(key)) u.searchParams.set(key, "***");
    }
    return u.toString().replace("%2A%2A%2A", "***");
  } catch {
    return redactText(url, []);
  }
}

/** Removes URL passwords, `password=` pairs and each given secret from free text. */
export function redactText(text: string, secrets: readonly string[]): string {
  let out = text
    // scheme://user:password@host
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@\s/]*@/gi, "$1***@")
    // password=secret in a query string or conninfo
    .replace(/\b(password|sslpassword)=('(?:[^'\\]|\\.)*'|[^\s&;]*)/gi, "$1=***");
  for (const secret of secrets) {
    // Shorter secrets would mangle ordinary words; they are removed by the URL patterns above.
    if (secret.length < 4) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  return out;
}

/** The password of a URL (decoded), or null. Used only to scrub messages. */
export function passwordOf(url: string): string | null {
  try {
    const u = new URL(url);
    const fromQuery = u.searchParams.get("password");
    const pw = u.password ? decodeURIComponent(u.password) : fromQuery;
    return pw ? pw : null;
  } catch {
    return null;
  }
}

/** A copy of a driver error whose message and stack hold no secret; the original when clean. */
function scrubbed(error: unknown, secrets: readonly string[]): unknown {
  if (!(error instanceof Error)) return typeof error === "string" ? redactText(error, secrets) : error;
  const message = redactText(error.message, secrets);
  const stack = error.stack === undefined ? undefined : redactText(error.stack, secrets);
  if (message === error.message && stack === error.stack) return error;
  const copy = new Error(message);
  for (const key of ["code", "severity", "detail", "hint", "routine", "errno", "syscall"] as const) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === "string" || typeof value === "number") {
      (copy as unknown as Record<string, unknown>)[key] = typeof value === "string" ? redactText(value, secrets) : value;
    }
  }
  if (stack !== undefined) copy.stack = stack;
  return copy;
}

/**
 * Wraps a driver error once as a `DgentError` of the right code. A `DgentError` passes through
 * unchanged, so a caller wrapping again never nests. `what` says what was being done, e.g.
 * `put "a/b" into "tenant"."data"`.
 */
export function wrapPgError(error: unknown, unit: string, what: string, secrets: readonly string[]): DgentError {
  if (isDgentError(error)) return error;
  const { code, retryable, reason } = classify(error);
  const raw = error instanceof Error ? error.message || error.constructor.name : String(error);
  const reasonText = redactText(raw, secrets);
  const hint = retryable ? " (retryable: the server is unreachable or asked for a retry)" : "";
  return dgentError(code, `${unit}: ${what} failed: ${reasonText}${reason ? ` [${reason}]` : ""}${hint}`, {
    unit,
    retryable,
    cause: scrubbed(error, secrets),
    details: reason ? { reason } : {},
  });
}
