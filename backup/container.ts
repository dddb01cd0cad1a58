/**
 * Where archives live, and local archives: one packed file (`<backupId>.dgbk`: chunk frames, the
 * manifest, a trailer); a directory of them is a repository. Buckets are in `bucket.ts`, the
 * parsing of `--to` / `--from` in `location.ts`. Every chunk is checked against the manifest on
 * read; see FORMAT.md.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fdatasync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, write as writeAsync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { dgentError, isDgentError } from "../core/errors.js";
import { parseManifest, UNIT, type ChunkEntry, type Manifest } from "./format.js";

export const ARCHIVE_EXTENSION = ".dgbk";
const MAGIC = Buffer.from("DGENTBK\u0001", "latin1");
const FRAME_MAGIC = Buffer.from("DGCK", "latin1");
const TRAILER_MAGIC = Buffer.from("DGBKEND1", "latin1");
const TRAILER_BYTES = 24;
export const MANIFEST_NAME = "manifest.json";

/** An archive being written; invisible to readers until `finish`. */
export interface ArchiveWriter {
  readonly name: string;
  writeChunk(name: string, bytes: Buffer): Promise<void>;
  finish(manifest: Buffer): Promise<void>;
  abort(): Promise<void>;
}

/** A finished archive: its manifest, read and checked, and its chunks, each checked on read. */
export interface ArchiveReader {
  readonly name: string;
  readonly manifest: Manifest;
  /** The chunk's stored bytes after checking their size and SHA-256 against the manifest. */
  readChunk(entry: ChunkEntry): Promise<Buffer>;
  close(): Promise<void>;
}

/** A place holding archives: a directory, or a bucket prefix. */
export interface Repository {
  readonly location: string;
  /** Every archive's manifest (archives whose manifest cannot be read come back as errors). */
  list(): Promise<Array<{ name: string; reader: ArchiveReader | null; error: Error | null }>>;
  open(backupId: string): Promise<ArchiveReader | null>;
  create(backupId: string): Promise<ArchiveWriter>;
  /** Deletes an archive (`name` as `list` gives it): the manifest first, so readers never see half of one. */
  remove(name: string): Promise<void>;
  /** Small side files next to the archives (the all-namespaces indexes): `name` has no `/`. */
  readNote(name: string): Promise<Buffer | null>;
  /** Writes a side file whole (a temporary name, then a rename, where the container can). */
  writeNote(name: string, bytes: Buffer): Promise<void>;
  /** The side files whose names start with `prefix`, sorted. */
  listNotes(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export function checkChunk(bytes: Buffer, entry: ChunkEntry, archive: string): Buffer {
  if (bytes.length < entry.storedBytes) {
    throw dgentError("DGENT_BACKUP_TRUNCATED", `chunk ${entry.name} of ${archive} is cut short: ${bytes.length} of ${entry.storedBytes} bytes`, {
      unit: UNIT,
      details: { archive, chunk: entry.name },
    });
  }
  if (bytes.length !== entry.storedBytes || sha256(bytes) !== entry.sha256) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `chunk ${entry.name} of ${archive} does not match its SHA-256 in the manifest: the archive was changed or damaged`, {
      unit: UNIT,
      details: { archive, chunk: entry.name },
    });
  }
  return bytes;
}

// ---------------------------------------------------------------- packed files

function frameHeader(name: string, length: number): Buffer {
  const n = Buffer.from(name, "utf8");
  const h = Buffer.allocUnsafe(4 + 4 + n.length + 8);
  FRAME_MAGIC.copy(h, 0);
  h.writeUInt32BE(n.length, 4);
  n.copy(h, 8);
  h.writeBigUInt64BE(BigInt(length), 8 + n.length);
  return h;
}

/** Writes `<path>.partial`, renamed to `path` by `finish` (so a crash never leaves a half archive under the name). */
/** Bytes written between two background syncs of a packed file. */
const SYNC_EVERY = 64 * 2 ** 20;

