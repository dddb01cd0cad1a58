import type * as AjvModule from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import { lazyRequire } from "../../core/lazy.js";

/** Loaded with the first config validated. */
const ajvModule = lazyRequire<typeof AjvModule>("ajv");
import { nearest } from "../../core/registry.js";
import type { JsonSchema } from "../../core/options-schema.js";
import CONFIG_SCHEMA from "./schema.json" with { type: "json" };
import { isSecretKey, redactString } from "./redact.js";
import { configProblem, pathText, pointerPath, type ConfigPath } from "./problem.js";
import type { ConfigSource } from "./source.js";

/** The config file, as its JSON Schema (`compose/config/schema.json`) describes it. */
export interface ConfigFile {
  $schema?: string;
  version?: 1;
  namespace?: string;
  dataDir?: string;
  modules?: string[];
  tiers: TierEntry[];
  landing?: string;
  upgrader?: { enabled?: boolean; intervalMs?: number | string; sizeBytes?: number | string; ageMs?: number | string };
  journalPath?: string;
  probeBackoffMs?: { min?: number | string; max?: number | string };
  maxChainDepth?: number;
  plugins?: PluginEntry[];
  retention?: RetentionEntry[];
}

/** A retention policy as a file writes it: durations may carry units (`90d`). */
export interface RetentionEntry {
  name?: string;
  prefix?: string;
  where?: Record<string, unknown>;
  keepForever?: true;
  deleteAfterMs?: number | string;
  moveTo?: string;
  moveAfterMs?: number | string;
}

export type TierEntry = string | { adapter: string; options?: Record<string, unknown> };
export type PluginEntry = string | { plugin: string; options?: Record<string, unknown> };

/** The published schema of the config file. */
export const configSchema: JsonSchema = CONFIG_SCHEMA;

export interface Problem {
  readonly path: ConfigPath;
  readonly message: string;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  compiled ??= new (ajvModule().Ajv)({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true }).compile(CONFIG_SCHEMA);
  return compiled;
}

/**
 * Checks expanded config data against the schema. Strings that were one whole `${…}` reference
 * are turned into the number or boolean the schema asks for. Throws `DGENT_CONFIG_INVALID`
 * naming the first problem (by position in the file); `details.problems` lists them all.
 */
export function validateConfig(source: ConfigSource, data: unknown, references: ReadonlySet<string>): ConfigFile {
  const validate = validator();
  for (let round = 0; ; round++) {
    if (validate(data)) return data as ConfigFile;
    if (round < 4 && coerceReferences(data, validate.errors ?? [], references)) continue;
    throw problemsError("DGENT_CONFIG_INVALID", source, describeAjvErrors(validate.errors ?? [], CONFIG_SCHEMA, data));
  }
}

/** Throws one error for a list of problems, naming the first (in file order) and counting the rest. */
export function problemsError(code: "DGENT_CONFIG_INVALID" | "DGENT_INVALID_OPTIONS", source: ConfigSource, problems: readonly Problem[], cause?: unknown) {
  const sorted = [...problems].sort((a, b) => (source.locate(a.path)?.line ?? 0) - (source.locate(b.path)?.line ?? 0));
  const first = sorted[0] ?? { path: [], message: "invalid" };
  const more = sorted.length > 1 ? ` (and ${sorted.length - 1} more: ${sorted.slice(1, 4).map((p) => pathText(p.path)).join(", ")}${sorted.length > 4 ? ", …" : ""})` : "";
  return configProblem(code, source, first.path, `${first.message}${more}`, {
    ...(cause !== undefined ? { cause } : {}),
    details: {
      problems: sorted.map((p) => {
        const pos = source.locate(p.path);
        return { path: pathText(p.path), message: p.message, ...(pos ? { line: pos.line, column: pos.column } : {}) };
      }),
    },
  });
}

/** Converts whole-reference strings where a type error asks for a number or boolean. */
export function coerceReferences(data: unknown, errors: readonly ErrorObject[], references: ReadonlySet<string>, base = ""): boolean {
  let changed = false;
  for (const e of errors) {
    if (e.keyword !== "type" || !references.has(base + e.instancePath)) continue;
    const path = pointerPath(e.instancePath);
    const parent = path.length ? getAt(data, path.slice(0, -1)) : null;
    const key = path[path.length - 1];
    if (parent === null || typeof parent !== "object" || key === undefined) continue;
    const text = (parent as Record<string | number, unknown>)[key];
    if (typeof text !== "string") continue;
    const wanted = ([] as string[]).concat((e.params as { type: string | string[] }).type);
    let value: unknown = undefined;
    if (wanted.includes("integer") && /^\s*-?\d+\s*$/.test(text)) value = Number(text);
    else if (wanted.includes("number") && text.trim() !== "" && Number.isFinite(Number(text))) value = Number(text);
    else if (wanted.includes("boolean") && /^(true|false)$/i.test(text.trim())) value = text.trim().toLowerCase() === "true";
    if (value !== undefined) {
      (parent as Record<string | number, unknown>)[key] = value;
      changed = true;
    }
  }
  return changed;
}

