import type * as AjvModule from "ajv";
import type { Ajv, ErrorObject } from "ajv";
import { lazyRequire } from "./lazy.js";
import { dgentError } from "./errors.js";

/** A JSON Schema (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Readonly<Record<string, unknown>>;

export type OptionsValidator = (value: unknown) => unknown;

/** ajv is loaded with the first schema compiled, not with the module. */
const ajvModule = lazyRequire<typeof AjvModule>("ajv");
let ajv: Ajv | undefined;

function instance(): Ajv {
  ajv ??= new (ajvModule().Ajv)({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true });
  return ajv;
}

/** Renders ajv errors as one line each: `/path: message`. */
export function formatAjvErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const where = e.instancePath || "(top level)";
      const extra =
        e.keyword === "additionalProperties"
          ? ` "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`
          : e.keyword === "enum"
            ? ` (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(", ")})`
            : "";
      return `${where}: ${e.message ?? e.keyword}${extra}`;
    })
    .join("; ");
}

/**
 * Compiles a schema once; the validator returns a copy of the options with defaults applied.
 * The flat schemas most tiers declare (an object of string, number, integer, boolean and enum
 * properties with bounds and defaults) are checked by `simpleCheck` without loading ajv; options
 * it does not accept, and every other schema, go to ajv, so errors read exactly as before.
 */
export function compileOptionsSchema(schema: JsonSchema, unit: string): OptionsValidator {
  const simple = simpleCheck(schema);
  let compiled: ReturnType<Ajv["compile"]> | undefined;
  if (simple === null) compiled = instance().compile(schema);
  return (value: unknown) => {
    if (simple !== null && value !== null && typeof value === "object") {
      const copy = cloneOptions(value);
      if (simple(copy)) return copy;
    }
    const validate = (compiled ??= instance().compile(schema));
    const copy = value !== null && typeof value === "object" ? cloneOptions(value) : value;
    if (!validate(copy)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `invalid options for "${unit}": ${formatAjvErrors(validate.errors)}`, {
        unit,
        details: { errors: validate.errors ?? [] },
      });
    }
    return copy;
  };
}

function cloneOptions(value: object): unknown {
  try {
    return structuredClone(value);
  } catch {
    // Options holding functions or class instances: a shallow copy keeps the caller's object intact.
    return Array.isArray(value) ? [...value] : { ...value };
  }
}

type Check = (value: unknown) => boolean;

const PROPERTY_KEYWORDS = new Set(["type", "minLength", "maxLength", "minimum", "maximum", "enum", "default", "description", "title", "items", "minItems", "maxItems", "uniqueItems"]);
const TYPES: Readonly<Record<string, Check>> = {
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number" && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  array: (v) => Array.isArray(v),
};
const isPrimitive = (v: unknown) => v === null || ["string", "number", "boolean"].includes(typeof v);
/** String length as ajv counts it: code points. */
const length = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** The check of one property (or of an array's items, without defaults); null when it uses anything else. */
function propertyCheck(raw: unknown, nested: boolean): Check | null {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const p = raw as Record<string, unknown>;
  if (Object.keys(p).some((k) => !PROPERTY_KEYWORDS.has(k))) return null;
  const parts: Check[] = [];
  if (p.type !== undefined) {
    const t = typeof p.type === "string" ? TYPES[p.type] : undefined;
    if (!t) return null;
    parts.push(t);
  }
  if (p.enum !== undefined) {
    if (!Array.isArray(p.enum) || !p.enum.every(isPrimitive)) return null;
    const allowed = p.enum as unknown[];
    parts.push((v) => allowed.includes(v));
  }
  for (const [k, test] of [
    ["minLength", (v: unknown, n: number) => typeof v !== "string" || length(v) >= n],
    ["maxLength", (v: unknown, n: number) => typeof v !== "string" || length(v) <= n],
    ["minimum", (v: unknown, n: number) => typeof v !== "number" || v >= n],
    ["maximum", (v: unknown, n: number) => typeof v !== "number" || v <= n],
    ["minItems", (v: unknown, n: number) => !Array.isArray(v) || v.length >= n],
    ["maxItems", (v: unknown, n: number) => !Array.isArray(v) || v.length <= n],
  ] as const) {
    const bound = p[k];
    if (bound === undefined) continue;
    if (typeof bound !== "number" || !Number.isFinite(bound)) return null;
    parts.push((v) => test(v, bound));
  }
  if (p.items !== undefined) {
    if (nested || p.type !== "array") return null;
    const item = propertyCheck(p.items, true);
    if (item === null) return null;
    parts.push((v) => !Array.isArray(v) || v.every((x) => x !== undefined && item(x)));
  }
  if (p.uniqueItems !== undefined) {
    if (p.uniqueItems !== true && p.uniqueItems !== false) return null;
    // Only arrays of primitives are checked here; an array holding objects goes to ajv.
    if (p.uniqueItems) parts.push((v) => !Array.isArray(v) || (v.every(isPrimitive) && new Set(v).size === v.length));
  }
  if (p.default !== undefined && (nested || !isPrimitive(p.default))) return null;
  return (v) => parts.every((c) => c(v));
}

/**
 * A checker for a flat object schema, or null when the schema uses anything else (then ajv
 * decides). It answers true only when ajv would accept the value too, having filled in the same
 * defaults (missing or undefined properties, in the schema's order); false means "ask ajv".
 */
function simpleCheck(schema: JsonSchema): Check | null {
  const keys = Object.keys(schema);
  if (schema.type !== "object" || keys.some((k) => !["type", "additionalProperties", "properties", "required", "description", "title"].includes(k))) return null;
  const closed = schema.additionalProperties === false;
  if (schema.additionalProperties !== undefined && !closed) return null;
  const required = schema.required ?? [];
  if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) return null;
  const props = schema.properties ?? {};
  if (typeof props !== "object" || props === null || Array.isArray(props)) return null;
  const checks: Array<{ name: string; check: Check; fallback: unknown; hasDefault: boolean }> = [];
  for (const [name, raw] of Object.entries(props as Record<string, unknown>)) {
    const check = propertyCheck(raw, false);
    if (check === null) return null;
    const fallback = (raw as Record<string, unknown>).default;
    // ajv may check `required` before it fills in defaults: leave that combination to it.
    if (fallback !== undefined && required.includes(name)) return null;
    checks.push({ name, check, fallback, hasDefault: fallback !== undefined });
  }
  const known = new Set(checks.map((c) => c.name));
  return (value) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
    const o = value as Record<string, unknown>;
    for (const c of checks) if (c.hasDefault && o[c.name] === undefined) o[c.name] = c.fallback;
    for (const r of required) if (!Object.hasOwn(o, r) || o[r] === undefined) return false;
    for (const key in o) {
      if (!known.has(key)) {
        if (closed) return false;
        continue;
      }
    }
    for (const c of checks) {
      const v = o[c.name];
      if (v !== undefined && !c.check(v)) return false;
    }
    return true;
  };
}
