/**
 * Helpers every adapter needs at its boundary, in one place: importing an optional peer
 * dependency with a coded error when it is missing, and telling a network outage (retry later,
 * degrade) from a permanent failure by the error code Node or an SDK gives.
 */
import { dgentError } from "./errors.js";

/**
 * Imports an optional peer dependency. When it is not installed, throws
 * `DGENT_MISSING_DEPENDENCY` naming the package and the command that installs it; any other
 * failure while loading it is passed on unchanged.
 */
export async function importOptional<T>(
  pkg: string,
  unit: string,
  load: (specifier: string) => Promise<unknown> = (specifier) => import(specifier),
): Promise<T> {
  try {
    return (await load(pkg)) as T;
  } catch (error) {
    if (isNotFound(error, pkg)) {
      throw dgentError(
        "DGENT_MISSING_DEPENDENCY",
        `the ${unit} tier needs the package "${pkg}", which is not installed; run: npm install ${pkg}`,
        { unit, cause: error, details: { package: pkg } },
      );
    }
    throw error;
  }
}

function isNotFound(error: unknown, pkg: string): boolean {
  const e = error as { code?: unknown; message?: unknown };
  if (e?.code !== "ERR_MODULE_NOT_FOUND" && e?.code !== "MODULE_NOT_FOUND") return false;
  // Only the package itself: a broken install that misses one of *its* dependencies is reported as is.
  return typeof e.message === "string" && e.message.includes(`'${pkg}'`);
}

/**
 * Error codes of Node's sockets and DNS, and of the HTTP clients built on them (undici, streams),
 * that mean the service cannot be reached now: an outage, not a wrong request.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  // The service name does not resolve (yet): in Kubernetes a Service may appear after the client starts.
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/** True when `code` (an error's `code`) says the service cannot be reached now. */
export function isNetworkErrorCode(code: unknown): boolean {
  return typeof code === "string" && NETWORK_ERROR_CODES.has(code);
}
