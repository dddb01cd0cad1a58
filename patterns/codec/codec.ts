/**
 * Codecs: values ↔ the bytes a datum holds. Content stays bytes at the protocol level; the codec's
 * name is recorded in the datum's metadata under `dgent.codec`, so any reader can decode it.
 */
import type { Datum } from "../../compose/index.js";
import { dgentError } from "../../core/errors.js";

/** Error unit of the typed-content pattern. */
export const UNIT = "codec";

/** The reserved metadata key naming the codec a datum's content was written with. */
export const CODEC_KEY = "dgent.codec";

/**
 * Values of `T` to bytes and back. `decode(encode(v))` must equal `v` for every value `encode`
 * accepts; `encode` refuses what would not come back (throw `DGENT_INVALID_CONTENT`). `name` is
 * recorded under `metadata["dgent.codec"]`: one name per byte format, the same in every process.
 */
export interface Codec<T> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** A JSON value: what the `json` codec stores. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function refuse(codec: string, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
  return dgentError("DGENT_INVALID_CONTENT", message, { unit: UNIT, details: { codec, ...details }, ...(cause === undefined ? {} : { cause }) });
}

/** Where a value sits inside the one being encoded, as `$.a.b[2]`. */
function at(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Why `value` would not come back equal from `JSON.parse(JSON.stringify(value))`, or null. Refused:
 * `undefined`, functions, symbols, bigints, non-finite numbers, strings with lone surrogates,
 * objects that are not plain (Date, Map, Set, class instances, typed arrays), sparse arrays,
 * symbol keys and cycles. Storing a function or a closure is the classic mistake this catches.
 */
export function whyNotJson(value: unknown, path = "$", seen?: Set<object>): string | null {
  // The common case, plain JSON, is checked without building a path per key; only a value that
  // fails is walked again to say where and why.
  if (seen === undefined && isPlainJson(value, new Set())) return null;
  return explain(value, path, seen ?? new Set());
}

/** `whyNotJson(value) === null`, without the messages. */
function isPlainJson(value: unknown, seen: Set<object>): boolean {
  switch (typeof value) {
    case "string":
      return value.isWellFormed();
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (seen.has(value)) return false;
  if (Array.isArray(value)) {
    seen.add(value);
    for (let i = 0; i < value.length; i++) if (!(i in value) || !isPlainJson(value[i], seen)) return false;
    seen.delete(value);
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || Object.getOwnPropertySymbols(value).length > 0) return false;
  seen.add(value);
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (!key.isWellFormed() || !isPlainJson((value as Record<string, unknown>)[key], seen)) return false;
  }
  seen.delete(value);
  return true;
}

function explain(value: unknown, path: string, seen: Set<object>): string | null {
  switch (typeof value) {
    case "string":
      return value.isWellFormed() ? null : `the string at ${path} holds a lone UTF-16 surrogate (not UTF-8)`;
    case "boolean":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `${String(value)} at ${path} is not a JSON number (it would come back as null)`;
    case "undefined":
      return `undefined at ${path} is not JSON (it would be dropped)`;
    case "function":
      return `a function at ${path} cannot be stored: store data (e.g. the name of the function), not code`;
    case "symbol":
      return `a symbol at ${path} is not JSON`;
    case "bigint":
      return `a bigint at ${path} is not JSON: store it as a string`;
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) return `the value at ${path} refers to itself (a cycle)`;
  if (Array.isArray(object)) {
    seen.add(object);
    for (let i = 0; i < object.length; i++) {
      if (!(i in object)) return `the array at ${path} has a hole at ${i} (it would come back as null)`;
      const why = explain(object[i], at(path, i), seen);
      if (why) return why;
    }
    seen.delete(object);
    return null;
  }
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? "object";
    const hint = object instanceof Date ? " (it would come back as a string): store date.toISOString() or date.getTime()" : ": convert it to a plain object, array or string";
    return `a ${kind} at ${path} is not plain JSON${hint}`;
  }
  if (Object.getOwnPropertySymbols(object).length > 0) return `the object at ${path} has symbol keys (JSON drops them)`;
  seen.add(object);
  for (const key of Object.keys(object)) {
    if (!key.isWellFormed()) return `a key at ${path} holds a lone UTF-16 surrogate`;
    const why = explain((object as Record<string, unknown>)[key], at(path, key), seen);
    if (why) return why;
  }
  seen.delete(object);
  return null;
}

export interface JsonCodecOptions {
  /**
   * Refuse values that would not come back equal (default true): functions, `undefined`, Dates,
   * Maps, class instances, NaN… With `false`, whatever `JSON.stringify` makes of them is stored.
   */
  strict?: boolean;
}

/** UTF-8 JSON (`dgent.codec: json`). Strict by default: what it stores decodes to an equal value. */
export function jsonCodec<T = Json>(options: JsonCodecOptions = {}): Codec<T> {
  const strict = options.strict ?? true;
  return Object.freeze({
    name: "json",
    encode(value: T): Uint8Array {
      if (strict) {
        const why = whyNotJson(value);
        if (why) throw refuse("json", `the value does not round-trip through JSON: ${why}`);
      }
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (error) {
        throw refuse("json", `the value cannot be written as JSON: ${(error as Error).message}`, {}, error);
      }
      if (text === undefined) throw refuse("json", `the value cannot be written as JSON (JSON.stringify gave nothing for ${typeof value})`);
      return encoder.encode(text);
    },
    decode(bytes: Uint8Array): T {
      try {
        return JSON.parse(decoder.decode(bytes)) as T;
      } catch (error) {
        throw refuse("json", `the content is not UTF-8 JSON: ${(error as Error).message}`, {}, error);
      }
    },
  });
}

