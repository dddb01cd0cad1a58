/**
 * What every command module shares: the process's streams and environment (`Io`), a command's
 * shape (`Command`) and what it runs with (`Context`), and the output and usage-error helpers.
 */
import type { ParseArgsConfig } from "node:util";
import { findConfig, type FoundConfig } from "../compose/config/find.js";
import { dgentError } from "../core/errors.js";
import type { Store } from "../core/store.js";

export interface Io {
  stdout(chunk: string | Uint8Array): unknown;
  stderr(chunk: string): unknown;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface Command {
  summary: string;
  usage: string;
  options: ParseArgsConfig["options"];
  run(ctx: Context): Promise<number>;
}

export interface Context {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  io: Io;
  json: boolean;
  store(): Promise<Store>;
}

export { print, printJson, quoted } from "./terminal.js";

export function usage(message: string): Error {
  return dgentError("DGENT_USAGE", message, { unit: "cli" });
}


/** The config file this command line uses, or null for the embedded default. */
export function configFor(ctx: Pick<Context, "values" | "io">): FoundConfig | null {
  return findConfig({ ...(ctx.values.config !== undefined ? { config: ctx.values.config as string } : {}), env: ctx.io.env });
}

/** `--namespace` and `--data-dir`, which override the file's. */
export function overrides(ctx: Pick<Context, "values">): { namespace?: string; dataDir?: string } {
  return {
    ...(ctx.values.namespace !== undefined ? { namespace: ctx.values.namespace as string } : {}),
    ...(ctx.values["data-dir"] !== undefined ? { dataDir: ctx.values["data-dir"] as string } : {}),
  };
}