/** `syncEvery`: bytes between two background syncs (tests make it small). */
export function packedWriter(path: string, syncEvery = SYNC_EVERY): ArchiveWriter {
  mkdirSync(dirname(path), { recursive: true });
  const partial = `${path}.partial`;
  const fd = openSync(partial, "w");
  let offset = 0;
  const write = (b: Buffer) => {
    let done = 0;
    while (done < b.length) done += writeSync(fd, b, done, b.length - done);
    offset += b.length;
  };
  /** The same, in libuv's thread pool: a chunk's bytes are written while the main thread goes on. */
  const writeOff = async (b: Buffer) => {
    let done = 0;
    while (done < b.length) {
      done += await new Promise<number>((resolve, reject) => writeAsync(fd, b, done, b.length - done, null, (error, n) => (error ? reject(error) : resolve(n))));
    }
    offset += b.length;
    if (syncing === null && offset - synced >= syncEvery) syncOff(offset);
  };
  // Every syncEvery bytes, the file is synced in libuv's pool while the backup goes on, so that
  // the sync at the end (before the rename) has little left to wait for.
  let syncing: Promise<void> | null = null;
  let synced = 0;
  let syncError: Error | null = null;
  const syncOff = (upTo: number) => {
    syncing = new Promise<void>((resolve) =>
      fdatasync(fd, (error) => {
        if (error && !syncError) syncError = error;
        synced = upTo;
        syncing = null;
        resolve();
      }),
    );
  };
  write(MAGIC);
  let closed = false;
  return {
    name: path,
    // Callers await each write before the next (backup.ts's write chain): frames never interleave.
    async writeChunk(name, bytes) {
      write(frameHeader(name, bytes.length));
      await writeOff(bytes);
    },
    async finish(manifest) {
      await syncing;
      // A failed sync is reported here: a later one may succeed without the lost pages.
      if (syncError) throw syncError;
      const at = offset;
      const header = frameHeader(MANIFEST_NAME, manifest.length);
      write(header);
      write(manifest);
      const trailer = Buffer.allocUnsafe(TRAILER_BYTES);
      trailer.writeBigUInt64BE(BigInt(at), 0);
      trailer.writeBigUInt64BE(BigInt(header.length + manifest.length), 8);
      TRAILER_MAGIC.copy(trailer, 16);
      write(trailer);
      fsyncSync(fd);
      closeSync(fd);
      closed = true;
      renameSync(partial, path);
    },
    async abort() {
      await syncing;
      if (!closed) closeSync(fd);
      closed = true;
      rmSync(partial, { force: true });
    },
  };
}

function readAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? b : b.subarray(0, done);
}

interface Frame {
  readonly name: string;
  readonly dataOffset: number;
  readonly length: number;
}

/** Walks the frames from the start; stops at `end` (the manifest) or at the first damage. */
function walkFrames(fd: number, size: number, end: number, archive: string): Frame[] {
  const frames: Frame[] = [];
  let at = MAGIC.length;
  const last = () => (frames.length ? frames[frames.length - 1]?.name : "(none)") as string;
  while (at < end) {
    const head = readAt(fd, at, 8);
    if (head.length < 8) {
      throw dgentError("DGENT_BACKUP_TRUNCATED", `${archive} ends inside the frame after chunk ${last()}`, { unit: UNIT, details: { archive, chunk: last() } });
    }
    if (!head.subarray(0, 4).equals(FRAME_MAGIC)) {
      throw dgentError("DGENT_BACKUP_CORRUPT", `${archive} is damaged after chunk ${last()}: no frame starts there`, { unit: UNIT, details: { archive, chunk: last() } });
    }
    const nameLength = head.readUInt32BE(4);
    const rest = readAt(fd, at + 8, Math.min(nameLength, 4096) + 8);
    if (nameLength > 4096 || rest.length < nameLength + 8) {
      const cut = rest.length < nameLength + 8 && at + 8 + nameLength + 8 > size;
      throw dgentError(cut ? "DGENT_BACKUP_TRUNCATED" : "DGENT_BACKUP_CORRUPT", `${archive} is ${cut ? "cut" : "damaged"} in the frame after chunk ${last()}`, {
        unit: UNIT,
        details: { archive, chunk: last() },
      });
    }
    const name = rest.toString("utf8", 0, nameLength);
    const length = Number(rest.readBigUInt64BE(nameLength));
    const dataOffset = at + 8 + nameLength + 8;
    if (dataOffset + length > size) {
      throw dgentError("DGENT_BACKUP_TRUNCATED", `${archive} is cut in chunk ${name}: ${Math.max(0, size - dataOffset)} of ${length} bytes`, {
        unit: UNIT,
        details: { archive, chunk: name },
      });
    }
    frames.push({ name, dataOffset, length });
    at = dataOffset + length;
  }
  return frames;
}

