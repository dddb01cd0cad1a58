/**
 * Errors as HTTP answers: every failure is `{ error: { code, message, retryable, details? } }`
 * with a status chosen by its code (then by its kind). Errors that are not dgent's are answered
 * as `DGENT_BACKEND_ERROR` with a generic message, so nothing internal leaks.
 */
import { dgentError, isDgentError, type DgentError, type ErrorKind } from "../core/errors.js";
import type { WireError } from "./wire.js";

const BY_CODE: Readonly<Record<string, number>> = {
  DGENT_UNAUTHORIZED: 401,
  DGENT_FORBIDDEN: 403,
  DGENT_NOT_FOUND: 404,
  DGENT_REQUEST_TIMEOUT: 408,
  DGENT_CONFLICT: 409,
  DGENT_REF_CONFLICT: 409,
  DGENT_PAYLOAD_TOO_LARGE: 413,
  DGENT_RATE_LIMITED: 429,
  DGENT_UNSUPPORTED: 501,
  DGENT_CLOSED: 503,
  DGENT_NOT_OPEN: 503,
};

const BY_KIND: Readonly<Record<ErrorKind, number>> = {
  validation: 400,
  conflict: 409,
  config: 400,
  budget: 413,
  backend: 500,
  unavailable: 503,
  lifecycle: 503,
};

export function statusOf(error: DgentError): number {
  return BY_CODE[error.code] ?? BY_KIND[error.kind];
}

export function errorBody(error: DgentError): WireError {
  const details = Object.keys(error.details).length > 0 ? { details: error.details } : {};
  return { error: { code: error.code, message: error.message, retryable: error.retryable, ...details } };
}

/** Fastify's own errors (bad JSON, body too large, unsupported media type) as dgent errors. */
export function asDgentError(error: unknown): DgentError {
  if (isDgentError(error)) return error;
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") return dgentError("DGENT_PAYLOAD_TOO_LARGE", "the request body is larger than the server's body limit", { unit: "server" });
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return dgentError("DGENT_INVALID_OPTIONS", `bad request: ${e.message ?? "unreadable body"}`, { unit: "server" });
  }
  return dgentError("DGENT_BACKEND_ERROR", "the server failed to answer this request", { unit: "server" });
}
