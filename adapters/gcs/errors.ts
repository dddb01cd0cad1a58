import { redactText, scrubError } from "../../core/redact.js";
import { isNetworkErrorCode } from "../../core/adapter-support.js";
import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";

/**
 * Every error of `@google-cloud/storage` is mapped here, once. The SDK reports an HTTP status in
 * three shapes, depending on the path a request took (DESIGN.md §8):
 *
 * | where                                             | what the SDK throws                              |
 * |---------------------------------------------------|--------------------------------------------------|
 * | JSON calls, multipart uploads, downloads          | `ApiError` with a numeric `code`                 |
 * | resumable upload initiation                       | `GaxiosError`: `code` undefined (or a string), `response.status` |
 * | resumable upload finalisation                     | a plain `{ code, message }` object              |
 *
 * `statusOf` reads all three. Callers branch on the class: `not-found` (404) becomes a
 * `null`/`false` result, `precondition` (412) a lost create-only write; the rest is thrown
 * through `gcsError`: `unavailable` (408, 429, 5xx, network, a checksum mismatch on transfer) as
 * retryable `DGENT_UNAVAILABLE`, anything else as `DGENT_BACKEND_ERROR`. Timeouts arrive as
 * node-fetch's `FetchError` with `type: "request-timeout"` and no code.
 */
export type GcsErrorClass = "not-found" | "precondition" | "unavailable" | "backend";

const UNIT = "gcs";

interface GcsLikeError {
  readonly code?: unknown;
  readonly status?: unknown;
  readonly message?: unknown;
  readonly response?: { readonly status?: unknown };
  readonly errors?: ReadonlyArray<{ readonly reason?: unknown }>;
}

/** The SDK's own integrity checks on a transfer: worth another try. */
const TRANSFER_CODES = new Set(["CONTENT_DOWNLOAD_MISMATCH", "FILE_NO_UPLOAD"]);
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** The HTTP status in any of the SDK's three error shapes. */
export function statusOf(error: unknown): number | undefined {
  if (error === null || typeof error !== "object") return undefined;
  const e = error as GcsLikeError;
  if (typeof e.code === "number") return e.code;
  if (typeof e.response?.status === "number") return e.response.status;
  if (typeof e.status === "number") return e.status;
  return undefined;
}

export function classifyGcsError(error: unknown): GcsErrorClass {
  if (error === null || typeof error !== "object") return "backend";
  const status = statusOf(error);
  if (status === 404) return "not-found";
  if (status === 412) return "precondition";
  if (status !== undefined && RETRYABLE_STATUS.has(status)) return "unavailable";
  const code = (error as GcsLikeError).code;
  if (isNetworkErrorCode(code) || (typeof code === "string" && TRANSFER_CODES.has(code))) return "unavailable";
  const { name, type } = error as { name?: unknown; type?: unknown };
  if (status === undefined && (name === "AbortError" || name === "TimeoutError")) return "unavailable";
  // node-fetch (under gaxios) reports a request past the SDK's `timeout` as FetchError type "request-timeout".
  if (type === "request-timeout" || type === "body-timeout") return "unavailable";
  return "backend";
}

const HINTS: Readonly<Record<number, string>> = {
  401: "the credentials were refused; check keyFilename/credentials or the SDK's default chain",
  403: "the credentials lack permission for this call",
};

/** The DgentError for a GCS SDK failure during `action` (e.g. "download dgent/x/d/…"). */
export function gcsError(error: unknown, action: string): DgentError {
  if (isDgentError(error)) return error;
  const cls = classifyGcsError(error);
  const status = statusOf(error);
  const e = error as GcsLikeError | null;
  const reason = typeof e?.message === "string" && e.message ? e.message : String(error);
  const hint = status !== undefined && HINTS[status] ? ` (${HINTS[status]})` : "";
  const code = cls === "unavailable" ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR";
  // An endpoint may carry credentials in its userinfo: the message and the cause are redacted.
  return dgentError(code, `gcs ${action} failed${status ? ` with HTTP ${status}` : ""}: ${redactText(reason)}${hint}`, {
    unit: UNIT,
    cause: scrubError(error),
    details: { action, ...(status === undefined ? {} : { status }) },
  });
}
