import { accessSync, constants, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { dgentError } from "./errors.js";

export const DEFAULT_NAMESPACE = "default";

/** `$XDG_DATA_HOME/dgent`, else `~/.local/share/dgent` (DESIGN.md §6). */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg && xdg.startsWith("/")) return join(xdg, "dgent");
  return join(homedir(), ".local", "share", "dgent");
}

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Namespaces become file names and (later) schema names: a safe subset only. */
export function assertNamespace(namespace: unknown): asserts namespace is string {
  if (typeof namespace !== "string" || !NAMESPACE.test(namespace)) {
    throw dgentError(
      "DGENT_INVALID_OPTIONS",
      `namespace ${JSON.stringify(namespace)} must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  }
}

/** Creates `dir` if needed and checks it is writable; throws `DGENT_DATA_DIR_UNWRITABLE`. */
export function ensureWritableDir(dir: string, unit: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw dgentError("DGENT_DATA_DIR_UNWRITABLE", `cannot write to data directory ${dir} (${reason})`, {
      unit,
      cause: error,
      details: { dir },
    });
  }
}
