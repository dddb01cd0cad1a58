#!/usr/bin/env node
/**
 * The `dgent` command: the seed's `self.data.*` paths on the command line. Zero config: it works
 * on the embedded SQLite default under the XDG data directory.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Io } from "./command.js";

const invokedDirectly = (() => {
  try {
    return realpathSync(process.argv[1] ?? "") === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

const io: Io = {
  stdout: (chunk: string | Uint8Array) => process.stdout.write(chunk),
  stderr: (chunk: string) => process.stderr.write(chunk),
  // Made on first use: setting up stdin is work a command that reads none need not do.
  get stdin() {
    return process.stdin;
  },
  env: process.env,
};

/**
 * `dgent get` on the embedded default reads the SQLite file directly when that provably gives the
 * store's answer (cli/fast-get.ts). It runs before anything else of dgent's loads: a process it
 * answers loads only that module and the few it imports. `null`: anything else, or any doubt.
 */
const answered = invokedDirectly && process.argv.includes("get") ? await (await import("./fast-get.js")).fastGet(process.argv.slice(2), io) : null;

// Everything else: the error line (with dgent's error codes and redaction) and, on the first
// `run`, the command table. A process `fastGet` answered loads neither.
const reporting = answered === null ? await import("./error-line.js") : null;

/**
 * Runs one command line (cli/commands.ts, loaded on the first call); returns the exit code.
 * Throws DgentErrors for the caller to print.
 */
export async function run(argv: readonly string[], runIo: Io): Promise<number> {
  return (await import("./commands.js")).run(argv, runIo);
}

/**
 * The one line an error is printed as: `dgent: <message> [<CODE>]`, never a stack trace. The
 * message is redacted (a last net under the redaction each unit does) and shown terminal-safe.
 */
export function errorLine(error: unknown): string {
  return (reporting as typeof import("./error-line.js")).errorLine(error);
}

async function main(): Promise<void> {
  try {
    process.exitCode = await run(process.argv.slice(2), io);
  } catch (error) {
    // One line; the code tells scripts what happened.
    process.stderr.write(errorLine(error));
    process.exitCode = (reporting as typeof import("./error-line.js")).exitCodeOf(error);
  }
}

if (answered !== null) process.exitCode = answered;
else if (invokedDirectly) await main();