function getAt(data: unknown, path: ConfigPath): unknown {
  let node = data;
  for (const s of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[s];
  }
  return node;
}

/** The sub-schema at a data path, following `properties`, `items`, `anyOf` branches and local `$ref`s. */
function schemaAt(root: JsonSchema, path: ConfigPath): JsonSchema[] {
  const deref = (s: JsonSchema): JsonSchema => {
    const ref = s.$ref;
    if (typeof ref === "string" && ref.startsWith("#/")) {
      return deref(getAt(root, ref.slice(2).split("/")) as JsonSchema);
    }
    return s;
  };
  let current: JsonSchema[] = [deref(root)];
  for (const segment of path) {
    const next: JsonSchema[] = [];
    const expand = (s: JsonSchema) => {
      for (const branch of (s.anyOf ?? s.oneOf ?? []) as JsonSchema[]) expand(deref(branch));
      if (typeof segment === "number" && s.items && typeof s.items === "object") next.push(deref(s.items as JsonSchema));
      const props = s.properties as Record<string, JsonSchema> | undefined;
      if (typeof segment === "string" && props?.[segment]) next.push(deref(props[segment]));
    };
    current.forEach(expand);
    current = next;
  }
  return current.flatMap((s) => [s, ...((s.anyOf ?? s.oneOf ?? []) as JsonSchema[]).map(deref)]);
}

/**
 * ajv's errors as one problem per place, in words: unknown keys with the nearest allowed key,
 * missing keys, the expected type. Alternatives (`anyOf`) that do not fit the value's type are
 * dropped so that a misspelt key inside `{ adapter, options }` is not drowned in "must be string".
 */
export function describeAjvErrors(errors: readonly ErrorObject[], schema: JsonSchema, data: unknown, base: ConfigPath = []): Problem[] {
  // A type or anyOf error is noise when something more specific was found at or under its place.
  const deeper = (e: ErrorObject) =>
    errors.some(
      (o) =>
        o !== e &&
        (o.instancePath.startsWith(`${e.instancePath}/`) || (o.instancePath === e.instancePath && o.keyword !== "type" && o.keyword !== "anyOf")),
    );
  const out: Problem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if ((e.keyword === "type" || e.keyword === "anyOf") && deeper(e)) continue;
    const path = pointerPath(e.instancePath);
    let message: string;
    if (e.keyword === "anyOf") {
      const types = errors.filter((o) => o.keyword === "type" && o.instancePath === e.instancePath).flatMap((o) => ([] as string[]).concat((o.params as { type: string }).type));
      message = `expected ${[...new Set(types)].map(article).join(" or ") || "another shape"}, got ${shown(data, path)}`;
    } else if (e.keyword === "type") {
      if (errors.some((o) => o.keyword === "anyOf" && o.instancePath === e.instancePath)) continue;
      message = `expected ${([] as string[]).concat((e.params as { type: string }).type).map(article).join(" or ")}, got ${shown(data, path)}`;
    } else if (e.keyword === "additionalProperties") {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = schemaAt(schema, path).flatMap((s) => Object.keys((s.properties as object | undefined) ?? {}));
      const near = nearest(key, allowed);
      message = `unknown key "${key}"${near ? `; did you mean "${near}"?` : ""}${allowed.length ? ` Allowed: ${[...new Set(allowed)].join(", ")}.` : ""}`;
      path.push(key);
    } else if (e.keyword === "required") {
      message = `missing the required key "${(e.params as { missingProperty: string }).missingProperty}"`;
    } else if (e.keyword === "pattern") {
      const described = schemaAt(schema, path).map((s) => s.description).find((d): d is string => typeof d === "string");
      message = `${shown(data, path)} does not fit${described ? `: ${described}` : ` the pattern ${String((e.params as { pattern: string }).pattern)}`}`;
    } else if (e.keyword === "enum") {
      message = `expected one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(", ")}, got ${shown(data, path)}`;
    } else if (e.keyword === "const") {
      message = `expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${shown(data, path)}`;
    } else {
      message = `${e.message ?? e.keyword}, got ${shown(data, path)}`;
    }
    const full = [...base, ...path];
    const key = `${pathText(full)}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ path: full, message });
  }
  return out;
}

function article(type: string): string {
  const names: Record<string, string> = { string: "a string", integer: "an integer", number: "a number", boolean: "true or false", object: "an object (a map of keys)", array: "a list", null: "null" };
  return names[type] ?? type;
}

function shown(data: unknown, path: ConfigPath): string {
  if (path.some((s) => typeof s === "string" && isSecretKey(s))) return "a value not shown here (a secret)";
  return describe(getAt(data, path));
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  const text = JSON.stringify(typeof value === "string" ? redactString(value) : value);
  return `${typeof value === "string" ? "the string " : ""}${text.length > 60 ? `${text.slice(0, 57)}…` : text}`;
}
