/**
 * `verifyBackup()`, `restore()` and `restoreDrill()`. A restore resolves the chain (as of a
 * time), checks every chunk of every archive in it before it writes anything, then writes the
 * state of the last archive — each datum from the newest archive holding it with the hash the
 * index records — and the refs, and ends by comparing the target's digest with the recorded one.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { adapterForUrl } from "../compose/migrate.js";
import type { Datum } from "../core/datum.js";
import { dgentError, isDgentError } from "../core/errors.js";
import { defaultDataDir } from "../core/paths.js";
import type { Adapter } from "../core/protocol.js";
import { redactUrl } from "../core/redact.js";
import type { BucketOptions } from "./location.js";
import { datumKey, decodeDatums, decodeLines, stateDigestOfKeys, UNIT, type RecordedMove, type RecordedRef } from "./format.js";
import type { Ref } from "../core/refs.js";
import { decodeChunk, openerFor, readIndex, readRefs, resolveChain, type Chain } from "./read.js";

export interface ReadOptions {
  /** A `.dgbk` file, a directory of archives, `s3://…` or `gs://…`. */
  from: string;
  /** Restore the state as of this time (epoch ms): the newest archive cut at or before it. */
  asOf?: number;
  /** age identities (`AGE-SECRET-KEY-1…`) for encrypted archives. */
  identities?: readonly string[];
  bucket?: BucketOptions;
  /** Called (and awaited) as chunks are checked (`"check"`), then as datum chunks are written (`"write"`). */
  onProgress?: (done: number, total: number, phase: "check" | "write") => void | Promise<void>;
}

export interface VerifyReport {
  readonly archives: ReadonlyArray<{ readonly archive: string; readonly backupId: string; readonly kind: string; readonly cut: number; readonly chunks: number; readonly storedBytes: number }>;
  /** Every chunk's SHA-256 and size matched. */
  readonly checksums: true;
  /** Chunks were also decoded, every datum of the state found with its hash, and the state digest recomputed. False when encrypted and no identity was given. */
  readonly deep: boolean;
  readonly state: number;
  readonly stateDigest: string;
}

/** Checks every chunk against its manifest (and, where it can read them, the records against the index). */
export async function verifyBackup(options: ReadOptions): Promise<VerifyReport> {
  const chain = await resolveChain(options.from, { ...(options.asOf !== undefined ? { asOf: options.asOf } : {}), ...(options.bucket ? { bucket: options.bucket } : {}) });
  try {
    await checkChunks(chain, options.onProgress);
    const last = chain.archives[chain.archives.length - 1] as Chain["archives"][number];
    const identities = options.identities ?? [];
    const deep = chain.archives.every((a) => a.manifest.encryption === null) || identities.length > 0;
    if (deep) {
      const want = await readIndex(last, identities);
      checkStateDigest(want, last.manifest.stateDigest, last.name);
      const found = new Set<string>();
      await eachDatum(chain, identities, want, null, (d) => {
        found.add(d.id);
      });
      const missing = [...want.keys()].find((id) => !found.has(id));
      if (missing !== undefined) {
        throw dgentError("DGENT_BACKUP_CHAIN", `the chain of ${last.name} holds no record of ${JSON.stringify(missing)} with the hash its index records`, { unit: UNIT, details: { archive: last.name } });
      }
    }
    return {
      archives: chain.archives.map((a) => ({
        archive: a.name,
        backupId: a.manifest.backupId,
        kind: a.manifest.kind,
        cut: a.manifest.cut,
        chunks: a.manifest.chunks.length,
        storedBytes: a.manifest.chunks.reduce((n, c) => n + c.storedBytes, 0),
      })),
      checksums: true,
      deep,
      state: last.manifest.counts.state,
      stateDigest: last.manifest.stateDigest,
    };
  } finally {
    await chain.close();
  }
}

async function checkChunks(chain: Chain, onProgress: ReadOptions["onProgress"]): Promise<void> {
  const total = chain.archives.reduce((n, a) => n + a.manifest.chunks.length, 0);
  let done = 0;
  for (const a of chain.archives) {
    for (const entry of a.manifest.chunks) {
      await a.readChunk(entry);
      await onProgress?.(++done, total, "check");
    }
  }
}

