import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { dgentError } from "../errors.js";
import { expandEnv } from "./expand.js";
import { objectSource, parseSource, type ConfigSource } from "./source.js";
import { validateConfig, type ConfigFile } from "./validate.js";

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
    if (!existsSync(path) || !statSync(path).isFile()) {
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

/** A config file read, expanded and checked against the schema (names not yet resolved). */
export interface LoadedConfig {
  /** The file's absolute path, or `<config object>`. */
  readonly file: string;
  /** Where relative paths in the file start: the file's directory (or `cwd` for an object). */
  readonly dir: string;
  readonly source: ConfigSource;
  readonly config: ConfigFile;
  /** JSON Pointers of values that were one whole `${…}` reference. */
  readonly references: ReadonlySet<string>;
  /** The environment variables it reads. */
  readonly variables: ReadonlySet<string>;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Reads a config file (or takes an object), expands `${VAR}` / `${VAR:-default}` and checks it
 * against `schema.json`. `${DGENT_CONFIG_DIR}` is the file's directory unless the environment
 * sets it. Errors: `DGENT_CONFIG_NOT_FOUND`, `DGENT_CONFIG_SYNTAX`, `DGENT_CONFIG_ENV_MISSING`,
 * `DGENT_CONFIG_INVALID`, each naming the file, the path inside it and the line.
 */
export function loadConfig(pathOrObject: string | object, options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  let source: ConfigSource;
  let dir: string;
  if (typeof pathOrObject === "string") {
    const file = resolve(cwd, pathOrObject);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw dgentError(code === "ENOENT" ? "DGENT_CONFIG_NOT_FOUND" : "DGENT_CONFIG_INVALID", `cannot read the config file ${file}: ${code ?? String(error)}`, {
        unit: "config",
        cause: error,
        details: { file },
      });
    }
    source = parseSource(text, file);
    dir = dirname(file);
  } else {
    source = objectSource(structuredClone(pathOrObject));
    dir = cwd;
  }
  const expansion = expandEnv(source, env, { DGENT_CONFIG_DIR: dir });
  const config = validateConfig(source, expansion.data, expansion.references);
  return { file: source.file, dir, source, config, references: expansion.references, variables: expansion.variables };
}
