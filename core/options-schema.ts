import { Ajv, type ErrorObject } from "ajv";
import { dgentError } from "./errors.js";

/** A JSON Schema (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Readonly<Record<string, unknown>>;

export type OptionsValidator = (value: unknown) => unknown;

let ajv: Ajv | undefined;

function instance(): Ajv {
  ajv ??= new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true });
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

/** Compiles a schema once; the validator returns a copy of the options with defaults applied. */
export function compileOptionsSchema(schema: JsonSchema, unit: string): OptionsValidator {
  const validate = instance().compile(schema);
  return (value: unknown) => {
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
