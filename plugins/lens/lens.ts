import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { dgentError } from "../../core/errors.js";
import { formatAjvErrors, type JsonSchema } from "../../core/options-schema.js";
import type { FromSchema } from "./infer.js";

export const UNIT = "lens";

/**
 * A lens from a source `S` to a view `A` (seed 000, "Schema: Opt-In Later"): `get` reads the view
 * out of a source; `put` writes a view back, into `source` when given (a field lens keeps the rest
 * of the object), or from nothing.
 */
export interface Lens<S, A> {
  readonly name: string;
  get(source: S): A;
  put(value: A, source?: S): S;
}

/** A lens from stored bytes to a JSON value checked against a JSON Schema. */
export interface JsonLens<T> extends Lens<Uint8Array, T> {
  readonly schema: JsonSchema;
  /** True when `value` fits the schema (no throw). */
  is(value: unknown): value is T;
  /** ajv's errors for `value`, or `[]` when it fits. */
  check(value: unknown): ErrorObject[];
}

let ajv: Ajv | undefined;
/** Lenses get their own ajv: strict (a misspelt keyword is an error) and never changes the data (no defaults, no coercion). */
function instance(): Ajv {
  ajv ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  return ajv;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function invalid(name: string, what: string, errors: readonly ErrorObject[] | Array<Record<string, unknown>>, cause?: unknown) {
  const text = formatAjvErrors(errors as ErrorObject[]);
  return dgentError("DGENT_LENS_INVALID", `${what} does not fit lens "${name}": ${text}`, {
    unit: UNIT,
    details: { lens: name, errors },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A lens over JSON content, compiled once by ajv. The value's TypeScript type is inferred from the
 * schema (`jsonLens({ type: "object", properties: { name: { type: "string" } }, required: ["name"] })`
 * is a `JsonLens<{ name: string }>`). `get` parses and validates at read time; `put` validates and
 * serialises. Both fail with `DGENT_LENS_INVALID` carrying ajv's errors in `details.errors`.
 */
export function jsonLens<const S extends JsonSchema>(schema: S, options: { name?: string } = {}): JsonLens<FromSchema<S>> {
  type T = FromSchema<S>;
  const name = options.name ?? (typeof schema.title === "string" ? schema.title : "json");
  let validate: ValidateFunction;
  try {
    validate = instance().compile(schema);
  } catch (error) {
    throw dgentError("DGENT_INVALID_OPTIONS", `lens "${name}" has an invalid JSON Schema: ${(error as Error).message}`, { unit: UNIT, cause: error });
  }
  const check = (value: unknown): ErrorObject[] => (validate(value) ? [] : [...(validate.errors ?? [])]);
  return Object.freeze({
    name,
    schema,
    is: (value: unknown): value is T => validate(value),
    check,
    get(source: Uint8Array): T {
      let value: unknown;
      try {
        value = JSON.parse(decoder.decode(source));
      } catch (error) {
        throw invalid(name, "content", [{ instancePath: "", keyword: "json", message: `is not JSON: ${(error as Error).message}` }], error);
      }
      const errors = check(value);
      if (errors.length) throw invalid(name, "content", errors);
      return value as T;
    },
    put(value: T): Uint8Array {
      const errors = check(value);
      if (errors.length) throw invalid(name, "value", errors);
      return encoder.encode(JSON.stringify(value));
    },
  });
}

/** `f >> g`: view through `f`, then through `g`. Associative: `(f >> g) >> h` and `f >> (g >> h)` agree. */
export function compose<S, A, B>(f: Lens<S, A>, g: Lens<A, B>): Lens<S, B> {
  return Object.freeze({
    name: `${f.name} >> ${g.name}`,
    get: (source: S): B => g.get(f.get(source)),
    put: (value: B, source?: S): S => f.put(g.put(value, source === undefined ? undefined : f.get(source)), source),
  });
}

/** Left to right: `pipe(f, g, h)` is `f >> g >> h`. */
export function pipe<S, A, B>(f: Lens<S, A>, g: Lens<A, B>): Lens<S, B>;
export function pipe<S, A, B, C>(f: Lens<S, A>, g: Lens<A, B>, h: Lens<B, C>): Lens<S, C>;
export function pipe<S, A, B, C, D>(f: Lens<S, A>, g: Lens<A, B>, h: Lens<B, C>, i: Lens<C, D>): Lens<S, D>;
export function pipe(...lenses: Lens<unknown, unknown>[]): Lens<unknown, unknown> {
  return lenses.reduce((acc, next) => compose(acc, next));
}

/** The lens that changes nothing (the unit of `compose`). */
export function identity<A>(): Lens<A, A> {
  return Object.freeze({ name: "id", get: (s: A) => s, put: (v: A) => v });
}

/** A property of an object; `put` keeps the other properties of the source. */
export function field<S extends object, K extends keyof S & string>(key: K): Lens<S, S[K]> {
  return Object.freeze({
    name: `.${key}`,
    get: (source: S): S[K] => source[key],
    put: (value: S[K], source?: S): S => ({ ...(source ?? ({} as S)), [key]: value }),
  });
}

/** A reversible conversion (`from(to(a))` is `a`): a lens that needs no source to put. */
export function iso<A, B>(name: string, to: (a: A) => B, from: (b: B) => A): Lens<A, B> {
  return Object.freeze({ name, get: to, put: (value: B) => from(value) });
}
