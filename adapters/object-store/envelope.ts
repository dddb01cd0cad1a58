import type { Datum } from "../../core/datum.js";
import type { DatumHeader } from "../../core/query.js";
import { dgentError } from "../../core/errors.js";

/**
 * How a datum is laid out in its object's body:
 *
 * ```
 * dgent-datum/1 <n>\n          a header line; n = byte length of the JSON that follows
 * {"id":…,"createdAt":…,"causalParent":…,"metadata":{…}}\n
 * <content bytes>
 * ```
 *
 * The envelope travels in the body, not in user-metadata headers: S3 allows only 2 KB of user
 * metadata per object and GCS 8 KiB, and a GCS media download does not return custom metadata at
 * all (it would cost a second request per read). In the body there is no limit short of the
 * object size, one GET returns the whole datum, and `cat` on the object shows the envelope as
 * text followed by the content.
 */

const MAGIC = "dgent-datum/1 ";
/** Longest header line we accept ("dgent-datum/1 " plus up to 12 digits plus "\n"). */
const MAX_HEADER = MAGIC.length + 13;
const NEWLINE = Buffer.from("\n", "latin1");

export const CONTENT_TYPE = "application/vnd.dgent.datum";

export function encodeEnvelope(datum: Datum): Buffer {
  const json = Buffer.from(
    JSON.stringify({
      id: datum.id,
      createdAt: datum.createdAt,
      causalParent: datum.causalParent,
      metadata: datum.metadata,
    }),
    "utf8",
  );
  const header = Buffer.from(`${MAGIC}${json.byteLength}\n`, "latin1");
  const content = datum.content;
  return Buffer.concat([header, json, NEWLINE, Buffer.from(content.buffer, content.byteOffset, content.byteLength)]);
}

/** Bytes of a datum object that hold its header line and envelope, when the envelope is short. */
export const ENVELOPE_PROBE_BYTES = 1024;

/** What the start of a datum object says: its header and where the content starts, or how many bytes are needed. */
export type EnvelopeHead = { readonly header: DatumHeader; readonly contentStart: number } | { readonly need: number };

/**
 * Decodes the header line and envelope from the first bytes of a body written by
 * `encodeEnvelope`, without its content. When `prefix` is too short, `{ need }` is the number of
 * bytes that hold the envelope; with `complete` (the prefix is the whole body) that is an error.
 * Throws `DGENT_BACKEND_ERROR` for anything that is not a datum object.
 */
export function decodeHead(prefix: Uint8Array, where: string, unit: string, complete: boolean): EnvelopeHead {
  const buf = Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const bad = (why: string) =>
    dgentError("DGENT_BACKEND_ERROR", `${where} is not a dgent datum object (${why})`, { unit, details: { where } });
  const magic = buf.subarray(0, MAGIC.length).toString("latin1");
  if (magic !== MAGIC.slice(0, magic.length) || (complete && magic.length < MAGIC.length)) throw bad("no dgent-datum header");
  const eol = buf.indexOf(0x0a, MAGIC.length);
  if (eol < 0 || eol > MAX_HEADER) {
    if (!complete && eol < 0 && buf.byteLength <= MAX_HEADER) return { need: MAX_HEADER + 1 };
    throw bad("header line too long");
  }
  const length = Number(buf.subarray(MAGIC.length, eol).toString("latin1"));
  const start = eol + 1;
  if (!Number.isSafeInteger(length) || length < 2) throw bad("envelope length does not match the body");
  if (start + length + 1 > buf.byteLength) {
    if (!complete) return { need: start + length + 1 };
    throw bad("envelope length does not match the body");
  }
  if (buf[start + length] !== 0x0a) throw bad("envelope length does not match the body");
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.subarray(start, start + length).toString("utf8"));
  } catch {
    throw bad("envelope is not JSON");
  }
  const e = parsed as { id?: unknown; createdAt?: unknown; causalParent?: unknown; metadata?: unknown };
  if (
    typeof e.id !== "string" ||
    typeof e.createdAt !== "number" ||
    (e.causalParent !== null && typeof e.causalParent !== "string") ||
    e.metadata === null ||
    typeof e.metadata !== "object" ||
    Array.isArray(e.metadata)
  ) {
    throw bad("envelope fields have the wrong types");
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.metadata as Record<string, unknown>)) {
    if (typeof v !== "string") throw bad(`metadata ${JSON.stringify(k)} is not a string`);
    Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  const header: DatumHeader = { id: e.id, createdAt: e.createdAt, causalParent: e.causalParent as string | null, metadata };
  return { header, contentStart: start + length + 1 };
}

/** Decodes a body written by `encodeEnvelope`; throws `DGENT_BACKEND_ERROR` for anything else. */
export function decodeEnvelope(body: Uint8Array, where: string, unit: string): Datum {
  const { header: h, contentStart } = decodeHead(body, where, unit, true) as Exclude<EnvelopeHead, { need: number }>;
  // A copy, so the caller owns bytes that no SDK buffer pool can reuse.
  const content = new Uint8Array(body.subarray(contentStart));
  return { id: h.id, content, createdAt: h.createdAt, causalParent: h.causalParent, metadata: h.metadata };
}