/** Opens a packed archive: the trailer, the manifest (checked against its digest), the chunk frames. */
export function packedReader(path: string): ArchiveReader {
  const archive = path;
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw dgentError("DGENT_BACKUP_CHAIN", `cannot open the archive ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { unit: UNIT, cause: error, details: { archive } });
  }
  try {
    const size = fstatSync(fd).size;
    const magic = readAt(fd, 0, MAGIC.length);
    if (!magic.equals(MAGIC)) {
      if (MAGIC.subarray(0, magic.length).equals(magic)) {
        throw dgentError("DGENT_BACKUP_TRUNCATED", `${archive} is cut before its first chunk (${size} bytes)`, { unit: UNIT, details: { archive, chunk: "(none)" } });
      }
      throw dgentError("DGENT_BACKUP_FORMAT", `${archive} is not a dgent backup archive (no DGENTBK header)`, { unit: UNIT, details: { archive } });
    }
    const trailer = size >= MAGIC.length + TRAILER_BYTES ? readAt(fd, size - TRAILER_BYTES, TRAILER_BYTES) : Buffer.alloc(0);
    if (trailer.length !== TRAILER_BYTES || !trailer.subarray(16).equals(TRAILER_MAGIC)) {
      // No trailer: find where the archive stops being whole, to name the chunk.
      const frames = walkFrames(fd, size, size, archive);
      const last = frames.length ? (frames[frames.length - 1] as Frame).name : "(none)";
      throw dgentError("DGENT_BACKUP_TRUNCATED", `${archive} is cut after chunk ${last}: its manifest and trailer are missing`, { unit: UNIT, details: { archive, chunk: last } });
    }
    const manifestAt = Number(trailer.readBigUInt64BE(0));
    const manifestFrame = Number(trailer.readBigUInt64BE(8));
    if (manifestAt + manifestFrame !== size - TRAILER_BYTES) {
      throw dgentError("DGENT_BACKUP_CORRUPT", `${archive} has a damaged trailer`, { unit: UNIT, details: { archive, chunk: "trailer" } });
    }
    const frames = walkFrames(fd, size - TRAILER_BYTES, size - TRAILER_BYTES, archive);
    const mf = frames.pop();
    if (!mf || mf.name !== MANIFEST_NAME || mf.dataOffset - manifestAt + mf.length !== manifestFrame) {
      throw dgentError("DGENT_BACKUP_CORRUPT", `${archive} has no manifest where its trailer points`, { unit: UNIT, details: { archive, chunk: "manifest" } });
    }
    const manifest = parseManifest(readAt(fd, mf.dataOffset, mf.length), archive);
    const byName = new Map(frames.map((f) => [f.name, f]));
    const reader: ArchiveReader = {
      name: archive,
      manifest,
      async readChunk(entry) {
        const f = byName.get(entry.name);
        if (!f) throw dgentError("DGENT_BACKUP_CORRUPT", `chunk ${entry.name} of ${archive} is listed in the manifest but not in the file`, { unit: UNIT, details: { archive, chunk: entry.name } });
        return checkChunk(readAt(fd, f.dataOffset, f.length), entry, archive);
      },
      async close() {
        closeSync(fd);
      },
    };
    return reader;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** A directory of packed archives. */
export function directoryRepository(dir: string): Repository {
  const pathOf = (backupId: string) => join(dir, `${backupId}${ARCHIVE_EXTENSION}`);
  return {
    location: dir,
    async list() {
      if (!existsSync(dir)) return [];
      const names = readdirSync(dir).filter((n) => n.endsWith(ARCHIVE_EXTENSION)).sort();
      return names.map((n) => {
        const path = join(dir, n);
        try {
          return { name: path, reader: packedReader(path), error: null };
        } catch (error) {
          if (!isDgentError(error)) throw error;
          return { name: path, reader: null, error };
        }
      });
    },
    async open(backupId) {
      // An archive is found by its backupId in its name, else by reading every manifest.
      const direct = pathOf(backupId);
      if (existsSync(direct)) return packedReader(direct);
      for (const entry of await this.list()) {
        if (entry.reader?.manifest.backupId === backupId) return entry.reader;
        await entry.reader?.close();
      }
      return null;
    },
    async create(backupId) {
      return packedWriter(pathOf(backupId));
    },
    async remove(name) {
      rmSync(name, { force: true });
    },
    async readNote(name) {
      const path = join(dir, name);
      return existsSync(path) ? readFileSync(path) : null;
    },
    async writeNote(name, bytes) {
      mkdirSync(dir, { recursive: true });
      const path = join(dir, name);
      writeFileSync(`${path}.partial`, bytes);
      renameSync(`${path}.partial`, path);
    },
    async listNotes(prefix) {
      if (!existsSync(dir)) return [];
      return readdirSync(dir)
        .filter((n) => n.startsWith(prefix) && !n.endsWith(".partial"))
        .sort();
    },
    async close() {},
  };
}

