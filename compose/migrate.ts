import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { sameValue, type Datum } from "../core/datum.js";
import { tierForUrl } from "./default-store.js";
import { dgentError, isDgentError } from "../core/errors.js";
import { defaultDataDir, DEFAULT_NAMESPACE, ensureWritableDir } from "../core/paths.js";
import { redactUrl } from "../core/redact.js";
import type { Adapter } from "../core/protocol.js";
import type { Registry } from "../core/registry.js";
import { defaultRegistry } from "./catalogue.js";
import { scanTier } from "../core/tiers.js";

export interface MigrateOptions {
  /** Source URL: `sqlite:///path.db`, `jsonl:///path.jsonl`, `postgres://…`. */
  from: string;
  /** Target URL, same forms. */
  to: string;
  namespace?: string;
  /**
   * Report what would move and change nothing: both ends are opened read-only (adapters that
   * declare a `readonly` option), so nothing is created — no file, directory, schema or table.
   */
  dryRun?: boolean;
  /** Datums per batch (default 1 000). */
  batchSize?: number;
  /** Where progress is kept so an interrupted run resumes (default under the XDG data dir). */
  checkpointPath?: string;
  onProgress?: (done: number, total: number) => void;
  registry?: Registry;
}

export interface MigrationReport {
  readonly from: string;
  readonly to: string;
  readonly namespace: string;
  readonly dryRun: boolean;
  /** Datums in the source. */
  readonly total: number;
  /** Dry run: would be copied. Execute: written by this run (identical ones already there are no-ops). */
  readonly copied: number;
  /** Already in the target with the same value. */
  readonly alreadyPresent: number;
  /** False when a dry run found no target yet (an execute creates it); every datum would be copied. */
  readonly targetExists: boolean;
  /** Ids whose target holds a different datum: left as they are in both places. */
  readonly conflicts: readonly string[];
  /** Datums skipped because an earlier, interrupted run had copied them. */
  readonly resumedFrom: number;
  /** Execute only: every source datum is in the target with the same content hash. */
  readonly verified: boolean | null;
  /** SHA-256 over the sorted (id, datum hash) pairs of the source, and of the same ids in the target. */
  readonly sourceDigest: string;
  readonly targetDigest: string | null;
  readonly durationMs: number;
  readonly maxRssBytes: number;
}

/** Hides the password and secret parameters of a URL for reports and errors (dgent's one redaction, `redactUrl`). */
export function redactPassword(url: string): string {
  return redactUrl(url);
}

/**
 * An adapter for a migration URL. With `readonly` (a source, or either end of a dry run) an
 * adapter whose options schema declares `readonly` gets `readonly: true`: it opens existing
 * storage only and creates nothing (the built-in sqlite, jsonl and Postgres tiers do).
 */