function checkStateDigest(want: Map<string, string>, recorded: string, archive: string): void {
  if (stateDigestOfKeys(want) !== recorded) {
    throw dgentError("DGENT_BACKUP_CORRUPT", `the index of ${archive} does not give the state digest its manifest records`, { unit: UNIT, details: { archive, chunk: "index" } });
  }
}

/**
 * Every datum of the state, once, newest archive first, each with the hash the index records
 * (an older record of an id deleted and put again since is passed over). `skip` names chunks
 * (`<backupId>/<chunk>`) a resumed restore has written already.
 */
async function eachDatum(
  chain: Chain,
  identities: readonly string[],
  want: Map<string, string>,
  skip: Set<string> | null,
  visit: (d: Datum, chunkDone: string | null) => void | Promise<void>,
  afterChunk?: (key: string) => Promise<void>,
): Promise<{ expiry: number }> {
  const seen = new Set<string>();
  let expiry = 0;
  // Every datum chunk of the chain, newest archive first; the next chunk is read and decoded
  // (in zlib's thread pool) while the records of the current one are written.
  const work: Array<{ a: Chain["archives"][number]; entry: Chain["archives"][number]["manifest"]["chunks"][number] }> = [];
  for (const a of [...chain.archives].reverse()) for (const entry of a.manifest.chunks) if (entry.kind === "datums") work.push({ a, entry });
  const decode = async (i: number): Promise<Buffer> => {
    const { a, entry } = work[i] as (typeof work)[number];
    return decodeChunk(a, entry, a.manifest.encryption ? await openerFor(identities) : null);
  };
  let next: Promise<Buffer> | null = work.length > 0 ? decode(0) : null;
  for (let i = 0; i < work.length; i++) {
    const { a, entry } = work[i] as (typeof work)[number];
    const key = `${a.manifest.backupId}/${entry.name}`;
    const raw = await (next as Promise<Buffer>);
    next = i + 1 < work.length ? decode(i + 1) : null;
    // A failure of the prefetch surfaces when it is awaited, never as an unhandled rejection.
    next?.catch(() => undefined);
    const resumed = skip?.has(key) === true;
    for (const { datum, expiresAt } of decodeDatums(raw, a.name, entry.name)) {
      const recorded = want.get(datum.id);
      if (recorded === undefined || seen.has(datum.id) || datumKey(datum) !== recorded) continue;
      seen.add(datum.id);
      if (expiresAt !== null) expiry++;
      if (resumed) continue;
      // Awaited only when the visit is asynchronous (a batch went out): no await per datum.
      const visited = visit(datum, null);
      if (visited) await visited;
    }
    await afterChunk?.(key);
  }
  await next?.catch(() => undefined);
  return { expiry };
}

export interface RestoreOptions extends ReadOptions {
  /** The tier to restore into: a URL or an adapter (opened and closed by the caller). */
  to: string | Adapter;
  namespace?: string;
  /** Check and report only; the target is opened read-only and nothing is written. */
  dryRun?: boolean;
  /** Where progress is kept so an interrupted restore resumes (default under the data dir). */
  checkpointPath?: string;
  /** Datums per write (default 2000; two writes are in flight at a time). */
  batchSize?: number;
}

export interface RestoreReport {
  readonly from: string;
  readonly to: string;
  readonly dryRun: boolean;
  readonly chain: readonly string[];
  readonly asOf: number | null;
  readonly cut: number;
  /** Datums in the restored state. */
  readonly state: number;
  /**
   * Written by this run (dry run: would be written). Through a tier's bulk import
   * (`importDatums`: Postgres) only the datums it stored count, not ids the target held already;
   * through `putMany` every datum sent counts (its repeated puts are no-ops).
   */
  readonly written: number;
  /** Already in the target with the same value (dry run only; a restore's repeated puts are no-ops). */
  readonly alreadyPresent: number;
  /** Ids the target holds with a different value: left as they are. */
  readonly conflicts: readonly string[];
  readonly refs: number;
  /**
   * Of those, refs restored with their version and reflog as recorded (their history replayed:
   * the target did not hold them, or held them part-way through an interrupted replay).
   */
  readonly refsExact: number;
  /** Chunks a previous, interrupted run had written. */
  readonly resumedChunks: number;
  /** Datums carrying an expiry, which this protocol version cannot restore (reserved field). */
  readonly expiryNotRestored: number;
  /** The restored ids in the target give the recorded state digest (null on a dry run). */
  readonly verified: boolean | null;
  readonly stateDigest: string;
  readonly targetDigest: string | null;
  readonly durationMs: number;
}

