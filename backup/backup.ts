/**
 * `backup()`: one archive of a tier's namespace, full or incremental on a previous archive.
 * The cut is taken at the start (FORMAT.md "Consistency"); the scan streams datums into chunks
 * that are compressed (and encrypted) while the next chunk fills.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { adapterForUrl } from "../compose/migrate.js";
import { dgentError } from "../core/errors.js";
import { DEFAULT_NAMESPACE } from "../core/paths.js";
import type { Datum } from "../core/datum.js";
import type { Adapter } from "../core/protocol.js";
import { redactUrl } from "../core/redact.js";
import { REFLOG_LIMIT, type Ref } from "../core/refs.js";
import { scanTier } from "../core/tiers.js";
import { sealer, type Sealer } from "./codec.js";
import { chunkWorkers, type ChunkWorker, type SealedChunk } from "./worker.js";
import { putRecordHeader, recordRoom } from "./records.js";
import { packedWriter, type ArchiveReader, type ArchiveWriter, type Repository } from "./container.js";
import { openNamed, parseLocation, repositoryFor, type BucketOptions, type Location } from "./location.js";
import {
  byCodePoint,
  datumKey,
  recordHeader,
  encodeIndexLine,
  encodeRefLine,
  FORMAT_NAME,
  FORMAT_VERSION,
  manifestDigest,
  stateDigestOfKeys,
  UNIT,
  type ChunkEntry,
  type ChunkKind,
  type Compression,
  type Manifest,
  type RecordedMove,
} from "./format.js";
import { readIndex } from "./read.js";

export interface BackupOptions {
  /** The tier to back up: a URL (`sqlite:///…`, `postgres://…`, `jsonl:///…`) or an adapter (opened and closed by the caller). */
  from: string | Adapter;
  /** A `.dgbk` file, a directory, `s3://bucket/prefix/` or `gs://bucket/prefix/`. */
  to: string;
  namespace?: string;
  /**
   * Incremental: only what changed since this archive (a `.dgbk` path or a backupId in the `to`
   * repository), or `"latest"`: the newest archive in the `to` repository (a full backup when
   * there is none).
   */
  base?: string;
  compression?: Compression;
  /** age recipients (`age1…`): the archive's chunks are encrypted to them. */
  recipients?: readonly string[];
  /** age identities to read an encrypted base archive's index. */
  identities?: readonly string[];
  /** Raw bytes per chunk before compression. Default 4 MiB. */
  chunkBytes?: number;
  /** The clock that takes the cut (epoch ms). Default `Date.now`. */
  now?: () => number;
  bucket?: BucketOptions;
  /** Called after each chunk is written (awaited: a caller may hold the backup there). */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

export interface BackupReport {
  readonly archive: string;
  readonly backupId: string;
  readonly kind: "full" | "incremental";
  readonly parent: string | null;
  readonly cut: number;
  /** Datum records written to this archive. */
  readonly datums: number;
  /** Datums in the state at the cut. */
  readonly state: number;
  readonly deletes: number;
  readonly refs: number;
  /** Datums the scan met with createdAt after the cut (left for the next backup). */
  readonly afterCut: number;
  readonly chunks: number;
  readonly rawBytes: number;
  readonly storedBytes: number;
  readonly stateDigest: string;
  readonly archiveDigest: string;
  readonly encrypted: boolean;
  readonly durationMs: number;
}

export function newBackupId(at: number): string {
  return `${new Date(at).toISOString().replace(/[-:.]/g, "")}-${randomBytes(4).toString("hex")}`;
}

/** Chunks handed to the worker and not yet written (each up to `chunkBytes` of raw bytes). */
const MAX_IN_FLIGHT = 3;

/** Writes chunks of one kind: fills a buffer, seals it (compress, encrypt) while the next fills. */
class ChunkStream {
  readonly entries: ChunkEntry[] = [];
  #buf: Buffer;
  #size = 0;
  #records = 0;
  #seq = 0;
  #writing: Promise<void> = Promise.resolve();
  #inFlight = 0;
  rawBytes = 0;
  storedBytes = 0;