export async function adapterForUrl(
  url: string,
  namespace: string,
  registry: Registry = defaultRegistry,
  purpose: "migrate-source" | "migrate-target" = "migrate-target",
  options: { readonly?: boolean } = {},
): Promise<Adapter> {
  try {
    const choice = await tierForUrl(url, namespace, purpose, registry);
    const declared = ((await registry.adapter(choice.adapter)).optionsSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
    const readonly = options.readonly === true && "readonly" in declared ? { readonly: true } : {};
    return await registry.createAdapter(choice.adapter, { ...choice.options, ...readonly });
  } catch (error) {
    if (isDgentError(error) && error.code === "DGENT_UNKNOWN_ADAPTER") {
      throw dgentError("DGENT_INVALID_OPTIONS", `cannot migrate ${redactPassword(url)}: ${error.message}`, { unit: "migrate", cause: error });
    }
    throw error;
  }
}

/** A hash of a datum's whole value, createdAt included: what "verified" compares. */
export function datumHash(d: Datum): Buffer {
  const h = createHash("sha256");
  h.update(d.id).update("\0").update(String(d.createdAt)).update("\0").update(d.causalParent ?? "\u0001").update("\0");
  for (const k of Object.keys(d.metadata).sort()) h.update(k).update("\0").update(d.metadata[k] as string).update("\0");
  h.update(d.content);
  return h.digest();
}

function digestOf(hashes: Map<string, Buffer>): string {
  const h = createHash("sha256");
  for (const id of [...hashes.keys()].sort()) h.update(id).update(hashes.get(id) as Buffer);
  return h.digest("hex");
}

interface Checkpoint {
  readonly done: number;
  readonly lastId: string;
}

/**
 * Copies every datum of one store into another (seed 003's migration): a dry run reports what
 * would move; an execute copies in batches, keeps a checkpoint so an interrupted run resumes,
 * is idempotent when re-run (identical datums are no-ops), and ends by verifying every datum's
 * content hash in the target. The source's data is never changed — it is opened read-only, and a
 * dry run opens the target read-only too, so nothing is created — and rolling back is unsetting
 * the URL. (An execute first brings a source written by an older dgent to this schema, as any
 * other open by this dgent would; a dry run refuses such a source instead.)
 */
export async function migrate(options: MigrateOptions): Promise<MigrationReport> {
  const started = Date.now();
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  const registry = options.registry ?? defaultRegistry;
  const batchSize = options.batchSize ?? 1_000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw dgentError("DGENT_INVALID_OPTIONS", "batchSize must be a positive integer", { unit: "migrate" });
  const checkpointPath =
    options.checkpointPath ??
    join(defaultDataDir(), "migrations", `${createHash("sha256").update(`${options.from}\n${options.to}\n${namespace}`).digest("hex").slice(0, 16)}.json`);
  const dryRun = options.dryRun === true;
  // The source is never written: it is opened read-only, and so is the target of a dry run.
  let source = await adapterForUrl(options.from, namespace, registry, "migrate-source", { readonly: true });
  const target = await adapterForUrl(options.to, namespace, registry, "migrate-target", { readonly: dryRun });
  try {
    await source.open();
  } catch (error) {
    if (isMissing(error)) {
      throw dgentError(
        "DGENT_INVALID_OPTIONS",
        `the source ${redactUrl(options.from)} does not exist or holds no dgent data${isDgentError(error) && error.details.reason === "25006" ? " (or has an older schema, which a read-only open cannot upgrade: open it once with this dgent, e.g. `dgent backend` with DGENT_DATABASE_URL set to it)" : ""}; nothing was created (${error.message})`,
        { unit: "migrate", cause: error, details: { missing: true, from: redactUrl(options.from) } },
      );
    }
    if (!isDgentError(error) || error.details.olderSchema !== true) throw error;
    if (dryRun) {
      throw dgentError(error.code, `the source ${redactUrl(options.from)} was written by an older dgent: a dry run reads it read-only and cannot upgrade its schema; --execute does (as would any other command of this dgent on it)`, {
        unit: "migrate",
        cause: error,
        details: { ...error.details, from: redactUrl(options.from) },
      });
    }
    // An execute brings an older dgent's source to this schema first, as any open by this dgent
    // would; its data is not changed.
    source = await adapterForUrl(options.from, namespace, registry, "migrate-source");
    await source.open();
  }
  let targetExists = true;
  try {
    await target.open();
  } catch (error) {
    if (dryRun && isMissing(error)) targetExists = false;
    else {
      await source.close();
      throw error;
    }
  }
  try {
    const total = source.stats ? (await source.stats()).count : -1;
    const hashes = new Map<string, Buffer>();
    const conflicts: string[] = [];
    let copied = 0;
    let alreadyPresent = 0;
    let seen = 0;
    const checkpoint = options.dryRun ? null : readCheckpoint(checkpointPath);
    let resumedFrom = 0;
    let batch: Datum[] = [];

    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      if (options.dryRun) {
        const found = targetExists ? await Promise.all(batch.map((d) => target.get(d.id))) : batch.map(() => null);
        batch.forEach((d, i) => {
          const there = found[i];
          if (!there) copied++;
          else if (sameValue(there, d)) alreadyPresent++;
          else conflicts.push(d.id);
        });
      } else {
        await copyBatch(target, batch, conflicts);
        copied += batch.length;
        writeCheckpoint(checkpointPath, { done: seen, lastId: (batch[batch.length - 1] as Datum).id });
      }
      options.onProgress?.(seen, total);
      batch = [];
    };

    for await (const d of scanTier(source)) {
      seen++;
      hashes.set(d.id, datumHash(d));
      if (checkpoint && seen <= checkpoint.done) {
        if (seen === checkpoint.done && d.id !== checkpoint.lastId) {
          throw dgentError("DGENT_CONFLICT", "the source changed since the interrupted run (its checkpoint no longer matches); delete the checkpoint to start over", {
            unit: "migrate",
            details: { checkpointPath },
          });
        }
        resumedFrom = seen;
        continue;
      }
      batch.push(d);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    if (!options.dryRun) alreadyPresent = 0;

    let verified: boolean | null = null;
    let targetDigest: string | null = null;
    if (!options.dryRun) {
      const targetHashes = new Map<string, Buffer>();
      for await (const d of scanTier(target)) {
        if (hashes.has(d.id)) targetHashes.set(d.id, datumHash(d));
      }
      targetDigest = digestOf(targetHashes);
      const conflicted = new Set(conflicts);
      verified = [...hashes].every(([id, hash]) => conflicted.has(id) || targetHashes.get(id)?.equals(hash) === true);
      if (verified) rmSync(checkpointPath, { force: true });
    }
    return {
      from: redactUrl(options.from),
      to: redactUrl(options.to),
      namespace,
      dryRun,
      total: seen,
      copied,
      alreadyPresent,
      targetExists,
      conflicts,
      resumedFrom,
      verified,
      sourceDigest: digestOf(hashes),
      targetDigest,
      durationMs: Date.now() - started,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await Promise.allSettled([source.close(), ...(targetExists ? [target.close()] : [])]);
  }
}

/**
 * A read-only open that found nothing to open: the adapter says so (`details.missing`), or — a
 * Postgres end — the server refused to create the missing schema in a read-only session (25006).
 */
function isMissing(error: unknown): error is Error {
  if (!isDgentError(error)) return false;
  return error.details.missing === true || error.details.reason === "25006";
}

/** One batch in one call where the target can; a conflict falls back to datum by datum. */
async function copyBatch(target: Adapter, batch: readonly Datum[], conflicts: string[]): Promise<void> {
  if (target.putMany && target.capabilities.batch) {
    try {
      await target.putMany(batch);
      return;
    } catch (error) {
      if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
    }
  }
  for (const d of batch) {
    try {
      await target.put(d);
    } catch (error) {
      if (!isDgentError(error, "DGENT_CONFLICT")) throw error;
      conflicts.push(d.id);
    }
  }
}

function readCheckpoint(path: string): Checkpoint | null {
  try {
    const c = JSON.parse(readFileSync(path, "utf8")) as Partial<Checkpoint>;
    return typeof c.done === "number" && typeof c.lastId === "string" ? { done: c.done, lastId: c.lastId } : null;
  } catch {
    return null;
  }
}

function writeCheckpoint(path: string, checkpoint: Checkpoint): void {
  ensureWritableDir(dirname(path), "migrate");
  writeFileSync(`${path}.tmp`, JSON.stringify(checkpoint));
  // rename is atomic: a crash leaves the old checkpoint or the new one, never half of one.
  renameSync(`${path}.tmp`, path);
}
