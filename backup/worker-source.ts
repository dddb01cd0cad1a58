/**
 * The source of the backup's chunk worker (`worker.ts`): plain JavaScript (CommonJS), run with
 * `eval: true`, so that it needs no file of its own next to the compiled module. Kept apart from
 * the `ChunkWorker` class that starts it and talks to it.
 */

/** The worker's source (CommonJS, run with `eval: true`). */
export const WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const zlib = require("node:zlib");
const crypto = require("node:crypto");
const oneShot = typeof crypto.hash === "function" ? crypto.hash : undefined;
// Small copies byte by byte: Buffer#copy and Buffer#write cost more in argument checks than the
// few dozen bytes of a hash head or a key (a million calls each per million datums).
function copyBytes(src, from, dst, to, n) {
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
}
// The hash head (datumHashHead of format.ts) of a record whose header is [s, e) of raw, in
// head (grown as needed); its length, with the id's end and createdAt in headId and headCreatedAt.
// The header as recordHeader writes it, {"id":ID,"createdAt":N,"causalParent":P,"metadata":{…}},
// is read byte by byte when its strings are ASCII without escapes and createdAt is an integer
// (no strings are built, no JSON.parse); any other header is parsed as JSON.
let head = Buffer.allocUnsafe(4096);
let headId = 0;
let headCreatedAt = 0;
const pairs = new Int32Array(4 * 64);
const ID = Buffer.from('{"id":"');
const CREATED = Buffer.from('","createdAt":');
const PARENT = Buffer.from(',"causalParent":');
const METADATA = Buffer.from(',"metadata":{');
function expect(raw, at, bytes) {
  if (at + bytes.length > raw.length) return -1;
  for (let i = 0; i < bytes.length; i++) if (raw[at + i] !== bytes[i]) return -1;
  return at + bytes.length;
}
// The end of a JSON string's ASCII text starting at at (after its quote), or -1.
function plainString(raw, at, e) {
  for (; at < e; at++) {
    const c = raw[at];
    if (c === 34) return at;
    if (c < 32 || c === 92 || c >= 128) return -1;
  }
  return -1;
}
function put(src, from, to, at) {
  for (let i = from; i < to; i++) head[at++] = src[i];
  return at;
}
function headOf(raw, s, e) {
  if (head.length < 2 * (e - s) + 16) head = Buffer.allocUnsafe(2 * (e - s) + 4096);
  let at = expect(raw, s, ID);
  if (at < 0) return headOfJson(raw, s, e);
  const idEnd = plainString(raw, at, e);
  if (idEnd < 0) return headOfJson(raw, s, e);
  let h = put(raw, at, idEnd, 0);
  headId = h;
  head[h++] = 0;
  at = expect(raw, idEnd, CREATED);
  if (at < 0) return headOfJson(raw, s, e);
  const negative = raw[at] === 45;
  let n = 0;
  let i = negative ? at + 1 : at;
  const digits = i;
  for (; i < e && raw[i] >= 48 && raw[i] <= 57; i++) n = n * 10 + (raw[i] - 48);
  if (i === digits || i - digits > 15 || (raw[digits] === 48 && i - digits > 1) || (negative && n === 0)) return headOfJson(raw, s, e);
  headCreatedAt = negative ? -n : n;
  h = put(raw, at, i, h);
  head[h++] = 0;
  at = expect(raw, i, PARENT);
  if (at < 0) return headOfJson(raw, s, e);
  if (raw[at] === 110 && raw[at + 1] === 117 && raw[at + 2] === 108 && raw[at + 3] === 108) {
    head[h++] = 1;
    at += 4;
  } else if (raw[at] === 34) {
    const end = plainString(raw, at + 1, e);
    if (end < 0) return headOfJson(raw, s, e);
    h = put(raw, at + 1, end, h);
    at = end + 1;
  } else return headOfJson(raw, s, e);
  head[h++] = 0;
  at = expect(raw, at, METADATA);
  if (at < 0) return headOfJson(raw, s, e);
  // "k":"v" pairs, then }}: their offsets, sorted by key (for ASCII, byte order is keys.sort()'s).
  let count = 0;
  if (raw[at] !== 125) {
    for (;;) {
      if (count === 64 || raw[at] !== 34) return headOfJson(raw, s, e);
      const kEnd = plainString(raw, at + 1, e);
      if (kEnd < 0 || raw[kEnd + 1] !== 58 || raw[kEnd + 2] !== 34) return headOfJson(raw, s, e);
      const vEnd = plainString(raw, kEnd + 3, e);
      if (vEnd < 0) return headOfJson(raw, s, e);
      pairs[4 * count] = at + 1;
      pairs[4 * count + 1] = kEnd;
      pairs[4 * count + 2] = kEnd + 3;
      pairs[4 * count + 3] = vEnd;
      count++;
      at = vEnd + 1;
      if (raw[at] === 44) at++;
      else break;
    }
  }
  if (at + 2 !== e || raw[at] !== 125 || raw[at + 1] !== 125) return headOfJson(raw, s, e);
  for (let p = 1; p < count; p++) {
    for (let q = p; q > 0 && keyAfter(raw, q - 1, q); q--) {
      for (let j = 0; j < 4; j++) {
        const t = pairs[4 * q + j];
        pairs[4 * q + j] = pairs[4 * (q - 1) + j];
        pairs[4 * (q - 1) + j] = t;
      }
    }
  }
  for (let p = 0; p < count; p++) {
    h = put(raw, pairs[4 * p], pairs[4 * p + 1], h);
    head[h++] = 0;
    h = put(raw, pairs[4 * p + 2], pairs[4 * p + 3], h);
    head[h++] = 0;
  }
  return h;
}
// Whether pair a's key sorts after pair b's.
function keyAfter(raw, a, b) {
  let i = pairs[4 * a];
  let j = pairs[4 * b];
  const ie = pairs[4 * a + 1];
  const je = pairs[4 * b + 1];
  for (; i < ie && j < je; i++, j++) if (raw[i] !== raw[j]) return raw[i] > raw[j];
  return ie - i > je - j;
}
// The same from the header parsed as JSON (datumHashHead's own steps).
function headOfJson(raw, s, e) {
  const h = JSON.parse(raw.toString("utf8", s, e));
  let text = h.id + "\0" + h.createdAt + "\0" + (h.causalParent ?? "\u0001") + "\0";
  const metadata = h.metadata ?? {};
  const keys = Object.keys(metadata);
  if (keys.length > 1) keys.sort();
  for (const k of keys) text += k + "\0" + metadata[k] + "\0";
  if (head.length < text.length * 3) head = Buffer.allocUnsafe(text.length * 3 + 4096);
  headId = head.write(String(h.id), 0, "utf8");
  headCreatedAt = h.createdAt;
  return head.write(text, 0, "utf8");
}
let scratch = Buffer.allocUnsafe(64 * 1024);
// datumKey of format.ts: SHA-256 of the hash head (in head) followed by the content, in one call
// over one run of bytes. With inPlace (the chunk is already compressed, so its bytes may change),
// the head is copied over the record's header just before its content (a head is never longer
// than the header JSON and the two lengths it follows); else, head and content are copied side by
// side into a scratch buffer.
function keyOf(headBytes, raw, start, at, contentLength, inPlace) {
  const need = headBytes + contentLength;
  if (oneShot === undefined || need > 16 * 1048576) {
    return crypto.createHash("sha256").update(head.subarray(0, headBytes)).update(raw.subarray(at, at + contentLength)).digest("base64url");
  }
  if (inPlace && at - headBytes >= start) {
    copyBytes(head, 0, raw, at - headBytes, headBytes);
    return oneShot("sha256", new Uint8Array(raw.buffer, raw.byteOffset + at - headBytes, need), "base64url");
  }
  if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  copyBytes(head, 0, scratch, 0, headBytes);
  raw.copy(scratch, headBytes, at, at + contentLength);
  return oneShot("sha256", new Uint8Array(scratch.buffer, scratch.byteOffset, need), "base64url");
}
// A full backup's index, kept here rather than on the main thread (whose heap then stays small:
// its collections are cheap while it reads millions of rows): ids and createdAts by record, and
// their keys (43 base64url characters each) in one buffer outside the heap, which collections skip.
const KEY = 43;
const ids = [];
const createdAts = [];
let keyBytes = Buffer.allocUnsafe(KEY * 65536);
// The datumKey of each record of a datum chunk. inPlace: see keyOf (the chunk's header bytes are
// overwritten: call after compressing).
function keysOf(raw, keep, inPlace) {
  let keys = "";
  let at = 0;
  while (at < raw.length) {
    const start = at;
    const headerLength = raw.readUInt32BE(at);
    at += 4;
    if (at + headerLength + 4 > raw.length) throw new Error("a record is cut");
    const headBytes = headOf(raw, at, at + headerLength);
    at += headerLength;
    const contentLength = raw.readUInt32BE(at);
    at += 4;
    if (at + contentLength > raw.length) throw new Error("a record's content is cut");
    const id = keep ? head.toString("utf8", 0, headId) : "";
    const createdAt = headCreatedAt;
    const key = keyOf(headBytes, raw, start, at, contentLength, inPlace);
    if (keep) {
      const k = ids.length * KEY;
      if (k + KEY > keyBytes.length) {
        const bigger = Buffer.allocUnsafe(keyBytes.length * 2);
        keyBytes.copy(bigger);
        keyBytes = bigger;
      }
      for (let i = 0; i < KEY; i++) keyBytes[k + i] = key.charCodeAt(i);
      ids.push(id);
      createdAts.push(createdAt);
    } else keys += key;
    at += contentLength;
  }
  return keys;
}
function own(buffer) {
  if (buffer.byteOffset === 0 && buffer.length === buffer.buffer.byteLength) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.length);
  buffer.copy(copy);
  return copy;
}
// base64url digit values, to lay a key's 32 bytes into the state digest.
const DIGIT = new Uint8Array(128);
for (let i = 0; i < 64; i++) DIGIT["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".charCodeAt(i)] = i;
function keyBinary(src, s, dst, d) {
  for (let g = 0; g < 10; g++, s += 4, d += 3) {
    const v = (DIGIT[src[s]] << 18) | (DIGIT[src[s + 1]] << 12) | (DIGIT[src[s + 2]] << 6) | DIGIT[src[s + 3]];
    dst[d] = v >> 16;
    dst[d + 1] = (v >> 8) & 255;
    dst[d + 2] = v & 255;
  }
  const v = (DIGIT[src[s]] << 12) | (DIGIT[src[s + 1]] << 6) | DIGIT[src[s + 2]];
  dst[d] = v >> 10;
  dst[d + 1] = (v >> 2) & 255;
  return d + 2;
}
// A string's UTF-8 at at (ASCII byte by byte); the end.
function writeText(buf, at, text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) return at - i + buf.write(text, at - i, "utf8");
    buf[at++] = c;
  }
  return at;
}
// The kept index in id order (UTF-16 code unit order, byCodePoint of format.ts): its chunks of
// lines (encodeIndexLine: key TAB createdAt TAB id LF), compressed (in libuv's pool, at most four
// at a time, while the next lines are laid out) and hashed, and the state digest
// (stateDigestOfKeys: each id's UTF-8, then its hash's 32 bytes).
async function finishIndex(job) {
  const order = new Array(ids.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
  const digest = crypto.createHash("sha256");
  let block = Buffer.allocUnsafe(2 ** 20);
  let blockAt = 0;
  const sealed = [];
  let buf = Buffer.allocUnsafe(job.chunkBytes + 65536);
  let size = 0;
  let records = 0;
  const flush = async () => {
    if (records === 0) return;
    const rawBytes = size;
    const count = records;
    if (sealed.length >= 4) await sealed[sealed.length - 4];
    const chunk = compressOff(buf.subarray(0, size), job.compression).then((out) => {
      const stored = own(out);
      return { stored: stored.buffer, sha256: crypto.createHash("sha256").update(stored).digest("hex"), records: count, rawBytes };
    });
    // A failure surfaces through Promise.all below, never as an unhandled rejection.
    chunk.catch(() => undefined);
    sealed.push(chunk);
    buf = Buffer.allocUnsafe(job.chunkBytes + 65536);
    size = 0;
    records = 0;
  };
  for (const i of order) {
    const id = ids[i];
    const createdAt = "" + createdAts[i];
    const longest = KEY + 3 + createdAt.length + id.length * 3;
    if (size + longest > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, size + longest));
      buf.copy(bigger, 0, 0, size);
      buf = bigger;
    }
    copyBytes(keyBytes, i * KEY, buf, size, KEY);
    size += KEY;
    buf[size++] = 9;
    size = writeText(buf, size, createdAt);
    buf[size++] = 9;
    const idAt = size;
    size = writeText(buf, size, id);
    const idBytes = size - idAt;
    buf[size++] = 10;
    records++;
    if (blockAt + idBytes + 32 > block.length) {
      digest.update(block.subarray(0, blockAt));
      blockAt = 0;
      if (idBytes + 32 > block.length) block = Buffer.allocUnsafe(idBytes + 32);
    }
    copyBytes(buf, idAt, block, blockAt, idBytes);
    blockAt = keyBinary(keyBytes, i * KEY, block, blockAt + idBytes);
    if (size >= job.chunkBytes) await flush();
  }
  await flush();
  digest.update(block.subarray(0, blockAt));
  const chunks = await Promise.all(sealed);
  return { message: { chunks, stateDigest: digest.digest("hex"), state: ids.length }, transfer: chunks.map((c) => c.stored) };
}
const outputBuffer = (expected) => Math.min(Math.max(expected, 64 * 1024), 64 * 2 ** 20);
const brotliParams = (raw) => ({ [zlib.constants.BROTLI_PARAM_QUALITY]: workerData.brotliQuality, [zlib.constants.BROTLI_PARAM_LGWIN]: workerData.brotliWindow, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length });
function compress(raw, compression) {
  const chunkSize = outputBuffer(raw.length);
  if (compression === "gzip") return zlib.gzipSync(raw, { level: workerData.gzipLevel, chunkSize });
  if (compression === "brotli") return zlib.brotliCompressSync(raw, { chunkSize, params: brotliParams(raw) });
  return raw;
}
// The same in libuv's thread pool.
function compressOff(raw, compression) {
  const chunkSize = outputBuffer(raw.length);
  return new Promise((resolve, reject) => {
    const done = (error, out) => (error ? reject(error) : resolve(out));
    if (compression === "gzip") zlib.gzip(raw, { level: workerData.gzipLevel, chunkSize }, done);
    else if (compression === "brotli") zlib.brotliCompress(raw, { chunkSize, params: brotliParams(raw) }, done);
    else resolve(raw);
  });
}
parentPort.on("message", async (job) => {
  try {
    if (job.index) {
      const { message, transfer } = await finishIndex(job);
      parentPort.postMessage({ seq: job.seq, ok: true, ...message }, transfer);
      return;
    }
    const raw = Buffer.from(job.raw, 0, job.length);
    // Compressed first: then, unless stored as is, the records are hashed in place (keyOf).
    const out = compress(raw, job.compression);
    const keys = job.hash ? keysOf(raw, job.keep, out.buffer !== raw.buffer) : "";
    // zlib's output is a view into its output buffer (of about the chunk's size): that buffer is
    // handed back whole rather than copied, unless it is small enough to be Node's shared pool.
    const stored = out.buffer.byteLength >= 65536 ? out : own(out);
    const sha256 = crypto.createHash("sha256").update(stored).digest("hex");
    parentPort.postMessage({ seq: job.seq, ok: true, stored: stored.buffer, offset: stored.byteOffset, length: stored.length, keys, sha256 }, [stored.buffer]);
  } catch (error) {
    parentPort.postMessage({ seq: job.seq, ok: false, message: String((error && error.message) || error) });
  }
});
`;
