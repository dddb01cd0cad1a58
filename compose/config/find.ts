import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { dgentError } from "../../core/errors.js";

/** The names looked for in the working directory, in this order. */
export const CONFIG_FILE_NAMES = Object.freeze(["dgent.config.json", "dgent.config.yaml", "dgent.config.yml"] as const);

/** How a config file was found. */
export type ConfigOrigin = "--config" | "DGENT_CONFIG" | "working directory";

export interface FoundConfig {
  readonly path: string;
  readonly via: ConfigOrigin;
}

export interface FindConfigOptions {
  /** An explicit path (the CLI's `--config`); relative to `cwd`. */
  config?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Finds the config file: `--config PATH`, else `$DGENT_CONFIG`, else `dgent.config.json`,
 * `.yaml` or `.yml` in the working directory. `null` when there is none (use the embedded
 * default). An explicit path that does not exist is `DGENT_CONFIG_NOT_FOUND`; two candidates in
 * the working directory are `DGENT_CONFIG_INVALID` (which one was meant is not for dgent to guess).
 */
export function findConfig(options: FindConfigOptions = {}): FoundConfig | null {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit: [string | undefined, ConfigOrigin][] = [
    [options.config, "--config"],
    [env.DGENT_CONFIG || undefined, "DGENT_CONFIG"],
  ];
  for (const [value, via] of explicit) {
    if (value === undefined) continue;
    const path = resolve(cwd, value);
    const stats = statSync(path, { throwIfNoEntry: false });
    if (stats?.isDirectory()) {
      const inside = CONFIG_FILE_NAMES.map((name) => join(path, name)).filter((p) => existsSync(p));
      throw dgentError(
        "DGENT_CONFIG_NOT_FOUND",
        `${via} names ${value}, which is a directory, not a config file${inside.length === 1 ? `; did you mean ${inside[0]}?` : ` (name the file, e.g. ${join(path, "dgent.config.yaml")})`}`,
        { unit: "config", details: { file: path, via, directory: true } },
      );
    }
    if (stats === undefined || !stats.isFile()) {
      throw dgentError("DGENT_CONFIG_NOT_FOUND", `${via} names ${value}, but there is no such file${path !== value ? ` (${path})` : ""}`, {
        unit: "config",
        details: { file: path, via },
      });
    }
    return { path, via };
  }
  const present = CONFIG_FILE_NAMES.map((name) => join(cwd, name)).filter((p) => existsSync(p));
  if (present.length > 1) {
    throw dgentError("DGENT_CONFIG_INVALID", `${present.join(" and ")} are both in ${cwd}; keep one, or choose with --config`, {
      unit: "config",
      details: { files: present },
    });
  }
  return present[0] ? { path: present[0], via: "working directory" } : null;
}
