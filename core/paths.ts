import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
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

/**
 * Creates `dir` if needed and checks it is writable; throws `DGENT_DATA_DIR_UNWRITABLE`. Missing
 * directories are made one at a time from the deepest one that exists, so the work is bounded by
 * the path's depth: Node's `mkdir(…, { recursive: true })` loops forever where `mkdir` answers
 * ENOENT under a directory that exists (`/proc`, `/sys`).
 */
export function ensureWritableDir(dir: string, unit: string): void {
  try {
    makeDirs(resolve(dir));
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

function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; ; ) {
    let stats;
    try {
      stats = statSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      missing.push(current);
      const parent = dirname(current);
      if (parent === current) throw error;
      current = parent;
      continue;
    }
    if (!stats.isDirectory()) throw Object.assign(new Error(`${current} is not a directory`), { code: "ENOTDIR" });
    break;
  }
  for (const path of missing.reverse()) {
    try {
      mkdirSync(path);
    } catch (error) {
      // Another process made it meanwhile: fine. Anything else (ENOENT under /proc, EACCES) stops here.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(path).isDirectory()) throw error;
    }
  }
}

/**
 * The file a local-file URL names, for adapters whose `fromUrl` takes one: `<scheme>:///abs/path`
 * → `/abs/path`; `<scheme>://relative/path` → under the working directory; `<scheme>:~/path` or
 * `<scheme>:///~/path` → under the home directory; `<scheme>:path` → `path`. Percent-escapes are
 * decoded in the absolute form.
 */
export function localPathFromUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (!match) {
    throw dgentError("DGENT_INVALID_OPTIONS", `a local file URL looks like scheme:///absolute/path, got ${JSON.stringify(url)}`);
  }
  const rest = url.slice(match[0].length);
  const home = /^(\/\/\/?)?~\//.exec(rest);
  if (home) return join(homedir(), rest.slice(home[0].length));
  if (rest.startsWith("///")) return fileURLToPath(`file:///${rest.slice(3)}`);
  if (rest.startsWith("//")) return join(process.cwd(), rest.slice(2));
  if (rest.length === 0) {
    throw dgentError("DGENT_INVALID_OPTIONS", `the URL ${JSON.stringify(url)} names no file; use ${match[1]}:///absolute/path`);
  }
  return rest;
}
