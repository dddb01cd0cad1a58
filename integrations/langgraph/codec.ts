/**
 * How the saver's values become datum contents: through the saver's `serde` (LangGraph's
 * `SerializerProtocol`), whose type travels with the bytes. The default serde's type, `json`, is
 * left implicit (UTF-8 JSON: `jq`, the CLI and `decodeDatum(d, { json })` read it); any other is
 * the tag `lg.type`. No other tag is spent on it: on the SQL tiers every tag is an index row.
 */
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type { Datum } from "../../core/datum.js";
import { lg } from "./peers.js";

export const TYPE_TAG = "lg.type";

/** The tags that say how `content` was serialized: none for JSON. */
export function serdeTags(type: string): Record<string, string> {
  return type === "json" ? {} : { [TYPE_TAG]: type };
}

/** The serde type a datum was written with. */
export function serdeType(datum: Pick<Datum, "metadata">): string {
  return datum.metadata[TYPE_TAG] ?? "json";
}

/** Serializes `value`; the bytes and the tags that go with them. */
export async function encode(serde: SerializerProtocol, value: unknown): Promise<{ content: Uint8Array; tags: Record<string, string> }> {
  const [type, content] = await dumpsTyped(serde, value);
  return { content, tags: serdeTags(type) };
}

/** Deeper values are left to the serde (which also handles cycles). */
const PLAIN_DEPTH = 64;
const utf8 = new TextEncoder();

/**
 * True when `JSON.stringify(value)` is what LangGraph's `JsonPlusSerializer` writes for it: only
 * strings, numbers, booleans, null, arrays without holes or `undefined`, and objects whose
 * prototype is `Object.prototype` (or null) without `toJSON`, at most `PLAIN_DEPTH` deep. Its
 * replacer rewrites only what this refuses (`undefined`, Sets, Maps, errors, byte arrays, class
 * instances such as messages); a cycle exceeds the depth.
 */
function plain(value: unknown, depth: number): boolean {
  if (value === null) return true;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return true;
  if (type !== "object" || depth >= PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    for (let i = 0; i < value.length; i++) if (!plain(value[i], depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = value as Record<string, unknown>;
  if (Object.hasOwn(record, "toJSON")) return false;
  for (const key in record) if (!plain(record[key], depth + 1)) return false;
  return true;
}

/**
 * `serde.dumpsTyped(value)`, the same bytes, without the serializer's walk and per-key replacer
 * when the serde is LangGraph's own `JsonPlusSerializer` (its class exactly) and `value` is plain
 * JSON (`plain`); anything else goes through the serde.
 */
export function dumpsTyped(serde: SerializerProtocol, value: unknown): Promise<[string, Uint8Array]> {
  if (Object.getPrototypeOf(serde) === lg.JsonPlusSerializer.prototype && plain(value, 0)) {
    return Promise.resolve(["json", utf8.encode(JSON.stringify(value))]);
  }
  return serde.dumpsTyped(value);
}

const LC = Buffer.from('"lc"');

/**
 * Reads back what `encode` wrote. LangGraph's own `JsonPlusSerializer` parses JSON and then
 * revives, asynchronously and node by node, the objects it marked with an `lc` key (messages,
 * Sets, Maps, errors, `undefined`…); JSON without that key revives to exactly what `JSON.parse`
 * gives, so it is parsed directly (the serializer's own class only: a subclass may read otherwise).
 */
export function decode<T>(serde: SerializerProtocol, datum: Datum): Promise<T> {
  const type = serdeType(datum);
  if (type === "json" && Object.getPrototypeOf(serde) === lg.JsonPlusSerializer.prototype) {
    const bytes = Buffer.from(datum.content.buffer, datum.content.byteOffset, datum.content.byteLength);
    if (bytes.indexOf(LC) < 0) return Promise.resolve(JSON.parse(bytes.toString("utf8")) as T);
  }
  return serde.loadsTyped(type, datum.content) as Promise<T>;
}
