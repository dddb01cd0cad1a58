/**
 * How datums, headers, refs and transactions travel as JSON over dgent's HTTP API: content is
 * base64, everything else is as the protocol has it. The server and the HTTP tier
 * (`adapters/http`) share these functions, so both ends agree by construction.
 */
import type { Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import type { DatumHeader } from "../core/query.js";
import type { TxOp, TxOpResult } from "../core/refs.js";

/** A datum on the wire: `content` is base64. */
export interface WireDatum {
  readonly id: string;
  readonly content: string;
  readonly createdAt: number;
  readonly causalParent: string | null;
  readonly metadata: Readonly<Record<string, string>>;
}

export type WireTxOp =
  | { readonly op: "put"; readonly datum: WireDatum }
  | Exclude<TxOp, { readonly op: "put" }>;

export function toWire(datum: Datum): WireDatum {
  const bytes = datum.content;
  return {
    id: datum.id,
    content: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
    createdAt: datum.createdAt,
    causalParent: datum.causalParent,
    metadata: datum.metadata,
  };
}

/** A page item on the wire: a whole datum, a header (no content) or an id. */
export function itemToWire(item: Datum | DatumHeader | string): WireDatum | DatumHeader | string {
  return typeof item === "string" || !("content" in item) ? item : toWire(item as Datum);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The bytes of a base64 string, or `null` when it is not base64 (length a multiple of 4, the
 * standard alphabet, at most two `=` at the end). Decoded straight into a Uint8Array of its own
 * (no pooled Buffer, no second copy). A string the encoder would give back unchanged is base64 by
 * construction, so the regex (several µs on a 1 KiB datum, more than decoding it) only runs for the
 * rare string that is not canonical (non-zero padding bits, or not base64 at all).
 */
export function decodeBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const out = new Uint8Array(Buffer.byteLength(text, "base64"));
  const view = Buffer.from(out.buffer, 0, out.byteLength);
  const written = view.write(text, "base64");
  if (written === out.byteLength && view.toString("base64") === text) return out;
  if (!BASE64.test(text)) return null;
  return written === out.byteLength ? out : out.slice(0, written);
}

/**
 * A wire datum back to a datum. Only the transport is checked here (content must be base64);
 * the store checks the datum itself, with the same codes as in-process.
 */
export function fromWire(value: unknown): Datum {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw dgentError("DGENT_INVALID_DATUM", "a datum must be a JSON object { id, content (base64), createdAt, causalParent, metadata }");
  }
  const w = value as Record<string, unknown>;
  const content = typeof w.content === "string" ? decodeBase64(w.content) : null;
  if (content === null) {
    throw dgentError("DGENT_INVALID_CONTENT", "content must be a base64 string on the wire", { details: { id: typeof w.id === "string" ? w.id : null } });
  }
  return {
    id: w.id as string,
    content,
    createdAt: w.createdAt as number,
    causalParent: (w.causalParent === undefined ? null : w.causalParent) as string | null,
    metadata: (w.metadata === undefined ? {} : w.metadata) as Record<string, string>,
  };
}

export function fromWireItem(item: unknown): Datum | DatumHeader | string {
  if (typeof item === "string") return item;
  if (item !== null && typeof item === "object" && "content" in item) return fromWire(item);
  return item as DatumHeader;
}

export function txOpToWire(op: TxOp): WireTxOp {
  return op.op === "put" ? { op: "put", datum: toWire(op.datum) } : op;
}

export function txOpFromWire(value: unknown): TxOp {
  if (value !== null && typeof value === "object" && (value as { op?: unknown }).op === "put") {
    return { op: "put", datum: fromWire((value as { datum?: unknown }).datum) };
  }
  return value as TxOp;
}

export type { TxOpResult };

/** The JSON body of every error answer. */
export interface WireError {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly retryable: boolean;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}
