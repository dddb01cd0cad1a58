import type { IncomingMessage, ServerResponse } from "node:http";
import type { EmulatedObject } from "./gcs-emulator.js";

/** Wire-level pieces of the GCS emulator: checksums, bodies, errors, preconditions, multipart. */

// ---- CRC32C (Castagnoli), as GCS reports it: base64 of the big-endian 32-bit value ----

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = -1;
  for (let i = 0; i < data.length; i++) crc = (CRC_TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

export function crc32cBase64(data: Uint8Array): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(crc32c(data));
  return buf.toString("base64");
}

// ---- helpers ----

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, message: string, reason: string): void {
  sendJson(res, status, { error: { code: status, message, errors: [{ message, domain: "global", reason }] } });
}

export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

export function preconditionsOf(q: URLSearchParams): Preconditions {
  const p: Preconditions = {};
  for (const k of ["ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch"] as const) {
    const v = q.get(k);
    if (v !== null) p[k] = v;
  }
  return p;
}

export function checkPreconditions(obj: EmulatedObject | undefined, p: Preconditions): void {
  const fail = () => {
    throw new HttpError(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet");
  };
  if (p.ifGenerationMatch !== undefined) {
    if (p.ifGenerationMatch === "0" ? obj !== undefined : obj?.generation !== p.ifGenerationMatch) fail();
  }
  if (p.ifGenerationNotMatch !== undefined) {
    if (p.ifGenerationNotMatch === "0" ? obj === undefined : obj?.generation === p.ifGenerationNotMatch) fail();
  }
  if (p.ifMetagenerationMatch !== undefined && obj?.metageneration !== p.ifMetagenerationMatch) fail();
  if (p.ifMetagenerationNotMatch !== undefined && obj?.metageneration === p.ifMetagenerationNotMatch) fail();
}

/** Splits a multipart/related body into its parts (headers lower-cased). */
export function parseMultipart(body: Buffer, contentType: string): { headers: Record<string, string>; data: Buffer }[] {
  const m = /boundary="?([^";]+)"?/i.exec(contentType);
  if (!m) throw new HttpError(400, "multipart upload without a boundary", "invalid");
  const delimiter = Buffer.from(`--${m[1]}`);
  const parts: { headers: Record<string, string>; data: Buffer }[] = [];
  let pos = body.indexOf(delimiter);
  while (pos >= 0) {
    let start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    if (body.subarray(start, start + 2).toString() === "\r\n") start += 2;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    let end = next;
    if (body.subarray(end - 2, end).toString() === "\r\n") end -= 2;
    const part = body.subarray(start, end);
    const split = part.indexOf("\r\n\r\n");
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, split < 0 ? 0 : split).toString("latin1").split("\r\n")) {
      const i = line.indexOf(":");
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, data: split < 0 ? part : part.subarray(split + 4) });
    pos = next;
  }
  return parts;
}

export function lastOf(items: readonly EmulatedObject[], prefixes: readonly string[]): string {
  const a = items[items.length - 1]?.name;
  const b = prefixes[prefixes.length - 1];
  if (a === undefined) return b as string;
  if (b === undefined) return a;
  return compareNames(a, b) > 0 ? a : b;
}
