#!/usr/bin/env node
/**
 * The `dgent` command: the seed's `self.data.*` paths on the command line. Zero config: it works
 * on the embedded SQLite default under the XDG data directory.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isDgentError } from "../core/errors.js";
import { run } from "./commands.js";

export { run };

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
    // One line, never a stack trace; the code tells scripts what happened.
    const message = error instanceof Error ? error.message : String(error);
    const code = isDgentError(error) ? ` [${error.code}]` : "";
    process.stderr.write(`dgent: ${message}${code}\n`);
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
