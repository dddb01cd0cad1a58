import { isNetworkErrorCode } from "../../core/adapter-support.js";
import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";
import { redactText as coreRedactText, scrubError } from "../../core/redact.js";

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
    if (isNetworkErrorCode(code)) return { code: "DGENT_UNAVAILABLE", retryable: true, reason: code };
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
 * The URL with its password replaced by `***` (also secret query parameters such as
 * `password=`, `sslpassword=`). Strings that are not URLs are redacted by pattern, so the result
 * is always safe to print. The one implementation is dgent's (`core/redact.ts`).
 */
export { redactUrl } from "../../core/redact.js";

/** Removes URL passwords, `password=` pairs and each given secret from free text (`core/redact.ts`). */
export function redactText(text: string, secrets: readonly string[]): string {
  return coreRedactText(text, secrets);
}

/**
 * Every form the password of a URL may take in a message: the parsed one (decoded) and, for a
 * URL written by hand with a raw `#`, `?`, `/` or space in its password (which a URL parser
 * misreads as a fragment, a query or a path), the text from the userinfo's first `:` to the
 * last `@`. Used only to scrub messages.
 */
export function passwordsOf(url: string): string[] {
  const found = new Set<string>();
  try {
    const u = new URL(url);
    const fromQuery = u.searchParams.get("password");
    const pw = u.password ? decodeURIComponent(u.password) : fromQuery;
    if (pw) found.add(pw);
  } catch {
    // not parseable: the raw form below still applies
  }
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const at = rest.lastIndexOf("@");
  const colon = at < 0 ? -1 : rest.slice(0, at).indexOf(":");
  if (colon >= 0 && at > colon + 1) {
    const raw = rest.slice(colon + 1, at);
    found.add(raw);
    try {
      found.add(decodeURIComponent(raw));
    } catch {
      // a raw `%` that is not an escape: the raw form is enough
    }
    // A raw `@`, `/`, `?`, `#` or `:` in the password makes the driver read part of it as the
    // host, user, database or options, and echo that part in its messages ("getaddrinfo
    // ENOTFOUND <part>"): each part is a secret too, as given and as a host name (lower case).
    for (const part of raw.split(/[@/?#:]/)) {
      if (part === raw || part.length === 0) continue;
      found.add(part);
      found.add(part.toLowerCase());
    }
  }
  return [...found];
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
    cause: scrubError(error, secrets),
    details: reason ? { reason } : {},
  });
}
