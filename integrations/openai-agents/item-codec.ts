/**
 * How a session item becomes bytes: UTF-8 JSON, where a `Uint8Array` (a tool output's image or
 * file `data`) is written as `{ "$dgent.bytes": "<base64>" }` and read back as a `Uint8Array`.
 * Fields set to `undefined` are left out, as `JSON.stringify` does. Recorded as
 * `dgent.codec: openai-agents.item`; pass `{ [ITEM_CODEC_NAME]: itemCodec }` to `decodeDatum`.
 */
import type { Codec } from "../../patterns/codec/codec.js";

export const ITEM_CODEC_NAME = "openai-agents.item";
const BYTES = "$dgent.bytes";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `this[key]` is the value before `toJSON` (a Buffer's turns it into { type, data }).
  const original = this[key];
  if (original instanceof Uint8Array) return { [BYTES]: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString("base64") };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const encoded = (value as Record<string, unknown>)[BYTES];
    if (keys.length === 1 && typeof encoded === "string") return new Uint8Array(Buffer.from(encoded, "base64"));
  }
  return value;
}

/** The codec of session items (JSON with bytes kept as bytes). */
export function itemCodec<T>(): Codec<T> {
  return Object.freeze({
    name: ITEM_CODEC_NAME,
    encode(value: T): Uint8Array {
      const text = JSON.stringify(value, replacer);
      if (text === undefined) throw new TypeError(`a session item is an object, got ${typeof value}`);
      return encoder.encode(text);
    },
    decode(bytes: Uint8Array): T {
      return JSON.parse(decoder.decode(bytes), reviver) as T;
    },
  });
}

/** Structural equality of two JSON-like values (key order ignored; bytes compared by value). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((byte, i) => byte === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
