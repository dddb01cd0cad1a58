/**
 * The backup's chunk worker: one `node:worker_threads` worker that compresses each chunk, takes its
 * SHA-256 and, for the datum chunks of a full backup, the datum hashes (`datumKey`) of its records,
 * while the main thread reads the next rows and encodes them. Chunks go to it and come back as
 * transferred buffers (no copy). On the benchmark machine's 2 cores this takes the datum hashes
 * and the chunk hashes off the thread that reads SQLite (backup/README.md "Speed").
 *
 * The worker's code is the JavaScript text in `worker-source.ts`, run with `eval: true`: it needs
 * no file of its own next to the compiled module (the same under `tsc` output and under Vitest's
 * TypeScript).
 * It must hash exactly as `datumKey` and `datumHashHead` in `format.ts` do; the tests compare
 * the two.
 */
import { Worker } from "node:worker_threads";
import { dgentError, type DgentError } from "../core/errors.js";
import { BROTLI_QUALITY, BROTLI_WINDOW, GZIP_LEVEL } from "./codec.js";
import { UNIT, type Compression } from "./format.js";
import { WORKER_SOURCE } from "./worker-source.js";

export { WORKER_SOURCE };

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
