/**
 * The TypeScript type a JSON Schema describes, inferred at compile time (no dependency): write the
 * schema once, get the type from it. Covers the subset agents' payloads use — `type` (one or a
 * list), `properties` + `required`, `items`, `enum`, `const`, `anyOf`/`oneOf`, `nullable`-style
 * `type: ["string", "null"]` — and says `unknown` for anything else (a `$ref`, `allOf`, `not`), so
 * an unsupported keyword never produces a type that lies.
 */
export type FromSchema<S> = S extends boolean
  ? unknown
  : S extends { readonly const: infer C }
    ? C
    : S extends { readonly enum: readonly (infer E)[] }
      ? E
      : S extends { readonly anyOf: readonly (infer A)[] }
        ? FromSchema<A>
        : S extends { readonly oneOf: readonly (infer A)[] }
          ? FromSchema<A>
          : S extends { readonly type: readonly (infer T)[] }
            ? FromType<T, S>
            : S extends { readonly type: infer T }
              ? FromType<T, S>
              : unknown;

type FromType<T, S> = T extends "string"
  ? string
  : T extends "number" | "integer"
    ? number
    : T extends "boolean"
      ? boolean
      : T extends "null"
        ? null
        : T extends "array"
          ? S extends { readonly items: infer I }
            ? FromSchema<I>[]
            : unknown[]
          : T extends "object"
            ? ObjectOf<S>
            : never;

type Required<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjectOf<S> = S extends { readonly properties: infer P }
  ? Simplify<
      { -readonly [K in keyof P as K extends Required<S> ? K : never]: FromSchema<P[K]> } & {
        -readonly [K in keyof P as K extends Required<S> ? never : K]?: FromSchema<P[K]>;
      }
    >
  : S extends { readonly additionalProperties: infer V }
    ? V extends false
      ? Record<string, never>
      : Record<string, FromSchema<V>>
    : Record<string, unknown>;