/** Restores the state of an archive (as of a time, across its chain) into a tier. */
export async function restore(options: RestoreOptions): Promise<RestoreReport> {
  const started = Date.now();
  const identities = options.identities ?? [];
  const dryRun = options.dryRun === true;
  const chain = await resolveChain(options.from, { ...(options.asOf !== undefined ? { asOf: options.asOf } : {}), ...(options.bucket ? { bucket: options.bucket } : {}) });
  const last = chain.archives[chain.archives.length - 1] as Chain["archives"][number];
  const namespace = options.namespace ?? last.manifest.namespace;
  let target: Adapter | null = null;
  const owned = typeof options.to === "string";
  let targetOpen = false;
  try {
    // 1. Every chunk of every archive is checked before anything is written.
    await checkChunks(chain, options.onProgress);
    // 2. The state to restore; an encrypted archive with no usable identity fails here.
    const want = await readIndex(last, identities);
    checkStateDigest(want, last.manifest.stateDigest, last.name);
    const refs = await readRefs(last, identities);
    for (const a of chain.archives) {
      const first = a.manifest.chunks[0];
      if (a.manifest.encryption && first) await decodeChunk(a, first, await openerFor(identities));
    }
    target = typeof options.to === "string" ? await adapterForUrl(options.to, namespace, undefined, "migrate-target", { readonly: dryRun }) : options.to;
    let targetExists = true;
    if (owned) {
      try {
        await target.open();
        targetOpen = true;
      } catch (error) {
        if (!(dryRun && isDgentError(error) && (error.details.missing === true || error.details.reason === "25006"))) throw error;
        targetExists = false;
      }
    }
    if (refs.length > 0 && (!target.capabilities.refs || !target.getRef || !target.setRef)) {
      throw dgentError("DGENT_UNSUPPORTED", `the archive holds ${refs.length} refs and the tier ${target.name} has no refs; nothing was restored`, {
        unit: UNIT,
        details: { tier: target.name, capability: "refs" },
      });
    }
    const checkpointPath =
      options.checkpointPath ??
      join(defaultDataDir(), "restores", `${createHash("sha256").update(`${last.manifest.archiveDigest}\n${typeof options.to === "string" ? options.to : options.to.name}\n${namespace}`).digest("hex").slice(0, 16)}.json`);
    const done = dryRun ? new Set<string>() : readCheckpoint(checkpointPath);
    const resumedChunks = done.size;
    const conflicts: string[] = [];
    let written = 0;
    let alreadyPresent = 0;
    let batch: Datum[] = [];
    const inFlight: Array<Promise<void>> = [];
    const batchSize = options.batchSize ?? 2_000;
    const tier = target;
    const flush = async () => {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      if (dryRun) {
        const found = targetExists ? await getAll(tier, items.map((d) => d.id)) : items.map(() => null);
        items.forEach((d, i) => {
          const there = found[i];
          if (!there) written++;
          else if (datumKey(there) === datumKey(d)) alreadyPresent++;
          else conflicts.push(d.id);
        });
        return;
      }
      // The oldest write is awaited before this one is sent (not after): the batch after this one
      // is decoded and checked while this one and the one before are in flight.
      if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift();
      const write = putBatch(tier, items, conflicts).then((n) => {
        written += n;
      });
      write.catch(() => undefined);
      inFlight.push(write);
    };
    const drain = async () => {
      while (inFlight.length > 0) await inFlight.shift();
    };
    const totalChunks = chain.archives.reduce((n, a) => n + a.manifest.chunks.filter((c) => c.kind === "datums").length, 0);
    let chunksDone = 0;
    // A chunk counts as written (checkpointed, reported) only when every batch of it and before
    // it is. Its batches stay in flight while the next chunk is decoded, checked and sent, so the
    // target and this process work at the same time; the chunk before is awaited at the end of
    // each chunk, so a failed write or a progress callback that throws stops the restore within
    // a chunk, and a callback that holds holds the restore.
    let previous: Promise<void> = Promise.resolve();
    const settleChunk = (key: string): Promise<void> => {
      const writes = [...inFlight];
      const settled = previous.then(async () => {
        await Promise.all(writes);
        if (!dryRun && !done.has(key)) {
          done.add(key);
          writeCheckpoint(checkpointPath, done);
        }
        await options.onProgress?.(++chunksDone, totalChunks, "write");
      });
      settled.catch(() => undefined);
      return settled;
    };
    let expiry: number;
    try {
      ({ expiry } = await eachDatum(
        chain,
        identities,
        want,
        done,
        (d) => {
          batch.push(d);
          return batch.length >= batchSize ? flush() : undefined;
        },
        async (key) => {
          await flush();
          const before = previous;
          previous = settleChunk(key);
          await before;
        },
      ));
      await flush();
      await drain();
      await previous;
    } catch (error) {
      // Nothing is left running against the target when the restore fails.
      await Promise.allSettled([...inFlight, previous]);
      throw error;
    }
    // 3. Refs, at their target as of the cut; with their versions and reflogs where the archive
    // recorded them and the target does not hold the ref yet (FORMAT.md "Refs").
    let refsWritten = 0;
    let refsExact = 0;
    if (refs.length > 0) {
      for (const r of refs) {
        const now = targetExists && tier.getRef ? await tier.getRef(r.name) : null;
        const outcome = await restoreRef(tier, r, now, dryRun);
        if (outcome !== "unchanged") refsWritten++;
        if (outcome === "exact") refsExact++;
      }
    }
    // 4. The target, read back, gives the recorded digest.
    let targetDigest: string | null = null;
    if (!dryRun) {
      targetDigest = await digestOfIds(tier, [...want.keys()]);
      if (targetDigest === last.manifest.stateDigest) rmSync(checkpointPath, { force: true });
    }
    return {
      from: options.from,
      to: typeof options.to === "string" ? redactUrl(options.to) : options.to.name,
      dryRun,
      chain: chain.archives.map((a) => a.name),
      asOf: options.asOf ?? null,
      cut: last.manifest.cut,
      state: want.size,
      written,
      alreadyPresent,
      conflicts,
      refs: refsWritten,
      refsExact,
      resumedChunks,
      expiryNotRestored: expiry,
      verified: dryRun ? null : targetDigest === last.manifest.stateDigest,
      stateDigest: last.manifest.stateDigest,
      targetDigest,
      durationMs: Date.now() - started,
    };
  } finally {
    await chain.close();
    if (owned && targetOpen) await target?.close();
  }
}

