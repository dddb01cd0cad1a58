import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";

/**
 * How a datum is stored: one Redis string per datum,
 *
 *     <createdAt> TAB <causalParent or ""> TAB <metadata JSON, keys sorted> LF <content bytes>
 *
 * Ids and metadata JSON hold no TAB or LF (ids refuse control characters; JSON escapes them), so
 * the header ends at the first LF and its fields split at TABs. Everything after the first TAB is
 * the datum's *value* in the append-only law's sense (parent, metadata, content; `createdAt` is
 * not compared), so the put script compares two datums by comparing those byte ranges. Metadata
 * keys are sorted so that equal metadata encodes to equal bytes.
 */

const TAB = 0x09;
const LF = 0x0a;

/** Metadata as canonical JSON: keys sorted (built by hand: `__proto__` stays an own key). */
export function metadataJson(m: Readonly<Record<string, string>>): string {
  const keys = Object.keys(m);
  if (keys.length === 0) return "{}";
  if (keys.length > 1) keys.sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (i > 0) out += ",";
    out += JSON.stringify(k) + ":" + JSON.stringify(m[k]);
  }
  return out + "}";
}

/** The stored bytes of `d`. */
export function encodeDatum(d: Datum): Buffer {
  const header = `${String(d.createdAt)}\t${d.causalParent ?? ""}\t${metadataJson(d.metadata)}\n`;
  const headerBytes = Buffer.byteLength(header);
  const out = Buffer.allocUnsafe(headerBytes + d.content.byteLength);
  out.write(header, 0, "utf8");
  out.set(d.content, headerBytes);
  return out;
}

/** A datum from its id and stored bytes. The content is a view of `value` (a fresh Buffer from the driver). */
export function decodeDatum(id: string, value: Buffer, unit: string): Datum {
  const t1 = value.indexOf(TAB);
  const t2 = t1 < 0 ? -1 : value.indexOf(TAB, t1 + 1);
  const nl = t2 < 0 ? -1 : value.indexOf(LF, t2 + 1);
  if (nl < 0) throw unreadable(id, unit);
  const createdAt = Number(value.toString("latin1", 0, t1));
  const parent = t2 === t1 + 1 ? null : value.toString("utf8", t1 + 1, t2);
  let metadata: Record<string, string>;
  if (nl === t2 + 3) {
    metadata = {};
  } else {
    try {
      metadata = JSON.parse(value.toString("utf8", t2 + 1, nl)) as Record<string, string>;
    } catch {
      throw unreadable(id, unit);
    }
  }
  if (!Number.isFinite(createdAt)) throw unreadable(id, unit);
  return { id, content: value.subarray(nl + 1), createdAt, causalParent: parent, metadata };
}

function unreadable(id: string, unit: string) {
  return dgentError("DGENT_BACKEND_ERROR", `${unit}: the value stored for ${JSON.stringify(id)} is not a dgent datum (written by another program?)`, {
    unit,
    details: { id },
  });
}
