#!/usr/bin/env node
/**
 * The `dgent` command: the seed's `self.data.*` paths on the command line. Zero config: it works
 * on the embedded SQLite default under the XDG data directory.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isDgentError } from "../core/errors.js";
import { redactText } from "../core/redact.js";
import { run } from "./commands.js";
import { safe } from "./terminal.js";

export { run };

/**
 * The one line an error is printed as: `dgent: <message> [<CODE>]`, never a stack trace. The
 * message is redacted (a last net under the redaction each unit does) and shown terminal-safe.
 */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = isDgentError(error) ? ` [${error.code}]` : "";
  return `dgent: ${safe(redactText(message))}${code}\n`;
}

async function main(): Promise<void> {
  const io = {
    stdout: (chunk: string | Uint8Array) => process.stdout.write(chunk),
    stderr: (chunk: string) => process.stderr.write(chunk),
    stdin: process.stdin,
    env: process.env,
  };
  try {
    process.exitCode = await run(process.argv.slice(2), io);
  } catch (error) {
    // One line; the code tells scripts what happened.
    process.stderr.write(errorLine(error));
    process.exitCode = isDgentError(error, "DGENT_USAGE") ? 2 : 1;
  }
}

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? "") === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) await main();