/** Write batches (`putMany`) a restore keeps in flight, and read-back pages of `digestOfIds`. */
const WRITES_IN_FLIGHT = 2;
const READS_IN_FLIGHT = 3;

/** Moves a ref may be padded with to reach a version older moves of which its reflog dropped. */
const PAD_LIMIT = 100_000;
const RESTORE_BY = "dgent restore";

/**
 * One ref into the target. A ref the target lacks, with a recorded reflog, has its history
 * replayed — each move with its own `by` and `at`, deletes included — so it ends at the recorded
 * version with the recorded reflog; when the log starts after the ref's creation (the tier keeps
 * the last `REFLOG_LIMIT` moves), the ref is first moved to the first kept move's `from` as many
 * times as the dropped moves, so the versions match (the tier's own limit then drops those
 * filler moves from its log). A ref the target holds part-way through such a replay continues
 * it. Otherwise the ref is moved to its target only (a new move in the target's history).
 */
async function restoreRef(tier: Adapter, r: RecordedRef, now: Ref | null, dryRun: boolean): Promise<"unchanged" | "exact" | "target"> {
  const { setRef, deleteRef, getRef } = tier;
  if (!setRef || !getRef) return "unchanged";
  const set = setRef.bind(tier);
  if (now && now.target === r.target && now.version === r.version && now.updatedAt === r.updatedAt) return "unchanged";
  const plain = async (): Promise<"unchanged" | "target"> => {
    if (now?.target === r.target) return "unchanged";
    if (!dryRun) await set(r.name, r.target, undefined, { by: RESTORE_BY, at: Date.now() });
    return "target";
  };
  const log = r.reflog;
  if (!log || log.length === 0 || (!deleteRef && log.some((m) => m.to === null))) return plain();
  let start = 0;
  if (now !== null) {
    let at = log.length - 1;
    while (at >= 0 && !(log[at]?.to === now.target && log[at]?.version === now.version && log[at]?.at === now.updatedAt)) at--;
    if (at < 0) return plain();
    start = at + 1;
  }
  if (dryRun) return "exact";
  const first = log[0] as RecordedMove;
  if (start === 0 && first.from !== null) {
    const base = first.to === null ? first.version : first.version - 1;
    if (base <= PAD_LIMIT) await pad(tier, r.name, first.from, base, first.at);
  }
  for (const m of log.slice(start)) {
    if (m.to === null) await deleteRef?.call(tier, r.name, undefined, { by: m.by, at: m.at });
    else await set(r.name, m.to, undefined, { by: m.by, at: m.at });
  }
  const after = await getRef.call(tier, r.name);
  return after?.target === r.target && after.version === r.version ? "exact" : "target";
}