  constructor(
    readonly kind: ChunkKind,
    readonly writer: ArchiveWriter,
    readonly compression: Compression,
    readonly seal: Sealer | null,
    readonly limit: number,
    readonly onChunk: () => Promise<void>,
    readonly worker: ChunkWorker,
    /** Set for the datum chunks of a full backup: the worker hashes each record and keeps the index. */
    readonly keepIndex = false,
  ) {
    this.#buf = Buffer.allocUnsafe(limit + 65_536);
  }

  #reserve(bytes: number): void {
    if (this.#size + bytes <= this.#buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#size + bytes));
    this.#buf.copy(bigger, 0, 0, this.#size);
    this.#buf = bigger;
  }

  /** One datum record: u32 header length, header JSON, u32 content length, content. True when the chunk is full: `flush` it. */
  addDatum(d: Datum): boolean {
    const keys = Object.keys(d.metadata);
    const room = recordRoom(d, keys);
    this.#reserve((room < 0 ? recordHeader(d).length * 3 : room) + 8 + d.content.byteLength);
    const b = this.#buf;
    let at = putRecordHeader(b, this.#size + 4, d, keys, room);
    b.writeUInt32BE(at - this.#size - 4, this.#size);
    b.writeUInt32BE(d.content.byteLength, at);
    at += 4;
    b.set(d.content, at);
    this.#size = at + d.content.byteLength;
    this.#records++;
    return this.#size >= this.limit;
  }

  /** One line of text. True when the chunk is full: `flush` it. */
  addLine(text: string): boolean {
    this.#reserve(text.length * 3);
    this.#size += this.#buf.write(text, this.#size, "utf8");
    this.#records++;
    return this.#size >= this.limit;
  }

  async flush(): Promise<void> {
    if (this.#records === 0) return;
    const raw = this.#buf.subarray(0, this.#size);
    const rawBytes = raw.length;
    const records = this.#records;
    const name = `${this.kind}-${String(++this.#seq).padStart(6, "0")}`;
    this.#buf = Buffer.allocUnsafe(this.limit + 65_536);
    this.#size = 0;
    this.#records = 0;
    // Compressing and hashing run on the chunk worker (the chunk's memory handed over) while the
    // scan goes on; at most `MAX_IN_FLIGHT` chunks in flight.
    await this.#enqueue(name, records, rawBytes, this.worker.run(raw, this.compression, this.keepIndex, this.keepIndex));
  }

  /** A chunk the worker already compressed and hashed (a full backup's index), written in turn. */
  async addSealed(done: SealedChunk, records: number, rawBytes: number): Promise<void> {
    await this.#enqueue(`${this.kind}-${String(++this.#seq).padStart(6, "0")}`, records, rawBytes, Promise.resolve(done));
  }

  async #enqueue(name: string, records: number, rawBytes: number, compressed: Promise<SealedChunk>): Promise<void> {
    const sealed = (async () => {
      const done = await compressed;
      if (!this.seal) return done;
      const stored = await this.seal.seal(done.stored);
      return { stored, sha256: createHash("sha256").update(stored).digest("hex"), keys: done.keys };
    })();
    // Its failure surfaces through the write chain below.
    sealed.catch(() => undefined);
    const previous = this.#writing;
    this.#inFlight++;
    this.#writing = (async () => {
      await previous;
      const { stored, sha256 } = await sealed;
      await this.writer.writeChunk(name, stored);
      this.entries.push({ name, kind: this.kind, records, rawBytes, storedBytes: stored.length, sha256 });
      this.rawBytes += rawBytes;
      this.storedBytes += stored.length;
      this.#inFlight--;
      await this.onChunk();
    })();
    // A failure surfaces where the chain is awaited (flush, close), never as an unhandled rejection.
    this.#writing.catch(() => undefined);
    if (this.#inFlight >= MAX_IN_FLIGHT) await previous;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#writing;
  }
}

/** A scan in pages of up to 1024 datums (one `await` per page in the loop that reads them). */
async function* pagesOf(datums: AsyncIterable<Datum>): AsyncIterable<readonly Datum[]> {
  let page: Datum[] = [];
  for await (const d of datums) {
    page.push(d);
    if (page.length >= 1024) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

async function resolveBase(base: string, repository: Repository, location: Location): Promise<ArchiveReader | null> {
  if (base === "latest") return openNamed(location.kind === "file" ? { kind: "directory", path: repository.location } : location, repository);
  if (base.endsWith(".dgbk") || base.includes("/")) {
    const loc = parseLocation(base);
    const repo = await repositoryFor(loc);
    const reader = await openNamed(loc, repo);
    if (!reader) throw dgentError("DGENT_BACKUP_CHAIN", `--base ${base} holds no archive`, { unit: UNIT, details: { archive: base } });
    return reader;
  }
  const reader = await repository.open(base);
  if (!reader) throw dgentError("DGENT_BACKUP_CHAIN", `no archive with backupId ${base} in ${repository.location}`, { unit: UNIT, details: { archive: base } });
  return reader;
}

/**
 * A ref's reflog as the archive records it, oldest move first, ending at the move that gave the
 * ref as listed (moves made after `listRefs` read it are left out), or undefined when the tier
 * keeps no reflog or its log does not reach the listed version.
 */
async function recordedReflog(source: Adapter, ref: Ref): Promise<RecordedMove[] | undefined> {
  if (!source.reflog) return undefined;
  const log = (await source.reflog(ref.name, REFLOG_LIMIT)).reverse();
  let end = log.length - 1;
  while (end >= 0 && !(log[end]?.to === ref.target && log[end]?.version === ref.version)) end--;
  if (end < 0) return undefined;
  return log.slice(0, end + 1).map(({ from, to, version, at, by }) => ({ from, to, version, at, by }));
}

/** Backs up one namespace of a tier. */
export async function backup(options: BackupOptions): Promise<BackupReport> {
  const started = Date.now();
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const compression = options.compression ?? "brotli";
  const chunkBytes = options.chunkBytes ?? 4 * 2 ** 20;
  const location = parseLocation(options.to);
  const repository = await repositoryFor(location, options.bucket);
  let base: ArchiveReader | null = null;
  const source = typeof options.from === "string" ? await adapterForUrl(options.from, namespace, undefined, "migrate-source", { readonly: true }) : options.from;
  const owned = typeof options.from === "string";
  let writer: ArchiveWriter | null = null;
  let worker: ChunkWorker | null = null;
  try {
    if (options.base !== undefined) base = await resolveBase(options.base, repository, location);
    const baseIndex = base ? await readIndex(base, options.identities ?? []) : null;
    if (owned) await source.open();
    // The cut: taken before anything is read.
    const cut = (options.now ?? Date.now)();
    const backupId = newBackupId(cut);
    if (location.kind === "file" && existsSync(location.path)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `${location.path} exists: an archive is never overwritten; choose a new name or a directory`, { unit: UNIT });
    }
    writer = location.kind === "file" ? packedWriter(location.path) : await repository.create(backupId);
    const seal = options.recipients?.length ? await sealer(options.recipients) : null;
    // The total is for the progress callback only: counting costs a pass over the namespace on some tiers.
    const total = options.onProgress && source.stats ? (await source.stats()).count : -1;
    let done = 0;
    const progress = async () => {
      await options.onProgress?.(done, total);
    };
    const chunkWorker = chunkWorkers.create();
    worker = chunkWorker;
    const stream = (kind: ChunkKind, keepIndex = false) => new ChunkStream(kind, writer as ArchiveWriter, compression, seal, chunkBytes, progress, chunkWorker, keepIndex);
    // Refs first: read at the cut, they point at datums the scan will meet.
    const refs: Ref[] = source.capabilities.refs && source.listRefs ? await source.listRefs("") : [];
    // A full backup writes every datum of the state: the worker hashes them from the chunks and
    // keeps the index (sorted, written and digested by the worker after the scan), so this thread's
    // heap does not grow with the state (its garbage collections stay cheap over millions of rows).
    // An increment compares each datum's hash with its parent's before writing the datum, so it
    // hashes them here and keeps the index here.
    const index: Array<[string, number, string]> = [];
    const datums = stream("datums", !baseIndex);
    let written = 0;
    let afterCut = 0;
    // One read snapshot where the tier offers it (`exportDatums`), else its scan; the same
    // datums in the same order either way, so the same chunks.
    for await (const page of source.exportDatums ? source.exportDatums() : pagesOf(scanTier(source))) {
      for (const d of page) {
        done++;
        if (d.createdAt > cut) {
          afterCut++;
          continue;
        }
        if (baseIndex) {
          const key = datumKey(d);
          index.push([d.id, d.createdAt, key]);
          if (baseIndex.get(d.id) === key) continue;
        }
        written++;
        if (datums.addDatum(d)) await datums.flush();
      }
    }
    await datums.close();
    index.sort((a, b) => byCodePoint(a[0], b[0]));
    const deletes = stream("deletes");
    let deleted = 0;
    if (baseIndex) {
      const present = new Set(index.map((e) => e[0]));
      for (const id of [...baseIndex.keys()].sort(byCodePoint)) {
        if (!present.has(id)) {
          deleted++;
          if (deletes.addLine(`${id}\n`)) await deletes.flush();
        }
      }
    }
    await deletes.close();
    const refStream = stream("refs");
    for (const r of refs) if (refStream.addLine(encodeRefLine(r, await recordedReflog(source, r)))) await refStream.flush();
    await refStream.close();
    const indexStream = stream("index");
    let state: number;
    let digest: string;
    if (baseIndex) {
      for (const [id, createdAt, key] of index) if (indexStream.addLine(encodeIndexLine(id, createdAt, key))) await indexStream.flush();
      state = index.length;
      digest = stateDigestOfKeys(index.map(([id, , key]) => [id, key] as const));
    } else {
      const kept = await chunkWorker.finishIndex(chunkBytes, compression);
      if (kept.state !== written) throw dgentError("DGENT_BACKEND_ERROR", `the chunk worker indexed ${kept.state} datums of the ${written} written`, { unit: UNIT });
      for (const c of kept.chunks) await indexStream.addSealed(c, c.records, c.rawBytes);
      state = kept.state;
      digest = kept.stateDigest;
    }
    await indexStream.close();
    const streams = [datums, deletes, refStream, indexStream];
    const body: Omit<Manifest, "archiveDigest"> = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      backupId,
      kind: base ? "incremental" : "full",
      parent: base ? { backupId: base.manifest.backupId, archiveDigest: base.manifest.archiveDigest, cut: base.manifest.cut } : null,
      namespace,
      source: { tier: source.name, url: typeof options.from === "string" ? redactUrl(options.from) : null },
      startedAt: started,
      finishedAt: Date.now(),
      cut,
      compression,
      encryption: seal ? { scheme: "age", recipients: [...(options.recipients ?? [])] } : null,
      counts: { datums: written, state, deletes: deleted, refs: refs.length },
      stateDigest: digest,
      chunks: streams.flatMap((s) => s.entries),
    };
    const manifest: Manifest = { ...body, archiveDigest: manifestDigest(body) };
    await writer.finish(Buffer.from(JSON.stringify(manifest), "utf8"));
    const finished = writer;
    writer = null;
    return {
      archive: finished.name,
      backupId,
      kind: manifest.kind,
      parent: base?.name ?? null,
      cut,
      datums: written,
      state,
      deletes: deleted,
      refs: refs.length,
      afterCut,
      chunks: manifest.chunks.length,
      rawBytes: streams.reduce((n, s) => n + s.rawBytes, 0),
      storedBytes: streams.reduce((n, s) => n + s.storedBytes, 0),
      stateDigest: manifest.stateDigest,
      archiveDigest: manifest.archiveDigest,
      encrypted: seal !== null,
      durationMs: Date.now() - started,
    };
  } finally {
    await worker?.close();
    if (writer) await writer.abort();
    await base?.close();
    if (owned) await source.close();
    await repository.close();
  }
}
