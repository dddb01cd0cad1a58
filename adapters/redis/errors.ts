import { isNetworkErrorCode } from "../../core/adapter-support.js";
import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";
import { redactText, scrubError } from "../../core/redact.js";

/** Error replies that mean "the server cannot serve this now; try again" (loading, failover, a busy script…). */
const RETRYABLE_REPLIES = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|UNBLOCKED|MOVED|ASK)\b/;

/** node-redis errors that mean the connection is gone, not yet there, or timed out. */
const RETRYABLE_NAMES = new Set([
  "ClientOfflineError",
  "ClientClosedError",
  "SocketClosedUnexpectedlyError",
  "ConnectionTimeoutError",
  "SocketTimeoutError",
  "ReconnectStrategyError",
  "TimeoutError",
  "DisconnectsClientError",
  "AbortError",
]);

/** True when a driver error means "retry later" rather than "this call is wrong". */
export function isRetryable(error: unknown): boolean {
  const e = (error ?? {}) as { code?: unknown; message?: unknown; name?: unknown; constructor?: { name?: unknown }; errors?: unknown };
  if (isNetworkErrorCode(e.code)) return true;
  const name = typeof e.constructor?.name === "string" ? e.constructor.name : "";
  if (RETRYABLE_NAMES.has(name) || (typeof e.name === "string" && RETRYABLE_NAMES.has(e.name))) return true;
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isRetryable)) return true;
  const message = typeof e.message === "string" ? e.message : "";
  return RETRYABLE_REPLIES.test(message) || /connection (is )?closed|socket closed|the client is closed/i.test(message);
}

/** Wraps a driver error once: `DGENT_UNAVAILABLE` (retryable) or `DGENT_BACKEND_ERROR`, secrets removed. */
export function wrapRedisError(error: unknown, unit: string, what: string, secrets: readonly string[]): DgentError {
  if (isDgentError(error)) return error;
  const message = redactText(error instanceof Error ? error.message : String(error), secrets);
  const retryable = isRetryable(error);
  return dgentError(retryable ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR", `${unit}: ${what} failed: ${message}`, {
    unit,
    cause: scrubError(error, secrets),
  });
}

/** The password of a redis:// URL, raw and decoded, so messages never carry it. */
export function passwordsOf(url: string): string[] {
  try {
    const p = new URL(url).password;
    return p ? [...new Set([p, decodeURIComponent(p)])] : [];
  } catch {
    return [];
  }
}