/** `times` moves of a new ref to `target`: in transactions of 1000 where the tier has them. */
async function pad(tier: Adapter, name: string, target: string, times: number, at: number): Promise<void> {
  const move = { by: RESTORE_BY, at };
  for (let done = 0; done < times; ) {
    const n = Math.min(1000, times - done);
    if (tier.commit && tier.capabilities.transactions) await tier.commit(Array.from({ length: n }, () => ({ op: "setRef" as const, name, target })), move);
    else for (let i = 0; i < n; i++) await tier.setRef?.(name, target, undefined, move);
    done += n;
  }
}

async function getAll(tier: Adapter, ids: readonly string[]): Promise<Array<Datum | null>> {
  if (tier.getMany && tier.capabilities.query) return tier.getMany(ids);
  return Promise.all(ids.map((id) => tier.get(id)));
}

/** The state digest of `ids` as the tier holds them (an id it lacks is left out, so the digest differs). */
export async function digestOfIds(tier: Adapter, ids: readonly string[]): Promise<string> {
  const pairs: Array<[string, string]> = [];
  // A tier that holds little besides `ids` is read in one pass (`exportDatums`, in its storage
  // order) instead of by id: the same datums, a sequential read.
  if (tier.exportDatums && tier.stats && (await tier.stats()).count <= ids.length * 2) {
    const wanted = new Set(ids);
    for await (const page of tier.exportDatums()) for (const d of page) if (wanted.has(d.id)) pairs.push([d.id, datumKey(d)]);
    return stateDigestOfKeys(pairs);
  }
  // Pages of 500 ids, up to READS_IN_FLIGHT requested at a time: a network tier looks the next
  // pages up while this process hashes the one it got.
  const pages: Array<Promise<Array<Datum | null>>> = [];
  const request = (at: number) => {
    const page = getAll(tier, ids.slice(at, at + 500));
    page.catch(() => undefined);
    pages.push(page);
  };
  let next = 0;
  for (; next < ids.length && pages.length < READS_IN_FLIGHT; next += 500) request(next);
  while (pages.length > 0) {
    const found = await (pages.shift() as Promise<Array<Datum | null>>);
    if (next < ids.length) {
      request(next);
      next += 500;
    }
    for (const d of found) if (d) pairs.push([d.id, datumKey(d)]);
  }
  return stateDigestOfKeys(pairs);
}

