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
  const [type, content] = await serde.dumpsTyped(value);
  return { content, tags: serdeTags(type) };
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
