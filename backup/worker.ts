/**
 * The backup's chunk worker: one `node:worker_threads` worker that compresses each chunk, takes its
 * SHA-256 and, for the datum chunks of a full backup, the datum hashes (`datumKey`) of its records,
 * while the main thread reads the next rows and encodes them. Chunks go to it and come back as
 * transferred buffers (no copy). On the benchmark machine's 2 cores this takes the datum hashes
 * and the chunk hashes off the thread that reads SQLite (backup/README.md "Speed").
 *
 * The worker's code is the JavaScript text below, run with `eval: true`: it needs no file of its
 * own next to the compiled module (the same under `tsc` output and under Vitest's TypeScript).
 * It must hash exactly as `datumKey` and `datumHashHead` in `format.ts` do; the tests compare
 * the two.
 */
import { Worker } from "node:worker_threads";
import { dgentError, type DgentError } from "../core/errors.js";
import { BROTLI_QUALITY, BROTLI_WINDOW, GZIP_LEVEL } from "./codec.js";
import { UNIT, type Compression } from "./format.js";

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

/** What the worker gives back for one chunk. */
export interface SealedChunk {
  /** The compressed bytes. */
  readonly stored: Buffer;
  /** SHA-256 (hex) of `stored`. */
  readonly sha256: string;
  /** For a hashed datum chunk: each record's `datumKey` (43 characters each), in record order; else "". */
  readonly keys: string;
}

/** A full backup's index as the worker wrote it (`ChunkWorker.finishIndex`). */
export interface WorkerIndex {
  /** The index chunks in order: compressed lines, their SHA-256, records and raw size. */
  readonly chunks: ReadonlyArray<SealedChunk & { readonly records: number; readonly rawBytes: number }>;
  /** `stateDigestOfKeys` of the kept entries. */
  readonly stateDigest: string;
  /** Entries kept (datums in the state). */
  readonly state: number;
}

interface Reply {
  seq: number;
  ok: boolean;
  stored?: ArrayBuffer;
  /** Where the stored bytes are in `stored`. */
  offset?: number;
  length?: number;
  keys?: string;
  sha256?: string;
  message?: string;
  chunks?: Array<{ stored: ArrayBuffer; sha256: string; records: number; rawBytes: number }>;
  stateDigest?: string;
  state?: number;
}

/**
 * A buffer's memory to transfer to the worker: its own when the buffer is all of it, else a copy.
 * (Buffers under 4 KiB may share Node's pool; a chunk buffer is at least 64 KiB.)
 */
function handOver(b: Buffer): ArrayBuffer {
  const own = b.byteOffset === 0 && b.buffer.byteLength >= 64 * 1024 && !(b.buffer instanceof SharedArrayBuffer);
  return (own ? b : Buffer.from(b)).buffer as ArrayBuffer;
}

/** A `datumKey` is 43 characters of base64url (32 bytes). */
export const KEY_CHARS = 43;

/** One worker thread; jobs are answered in the order they were sent. */
export class ChunkWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #seq = 0;
  #failure: DgentError | null = null;
  #closed = false;

  /** `source`: the worker's code (tests pass a failing one). */
  constructor(source: string = WORKER_SOURCE) {
    this.#worker = new Worker(source, { eval: true, workerData: { brotliQuality: BROTLI_QUALITY, brotliWindow: BROTLI_WINDOW, gzipLevel: GZIP_LEVEL } });
    this.#worker.on("message", (reply: Reply) => {
      const job = this.#pending.get(reply.seq);
      if (!job) return;
      this.#pending.delete(reply.seq);
      if (reply.ok) job.resolve(reply);
      else job.reject(this.#fail(`a chunk could not be compressed: ${reply.message ?? "unknown error"}`, false));
    });
    this.#worker.on("error", (error) => this.#failAll(`the backup's chunk worker failed: ${error.message}`, error));
    this.#worker.on("exit", (code) => {
      if (!this.#closed) this.#failAll(`the backup's chunk worker stopped (exit code ${code})`);
    });
    // An idle worker does not keep the process alive; a job in flight does (see `run`).
    this.#worker.unref();
  }

  #fail(message: string, sticky: boolean, cause?: unknown): DgentError {
    const error = dgentError("DGENT_BACKEND_ERROR", message, { unit: UNIT, cause });
    if (sticky && !this.#failure) this.#failure = error;
    return error;
  }

  #failAll(message: string, cause?: unknown): void {
    const error = this.#fail(message, true, cause);
    for (const job of this.#pending.values()) job.reject(error);
    this.#pending.clear();
  }

  /**
   * Compresses `raw` (handed over: the caller must not use it again) and hashes it; with `hash`,
   * also the `datumKey` of each datum record in it: given back in `keys`, or, with `keep`, kept in
   * the worker for `finishIndex`.
   */
  async run(raw: Buffer, compression: Compression, hash: boolean, keep = false): Promise<SealedChunk> {
    const ab = handOver(raw);
    const reply = await this.#send({ raw: ab, length: raw.length, compression, hash, keep }, [ab]);
    if (!reply.stored) throw this.#fail("the backup's chunk worker gave no bytes for a chunk", false);
    return { stored: Buffer.from(reply.stored, reply.offset ?? 0, reply.length ?? reply.stored.byteLength), sha256: reply.sha256 ?? "", keys: reply.keys ?? "" };
  }

  /**
   * The index of the records hashed with `keep`, sorted by id: its chunks of `chunkBytes` raw
   * bytes, compressed and hashed, and the state digest. Call after every `run` has settled.
   */
  async finishIndex(chunkBytes: number, compression: Compression): Promise<WorkerIndex> {
    const reply = await this.#send({ index: true, chunkBytes, compression }, []);
    return {
      chunks: (reply.chunks ?? []).map((c) => ({ stored: Buffer.from(c.stored), sha256: c.sha256, keys: "", records: c.records, rawBytes: c.rawBytes })),
      stateDigest: reply.stateDigest ?? "",
      state: reply.state ?? 0,
    };
  }

  #send(message: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(this.#fail("the backup's chunk worker is closed", false));
    const seq = ++this.#seq;
    return new Promise<Reply>((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      const done = () => {
        if (this.#pending.size === 0 && !this.#closed) this.#worker.unref();
      };
      this.#pending.set(seq, {
        resolve: (c) => {
          resolve(c);
          done();
        },
        reject: (e) => {
          reject(e);
          done();
        },
      });
      try {
        this.#worker.postMessage({ seq, ...message }, transfer);
      } catch (error) {
        this.#pending.delete(seq);
        done();
        reject(this.#fail(`a chunk could not be handed to the backup's chunk worker: ${(error as Error).message}`, false, error));
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#pending.values()) job.reject(this.#fail("the backup's chunk worker was closed with a chunk in flight", false));
    this.#pending.clear();
    await this.#worker.terminate();
  }
}

/** How `backup()` gets its worker (tests replace `create` to make one fail). */
export const chunkWorkers = {
  create: (): ChunkWorker => new ChunkWorker(),
};