/**
 * One batch in one call where the tier can: its bulk import (`importDatums`, which leaves held
 * ids as they are and names those that differ), else `putMany`, where a conflict falls back to
 * datum by datum.
 */
async function putBatch(tier: Adapter, batch: readonly Datum[], conflicts: string[]): Promise<number> {
  if (tier.importDatums && !noBulkImport.has(tier)) {
    try {
      const found = await tier.importDatums(batch);
      conflicts.push(...found.conflicts);
      return found.stored;
    } catch (error) {
      // Refused for want of a privilege (Postgres: TEMPORARY on the database, for the staging
      // table): the batch is written as before, with `putMany`, and so are the next ones. A
      // privilege `putMany` needs too fails there.
      if (!isDgentError(error) || error.details.reason !== "42501") throw error;
      noBulkImport.add(tier);
    }
  }
  if (tier.putMany && tier.capabilities.batch) {
    try {
      await tier.putMany(batch);
      return batch.length;
    } catch (error) {
      if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
    }
  }
  let n = 0;
  for (const d of batch) {
    try {
      await tier.put(d);
      n++;
    } catch (error) {
      if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
      conflicts.push(d.id);
    }
  }
  return n;
}

/** Tiers whose bulk import was refused for want of a privilege (SQLSTATE 42501). */
const noBulkImport = new WeakSet<Adapter>();

function readCheckpoint(path: string): Set<string> {
  try {
    const value = JSON.parse(readFileSync(path, "utf8")) as { chunks?: unknown };
    return new Set(Array.isArray(value.chunks) ? value.chunks.filter((c): c is string => typeof c === "string") : []);
  } catch {
    return new Set();
  }
}

function writeCheckpoint(path: string, done: Set<string>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify({ chunks: [...done] }));
  renameSync(`${path}.tmp`, path);
}

export interface DrillOptions extends ReadOptions {
  /** The scratch tier (a URL). Default: a SQLite file in a fresh temporary directory, removed afterwards. */
  scratch?: string;
  namespace?: string;
}

export interface DrillReport {
  readonly archive: string;
  readonly chain: readonly string[];
  readonly scratch: string;
  readonly state: number;
  readonly restored: number;
  readonly stateDigest: string;
  readonly scratchDigest: string;
  readonly verifyMs: number;
  readonly restoreMs: number;
}

/**
 * A restore drill: verifies the archive, restores it into a scratch tier, compares the scratch
 * tier's digest with the recorded one (`DGENT_RESTORE_MISMATCH` when they differ), removes the
 * scratch tier it made.
 */
export async function restoreDrill(options: DrillOptions): Promise<DrillReport> {
  const t0 = Date.now();
  await verifyBackup(options);
  const t1 = Date.now();
  const dir = options.scratch === undefined ? mkdtempSync(join(tmpdir(), "dgent-drill-")) : null;
  const scratch = options.scratch ?? `sqlite://${join(dir as string, "drill.db")}`;
  try {
    const report = await restore({ ...options, to: scratch, checkpointPath: join(dir ?? tmpdir(), `dgent-drill-${process.pid}-${t0}.json`) });
    if (report.verified !== true || report.conflicts.length > 0) {
      throw dgentError(
        "DGENT_RESTORE_MISMATCH",
        `the drill restored ${report.written} datums into ${redactUrl(scratch)} and their digest ${report.targetDigest ?? "?"} differs from the recorded ${report.stateDigest}${report.conflicts.length ? ` (${report.conflicts.length} conflicts: the scratch tier was not empty)` : ""}`,
        { unit: UNIT, details: { expected: report.stateDigest, actual: report.targetDigest } },
      );
    }
    return {
      archive: report.chain[report.chain.length - 1] as string,
      chain: report.chain,
      scratch: dir ? "(temporary SQLite, removed)" : redactUrl(scratch),
      state: report.state,
      restored: report.written,
      stateDigest: report.stateDigest,
      scratchDigest: report.targetDigest as string,
      verifyMs: t1 - t0,
      restoreMs: Date.now() - t1,
    };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

export { decodeLines };
