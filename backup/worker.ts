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
function keysOf(raw) {
  let keys = "";
  let at = 0;
  while (at < raw.length) {
    const headerLength = raw.readUInt32BE(at);
    at += 4;
    const header = JSON.parse(raw.toString("utf8", at, at + headerLength));
    at += headerLength;
    const contentLength = raw.readUInt32BE(at);
    at += 4;
    keys += keyOf(header, raw.subarray(at, at + contentLength));
    at += contentLength;
  }
  return keys;
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
    const raw = Buffer.from(job.raw, 0, job.length);
    const keys = job.hash ? keysOf(raw) : "";
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

interface Reply {
  seq: number;
  ok: boolean;
  stored?: ArrayBuffer;
  keys?: string;
  sha256?: string;
  message?: string;
}

/** A `datumKey` is 43 characters of base64url (32 bytes). */
export const KEY_CHARS = 43;

/** One worker thread; jobs are answered in the order they were sent. */
export class ChunkWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (c: SealedChunk) => void; reject: (e: Error) => void }>();
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
      if (reply.ok && reply.stored) job.resolve({ stored: Buffer.from(reply.stored), sha256: reply.sha256 ?? "", keys: reply.keys ?? "" });
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
   * also the `datumKey` of each datum record in it.
   */
  run(raw: Buffer, compression: Compression, hash: boolean): Promise<SealedChunk> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(this.#fail("the backup's chunk worker is closed", false));
    const seq = ++this.#seq;
    // Transfer the chunk's memory when it is its own; copy it when it is a view into a shared one.
    // (Buffers under 4 KiB may share Node's pool; a chunk buffer is at least 64 KiB.)
    const own = raw.byteOffset === 0 && raw.buffer.byteLength >= 64 * 1024 && !(raw.buffer instanceof SharedArrayBuffer);
    const body = own ? raw : Buffer.from(raw);
    const ab = body.buffer as ArrayBuffer;
    return new Promise<SealedChunk>((resolve, reject) => {
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
        this.#worker.postMessage({ seq, raw: ab, length: raw.length, compression, hash }, [ab]);
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
