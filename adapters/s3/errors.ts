import { redactText, scrubError } from "../../core/redact.js";
import { isNetworkErrorCode } from "../../core/adapter-support.js";
import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";

/**
 * Every error of `@aws-sdk/client-s3` is mapped here, once. Callers branch on the class first:
 * `not-found` becomes a `null`/`false` result, `precondition` (HTTP 412) a lost create-only
 * write; the rest is thrown through `s3Error`: `unavailable` (throttling, 5xx, timeouts, network,
 * and S3's 409 `ConditionalRequestConflict`, which AWS says to retry) as retryable
 * `DGENT_UNAVAILABLE`, anything else as `DGENT_BACKEND_ERROR`.
 */
export type S3ErrorClass = "not-found" | "precondition" | "unavailable" | "backend";

const UNIT = "s3";

interface S3LikeError {
  readonly name?: string;
  readonly Code?: string;
  readonly code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: unknown;
}

const NOT_FOUND_NAMES = new Set(["NoSuchKey", "NotFound"]);
const RETRYABLE_NAMES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "RequestLimitExceeded",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "BandwidthLimitExceeded",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "InternalError",
  "ServiceUnavailable",
  "ConditionalRequestConflict",
  "OperationAborted",
]);
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export function statusOf(error: unknown): number | undefined {
  return (error as S3LikeError | null)?.$metadata?.httpStatusCode;
}

function nameOf(error: unknown): string {
  const e = error as S3LikeError | null;
  return e?.Code ?? e?.name ?? "Error";
}

export function classifyS3Error(error: unknown): S3ErrorClass {
  if (error === null || typeof error !== "object") return "backend";
  const e = error as S3LikeError;
  const status = statusOf(e);
  const name = nameOf(e);
  if (NOT_FOUND_NAMES.has(name)) return "not-found";
  if (status === 412 || name === "PreconditionFailed") return "precondition";
  if (RETRYABLE_NAMES.has(name) || (status !== undefined && RETRYABLE_STATUS.has(status))) return "unavailable";
  if (isNetworkErrorCode(e.code)) return "unavailable";
  if (e.$retryable !== undefined && e.$retryable !== null && e.$retryable !== false) return "unavailable";
  if (status === 404 && name !== "NoSuchBucket" && name !== "NoSuchUpload") return "not-found";
  return "backend";
}

const HINTS: Readonly<Record<string, string>> = {
  NoSuchBucket: "the bucket does not exist; create it or pass createBucket: true",
  InvalidAccessKeyId: "the access key id is not known to the service; check the credentials",
  SignatureDoesNotMatch: "the secret access key does not match; check the credentials",
  AccessDenied: "the credentials lack permission for this call",
  CredentialsProviderError: "no AWS credentials were found; pass credentials or configure the SDK's default chain",
  PermanentRedirect: "the bucket is in another region; set region",
  AuthorizationHeaderMalformed: "the region or credentials are wrong for this bucket",
};

// HEAD requests carry no error body, so only the status tells what went wrong.
const STATUS_HINTS: Readonly<Record<number, string>> = {
  301: "the bucket is in another region; set region",
  400: "the request was refused; check region, endpoint and forcePathStyle",
  403: "the credentials were refused or lack permission; check them or the SDK's default chain",
};

/** The DgentError for an S3 SDK failure during `action` (e.g. "GetObject dgent/x/d/…"). */
export function s3Error(error: unknown, action: string): DgentError {
  if (isDgentError(error)) return error;
  const cls = classifyS3Error(error);
  const status = statusOf(error);
  const name = nameOf(error);
  const e = error as S3LikeError | null;
  const reason = e?.message && e.message !== name ? `${name}: ${e.message}` : name;
  const hint = HINTS[name] ? ` (${HINTS[name]})` : status !== undefined && STATUS_HINTS[status] ? ` (${STATUS_HINTS[status]})` : "";
  const code = cls === "unavailable" ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR";
  // An endpoint may carry credentials in its userinfo: the message and the cause are redacted.
  return dgentError(code, `s3 ${action} failed${status ? ` with HTTP ${status}` : ""}: ${redactText(reason)}${hint}`, {
    unit: UNIT,
    cause: scrubError(error),
    details: { action, name, ...(status === undefined ? {} : { status }) },
  });
}
