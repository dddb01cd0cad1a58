/**
 * Reading archives: one chunk's records (checked, decrypted, decompressed), an archive's index,
 * and the chain of archives a restore as of a time needs.
 */
import { dgentError } from "../core/errors.js";
import { decompress, opener, type Opener } from "./codec.js";
import type { ArchiveReader } from "./container.js";
import { parseLocation, repositoryFor, type BucketOptions } from "./location.js";
import { decodeIndexLine, decodeLines, UNIT, type ChunkEntry, type RecordedRef } from "./format.js";

/** A chunk's raw bytes: read and checked against the manifest, decrypted, decompressed, size checked. */
export async function decodeChunk(reader: ArchiveReader, entry: ChunkEntry, open: Opener | null): Promise<Buffer> {
  const stored = await reader.readChunk(entry);
  const archive = reader.name;
  let compressed = stored;
  if (reader.manifest.encryption) {
    if (!open) throw dgentError("DGENT_BACKUP_DECRYPT", `${archive} is encrypted with age: give --identity FILE`, { unit: UNIT, details: { archive, chunk: entry.name } });
    compressed = await open.open(stored, archive, entry.name);
  }
  let raw: Buffer;
  try {
    raw = await decompress(compressed, reader.manifest.compression, entry.rawBytes);
  } catch (error) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `chunk ${entry.name} of ${archive} does not decompress (${reader.manifest.compression}): ${(error as Error).message}`, {
      unit: UNIT,
      cause: error,
      details: { archive, chunk: entry.name },
    });
  }
  if (raw.length !== entry.rawBytes) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `chunk ${entry.name} of ${archive} decodes to ${raw.length} bytes, not ${entry.rawBytes}`, { unit: UNIT, details: { archive, chunk: entry.name } });
  }
  return raw;
}

const openers = new WeakMap<readonly string[], Promise<Opener>>();
/** An opener for these identities (made once per list). */
export function openerFor(identities: readonly string[]): Promise<Opener> {
  let o = openers.get(identities);
  if (!o) openers.set(identities, (o = opener(identities)));
  return o;
}

/** The state of an archive: id → datum hash (`datumKey`, base64url), from its index chunks, in index (id) order. */
export async function readIndex(reader: ArchiveReader, identities: readonly string[]): Promise<Map<string, string>> {
  const open = reader.manifest.encryption ? await openerFor(identities) : null;
  const index = new Map<string, string>();
  for (const entry of reader.manifest.chunks) {
    if (entry.kind !== "index") continue;
    for (const line of decodeLines(await decodeChunk(reader, entry, open))) {
      const { id, key } = decodeIndexLine(line, reader.name, entry.name);
      index.set(id, key);
    }
  }
  if (index.size !== reader.manifest.counts.state) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `the index of ${reader.name} holds ${index.size} ids, its manifest says ${reader.manifest.counts.state}`, {
      unit: UNIT,
      details: { archive: reader.name, chunk: "index" },
    });
  }
  return index;
}

export async function readRefs(reader: ArchiveReader, identities: readonly string[]): Promise<RecordedRef[]> {
  const open = reader.manifest.encryption ? await openerFor(identities) : null;
  const refs: RecordedRef[] = [];
  for (const entry of reader.manifest.chunks) {
    if (entry.kind !== "refs") continue;
    for (const line of decodeLines(await decodeChunk(reader, entry, open))) refs.push(JSON.parse(line) as RecordedRef);
  }
  return refs;
}

/** Parses `--as-of`: epoch ms, or an ISO 8601 date-time. */
export function parseTime(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(n)) throw dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(text)} is not a time: give epoch milliseconds or an ISO 8601 date-time (2026-12-02T16:00:00Z)`, { unit: UNIT });
  return n;
}

/**
 * The archives a restore reads, oldest (the full backup) first: the archive `from` names (a file,
 * or the newest of a repository), or with `asOf` the newest whose cut is at or before it, then
 * its parents, each checked to be the very archive its child was made on.
 */
export interface Chain {
  /** Oldest (the full backup) first; the last is the archive restored as of. */
  readonly archives: readonly ArchiveReader[];
  close(): Promise<void>;
}

export async function resolveChain(from: string, options: { asOf?: number; bucket?: BucketOptions } = {}): Promise<Chain> {
  const location = parseLocation(from);
  const repository = await repositoryFor(location, options.bucket);
  const all = await repository.list();
  const keep = new Set<ArchiveReader>();
  try {
    const readable = all.filter((a) => a.reader !== null).map((a) => a.reader as ArchiveReader);
    let target: ArchiveReader | undefined;
    if (location.kind === "file") {
      const named = all.find((a) => a.name === location.path);
      if (!named) throw dgentError("DGENT_BACKUP_CHAIN", `there is no archive at ${location.path}`, { unit: UNIT, details: { archive: location.path } });
      if (named.error) throw named.error;
      target = named.reader as ArchiveReader;
      if (options.asOf !== undefined && target.manifest.cut > options.asOf) {
        throw dgentError("DGENT_BACKUP_CHAIN", `${target.name} was cut at ${new Date(target.manifest.cut).toISOString()}, after --as-of; name the repository (its directory) to choose by time`, {
          unit: UNIT,
          details: { archive: target.name },
        });
      }
    } else {
      const eligible = readable.filter((r) => options.asOf === undefined || r.manifest.cut <= options.asOf).sort((a, b) => a.manifest.cut - b.manifest.cut);
      target = eligible[eligible.length - 1];
      if (!target) {
        const broken = all.find((a) => a.error);
        if (broken && options.asOf === undefined) throw broken.error as Error;
        throw dgentError("DGENT_BACKUP_CHAIN", options.asOf === undefined ? `${repository.location} holds no archive` : `${repository.location} holds no archive cut at or before ${new Date(options.asOf).toISOString()}`, {
          unit: UNIT,
          details: { archive: repository.location },
        });
      }
    }
    const chain: ArchiveReader[] = [target];
    for (let at = target; at.manifest.parent; ) {
      const parent = at.manifest.parent;
      const found = readable.find((r) => r.manifest.backupId === parent.backupId);
      if (!found) {
        const broken = all.find((a) => a.error && a.name.includes(parent.backupId));
        if (broken) throw broken.error as Error;
        throw dgentError("DGENT_BACKUP_CHAIN", `${at.name} is an increment on ${parent.backupId}, which is not in ${repository.location}`, {
          unit: UNIT,
          details: { archive: at.name, parent: parent.backupId },
        });
      }
      if (found.manifest.archiveDigest !== parent.archiveDigest) {
        throw dgentError("DGENT_BACKUP_CHAIN", `${found.name} is not the archive ${at.name} was made on (its digest differs)`, { unit: UNIT, details: { archive: at.name, parent: found.name } });
      }
      if (chain.includes(found)) throw dgentError("DGENT_BACKUP_CHAIN", `the chain of ${target.name} loops at ${found.name}`, { unit: UNIT, details: { archive: found.name } });
      chain.unshift(found);
      at = found;
    }
    for (const r of chain) keep.add(r);
    return {
      archives: chain,
      async close() {
        for (const r of chain) await r.close();
        await repository.close();
      },
    };
  } finally {
    for (const a of all) if (a.reader && !keep.has(a.reader)) await a.reader.close();
    if (keep.size === 0) await repository.close();
  }
}