/** UTF-8 text (`dgent.codec: text`); invalid UTF-8 fails to decode instead of turning into U+FFFD. */
export const textCodec: Codec<string> = Object.freeze({
  name: "text",
  encode(value: string): Uint8Array {
    if (typeof value !== "string") throw refuse("text", `the text codec stores strings, got ${typeof value}`);
    if (!value.isWellFormed()) throw refuse("text", "the string holds a lone UTF-16 surrogate, which UTF-8 cannot hold");
    return encoder.encode(value);
  },
  decode(bytes: Uint8Array): string {
    try {
      return decoder.decode(bytes);
    } catch (error) {
      throw refuse("text", `the content is not UTF-8: ${(error as Error).message}`, {}, error);
    }
  },
});

/** Bytes as they are (`dgent.codec: bytes`): records that the content is opaque. */
export const bytesCodec: Codec<Uint8Array> = Object.freeze({
  name: "bytes",
  encode(value: Uint8Array): Uint8Array {
    if (!(value instanceof Uint8Array)) throw refuse("bytes", "the bytes codec stores Uint8Arrays");
    return value;
  },
  decode: (bytes: Uint8Array): Uint8Array => bytes,
});

/** The built-in codecs by name: what `decodeDatum` reads with when not told otherwise. */
export const builtInCodecs: Readonly<Record<string, Codec<unknown>>> = Object.freeze({
  json: jsonCodec() as Codec<unknown>,
  text: textCodec as Codec<unknown>,
  bytes: bytesCodec as Codec<unknown>,
});

/** The name of the codec `datum` was written with, or null when it does not record one. */
export function codecOf(datum: Pick<Datum, "metadata">): string | null {
  return Object.hasOwn(datum.metadata, CODEC_KEY) ? (datum.metadata[CODEC_KEY] as string) : null;
}

/** Checks a codec's shape (a third-party one included) once, when a view or agent is made. */
export function assertCodec(codec: unknown): asserts codec is Codec<unknown> {
  const c = codec as Partial<Codec<unknown>> | null;
  if (c === null || typeof c !== "object" || typeof c.name !== "string" || c.name.length === 0 || typeof c.encode !== "function" || typeof c.decode !== "function") {
    throw dgentError("DGENT_INVALID_OPTIONS", "a codec is an object { name, encode(value), decode(bytes) } with a non-empty name", { unit: UNIT });
  }
  if (c.name.includes("\u0000") || !c.name.isWellFormed()) {
    throw dgentError("DGENT_INVALID_OPTIONS", `a codec name is stored as metadata: ${JSON.stringify(c.name)} cannot be`, { unit: UNIT });
  }
}

/**
 * Decodes `datum` with `codec`, naming the datum and the codec when it fails
 * (`DGENT_INVALID_CONTENT`, `details: { id, codec, recorded }`). A datum that records another
 * codec is refused without decoding; one that records none is decoded with `codec`.
 */
export function decodeWith<T>(datum: Datum, codec: Codec<T>): T {
  const recorded = codecOf(datum);
  if (recorded !== null && recorded !== codec.name) {
    throw dgentError(
      "DGENT_INVALID_CONTENT",
      `datum ${JSON.stringify(datum.id)} was written with the codec ${JSON.stringify(recorded)}, not ${JSON.stringify(codec.name)}`,
      { unit: UNIT, details: { id: datum.id, codec: codec.name, recorded } },
    );
  }
  try {
    return codec.decode(datum.content);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw dgentError("DGENT_INVALID_CONTENT", `datum ${JSON.stringify(datum.id)} does not decode with the codec ${JSON.stringify(codec.name)}: ${reason}`, {
      unit: UNIT,
      cause: error,
      details: { id: datum.id, codec: codec.name, recorded },
    });
  }
}

/**
 * Decodes `datum` with the codec its metadata records, looked up in `codecs` (default: json,
 * text, bytes). A datum recording no codec, or one `codecs` does not know, is
 * `DGENT_INVALID_CONTENT` naming the datum and the codec.
 */
export function decodeDatum(datum: Datum, codecs: Readonly<Record<string, Codec<unknown>>> = builtInCodecs): { readonly codec: string; readonly value: unknown } {
  const name = codecOf(datum);
  if (name === null) {
    throw dgentError("DGENT_INVALID_CONTENT", `datum ${JSON.stringify(datum.id)} records no codec (metadata ${JSON.stringify(CODEC_KEY)}); read it with a codec you name`, {
      unit: UNIT,
      details: { id: datum.id, codec: null },
    });
  }
  const codec = Object.hasOwn(codecs, name) ? codecs[name] : undefined;
  if (!codec) {
    throw dgentError("DGENT_INVALID_CONTENT", `datum ${JSON.stringify(datum.id)} was written with the codec ${JSON.stringify(name)}, which this reader does not know (known: ${Object.keys(codecs).join(", ")})`, {
      unit: UNIT,
      details: { id: datum.id, codec: name },
    });
  }
  return { codec: name, value: decodeWith(datum, codec) };
}

/** Encodes `value`, naming the datum (when known) and the codec if the codec refuses it. */
export function encodeWith<T>(value: T, codec: Codec<T>, id?: string): Uint8Array {
  try {
    const bytes = codec.encode(value);
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`encode returned ${typeof bytes}, not a Uint8Array`);
    return bytes;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const what = id === undefined ? "a value" : `the value of datum ${JSON.stringify(id)}`;
    throw dgentError("DGENT_INVALID_CONTENT", `${what} does not encode with the codec ${JSON.stringify(codec.name)}: ${reason}`, {
      unit: UNIT,
      cause: error,
      details: { codec: codec.name, ...(id === undefined ? {} : { id }) },
    });
  }
}
