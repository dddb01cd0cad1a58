import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { dgentError } from "../../core/errors.js";
import { expandEnv } from "./expand.js";
import { objectSource, parseSource, type ConfigSource } from "./source.js";
import { validateConfig, type ConfigFile } from "./validate.js";

// Finding the file needs none of the parsing and validation below: it lives in find.ts, which a
// command line imports alone (start-up time).
export { CONFIG_FILE_NAMES, findConfig, type ConfigOrigin, type FindConfigOptions, type FoundConfig } from "./find.js";

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
      const what = code === "EISDIR" ? `${file} is a directory, not a config file` : `cannot read the config file ${file}: ${code ?? String(error)}`;
      throw dgentError(code === "ENOENT" || code === "EISDIR" ? "DGENT_CONFIG_NOT_FOUND" : "DGENT_CONFIG_INVALID", what, {
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
