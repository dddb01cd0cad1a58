import { configProblem, type ConfigPath } from "./problem.js";
import type { ConfigSource } from "./source.js";

/** What expansion produced besides the new value. */
export interface Expansion {
  readonly data: unknown;
  /**
   * JSON Pointers of strings that were one whole `${…}` reference: their text may stand for a
   * number or a boolean, and validation converts them where the schema asks for one.
   */
  readonly references: ReadonlySet<string>;
  /** Names of the variables that were read (set or not). */
  readonly variables: ReadonlySet<string>;
}

/**
 * Expands `${VAR}` and `${VAR:-default}` in every string value (not in keys). `${VAR}` must be
 * set (it may be empty); `${VAR:-default}` takes the default when VAR is unset or empty, and the
 * default may itself hold references. `$$` is a literal `$`. A value that is exactly `${VAR:-}`
 * and comes out empty leaves its key (or array item) out: an optional setting. `fallback` holds
 * variables that apply when the environment lacks them (`DGENT_CONFIG_DIR`).
 */
export function expandEnv(
  source: ConfigSource,
  env: NodeJS.ProcessEnv,
  fallback: Readonly<Record<string, string>> = {},
): Expansion {
  const references = new Set<string>();
  const variables = new Set<string>();
  const lookup = (name: string): string | undefined => env[name] ?? fallback[name];

  const expandString = (text: string, path: ConfigPath): string => {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const ch = text[i] as string;
      if (ch === "$" && text[i + 1] === "$") {
        out += "$";
        i += 2;
      } else if (ch === "$" && text[i + 1] === "{") {
        const end = closing(text, i + 2);
        if (end < 0) {
          throw configProblem("DGENT_CONFIG_INVALID", source, path, `unclosed "\${" in ${JSON.stringify(text)} (write $$ for a literal $)`);
        }
        out += resolve(text.slice(i + 2, end), path);
        i = end + 1;
      } else {
        out += ch;
        i++;
      }
    }
    return out;
  };

  const resolve = (body: string, path: ConfigPath): string => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([\s\S]*))?$/.exec(body);
    if (!m) {
      throw configProblem(
        "DGENT_CONFIG_INVALID",
        source,
        path,
        `"\${${body}}" is not a variable reference; write \${NAME} or \${NAME:-default} (NAME: letters, digits and _)`,
      );
    }
    const name = m[1] as string;
    variables.add(name);
    const value = lookup(name);
    const operator = m[2];
    if (operator === undefined) {
      if (value === undefined) {
        throw configProblem(
          "DGENT_CONFIG_ENV_MISSING",
          source,
          path,
          `the environment variable ${name} is not set; set it, or give a default: \${${name}:-default}`,
          { details: { variable: name } },
        );
      }
      return value;
    }
    const useDefault = operator === ":-" ? value === undefined || value === "" : value === undefined;
    return useDefault ? expandString(m[3] ?? "", path) : (value as string);
  };

  const walk = (value: unknown, path: (string | number)[]): { keep: boolean; value: unknown } => {
    if (typeof value === "string") {
      if (!value.includes("$")) return { keep: true, value };
      const whole = value.startsWith("${") && closing(value, 2) === value.length - 1;
      const expanded = expandString(value, path);
      if (whole) references.add(pointer(path));
      const optional = /^\$\{[A-Za-z_][A-Za-z0-9_]*:-\}$/.test(value);
      return { keep: !(optional && expanded === ""), value: expanded };
    }
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      value.forEach((item, index) => {
        const r = walk(item, [...path, index]);
        if (r.keep) out.push(r.value);
      });
      return { keep: true, value: out };
    }
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        const r = walk(item, [...path, key]);
        if (r.keep) out[key] = r.value;
      }
      return { keep: true, value: out };
    }
    return { keep: true, value };
  };

  return { data: walk(source.data, []).value, references, variables };
}

/** The index of the `}` that closes a reference whose body starts at `from` (nesting allowed). */
function closing(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "{") {
      depth++;
      i++;
    } else if (text[i] === "}" && --depth === 0) {
      return i;
    }
  }
  return -1;
}

export function pointer(path: readonly (string | number)[]): string {
  return path.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}
