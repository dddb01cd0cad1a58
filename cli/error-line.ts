/** How the `dgent` process reports an error that ends a command line (cli/main.ts). */
import { isDgentError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { safe } from "./terminal.js";

/**
 * The one line an error is printed as: `dgent: <message> [<CODE>]`, never a stack trace. The
 * message is redacted (a last net under the redaction each unit does) and shown terminal-safe.
 */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = isDgentError(error) ? ` [${error.code}]` : "";
  return `dgent: ${safe(redactText(message))}${code}\n`;
}

/** The exit code of a command line that ended with `error`: 2 for a usage error, else 1. */
export const exitCodeOf = (error: unknown) => (isDgentError(error, "DGENT_USAGE") ? 2 : 1);
