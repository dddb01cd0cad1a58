/**
 * Telling "the framework is not installed" from other failures when an integration imports its
 * optional peer, and the error it then throws (`DGENT_MISSING_DEPENDENCY` naming the package).
 * Framework-free: the OpenAI Agents integration uses it too.
 */
import { dgentError } from "../../core/errors.js";

/** True when `error` is the module loader saying `pkg` (or one of its subpaths) is not installed. */
export function isMissing(error: unknown, pkg: string): boolean {
  const e = error as { code?: unknown; message?: unknown };
  if (e?.code !== "ERR_MODULE_NOT_FOUND" && e?.code !== "MODULE_NOT_FOUND") return false;
  return typeof e.message === "string" && (e.message.includes(`'${pkg}'`) || e.message.includes(`'${pkg}/`));
}

/** The error an integration throws when its framework is not installed. */
export function missingPeerError(integration: string, pkg: string, cause: unknown): Error {
  return dgentError("DGENT_MISSING_DEPENDENCY", `dgent/integrations/${integration} needs the package "${pkg}", which is not installed; run: npm install ${pkg}`, {
    unit: integration,
    cause,
    details: { package: pkg },
  });
}
