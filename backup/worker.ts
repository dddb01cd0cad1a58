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
import { BROTLI_QUALITY, GZIP_LEVEL } from "./codec.js";
import { UNIT, type Compression } from "./format.js";

/** The worker's source (CommonJS, run with `eval: true`). */
export const WORKER_SOURCE = String.raw`
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const zlib = require("node:zlib");
const crypto = require("node:crypto");
const oneShot = typeof crypto.hash === "function" ? crypto.hash : undefined;
let scratch = Buffer.allocUnsafe(64 * 1024);
// datumHashHead + datumKey of format.ts, from a record's header JSON and its content bytes.
function keyOf(h, content) {
  let head = h.id + "\0" + h.createdAt + "\0" + (h.causalParent ?? "\u0001") + "\0";
  const metadata = h.metadata ?? {};
  const keys = Object.keys(metadata);
  if (keys.length > 1) keys.sort();
  for (const k of keys) head += k + "\0" + metadata[k] + "\0";
  const need = head.length * 3 + content.length;
  if (oneShot === undefined || need > 16 * 1048576) return crypto.createHash("sha256").update(head).update(content).digest("base64url");
  if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  const at = scratch.write(head, 0, "utf8");
  content.copy(scratch, at);
  return oneShot("sha256", scratch.subarray(0, at + content.length), "base64url");
}
// A full backup's index, kept here rather than on the main thread (whose heap then stays small:
// its collections are cheap while it reads millions of rows): ids, createdAts and keys by record.
const ids = [];
const createdAts = [];
const kept = [];
function keysOf(raw, keep) {
  let keys = "";
  let at = 0;
  while (at < raw.length) {
    const headerLength = raw.readUInt32BE(at);
    at += 4;
    const header = JSON.parse(raw.toString("utf8", at, at + headerLength));
    at += headerLength;
    const contentLength = raw.readUInt32BE(at);
    at += 4;
    const key = keyOf(header, raw.subarray(at, at + contentLength));
    if (keep) {
      ids.push(header.id);
      createdAts.push(header.createdAt);
      kept.push(key);
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
// The kept index in id order (UTF-16 code unit order, byCodePoint of format.ts): its chunks of
// lines (encodeIndexLine: key TAB createdAt TAB id LF), compressed and hashed, and the state digest
// (stateDigestOfKeys: each id's UTF-8, then its hash's 32 bytes).
function finishIndex(job) {
  const order = new Array(ids.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
  const digest = crypto.createHash("sha256");
  let block = Buffer.allocUnsafe(2 ** 20);
  let blockAt = 0;
  const chunks = [];
  const transfer = [];
  let buf = Buffer.allocUnsafe(job.chunkBytes + 65536);
  let size = 0;
  let records = 0;
  const flush = () => {
    if (records === 0) return;
    const raw = buf.subarray(0, size);
    const stored = own(compress(raw, job.compression));
    chunks.push({ stored: stored.buffer, sha256: crypto.createHash("sha256").update(stored).digest("hex"), records, rawBytes: size });
    transfer.push(stored.buffer);
    buf = Buffer.allocUnsafe(job.chunkBytes + 65536);
    size = 0;
    records = 0;
  };
  for (const i of order) {
    const id = ids[i];
    const key = kept[i];
    const line = key + "\t" + createdAts[i] + "\t" + id + "\n";
    if (size + line.length * 3 > buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, size + line.length * 3));
      buf.copy(bigger, 0, 0, size);
      buf = bigger;
    }
    size += buf.write(line, size, "utf8");
    records++;
    if (size >= job.chunkBytes) flush();
    const need = id.length * 3 + 48;
    if (blockAt + need > block.length) {
      digest.update(block.subarray(0, blockAt));
      blockAt = 0;
      if (need > block.length) block = Buffer.allocUnsafe(need);
    }
    blockAt += block.write(id, blockAt, "utf8");
    blockAt += block.write(key, blockAt, "base64url");
  }
  flush();
  digest.update(block.subarray(0, blockAt));
  return { message: { chunks, stateDigest: digest.digest("hex"), state: ids.length }, transfer };
}
const outputBuffer = (expected) => Math.min(Math.max(expected, 64 * 1024), 64 * 2 ** 20);
function compress(raw, compression) {
  const chunkSize = outputBuffer(raw.length);
  if (compression === "gzip") return zlib.gzipSync(raw, { level: workerData.gzipLevel, chunkSize });
  if (compression === "brotli") {
    return zlib.brotliCompressSync(raw, { chunkSize, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: workerData.brotliQuality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
  }
  return raw;
}
parentPort.on("message", (job) => {
  try {
    if (job.index) {
      const { message, transfer } = finishIndex(job);
      parentPort.postMessage({ seq: job.seq, ok: true, ...message }, transfer);
      return;
    }
    const raw = Buffer.from(job.raw, 0, job.length);
    const keys = job.hash ? keysOf(raw, job.keep) : "";
    let stored = compress(raw, job.compression);
    if (stored.byteOffset !== 0 || stored.length !== stored.buffer.byteLength) {
      const own = Buffer.allocUnsafeSlow(stored.length);
      stored.copy(own);
      stored = own;
    }
    const sha256 = crypto.createHash("sha256").update(stored).digest("hex");
    parentPort.postMessage({ seq: job.seq, ok: true, stored: stored.buffer, keys, sha256 }, [stored.buffer]);
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
  keys?: string;
  sha256?: string;
  message?: string;
  chunks?: Array<{ stored: ArrayBuffer; sha256: string; records: number; rawBytes: number }>;
  stateDigest?: string;
  state?: number;
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
    this.#worker = new Worker(source, { eval: true, workerData: { brotliQuality: BROTLI_QUALITY, gzipLevel: GZIP_LEVEL } });
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
    // Transfer the chunk's memory when it is its own; copy it when it is a view into a shared one.
    // (Buffers under 4 KiB may share Node's pool; a chunk buffer is at least 64 KiB.)
    const own = raw.byteOffset === 0 && raw.buffer.byteLength >= 64 * 1024 && !(raw.buffer instanceof SharedArrayBuffer);
    const ab = (own ? raw : Buffer.from(raw)).buffer as ArrayBuffer;
    const reply = await this.#send({ raw: ab, length: raw.length, compression, hash, keep }, [ab]);
    if (!reply.stored) throw this.#fail("the backup's chunk worker gave no bytes for a chunk", false);
    return { stored: Buffer.from(reply.stored), sha256: reply.sha256 ?? "", keys: reply.keys ?? "" };
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
