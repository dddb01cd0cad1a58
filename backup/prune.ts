/**
 * Retention: keep the newest N full backups of a repository with their increments, delete the
 * older chains whole. Archives that cannot be read, and increments whose full backup is not in
 * the repository, are left alone and reported.
 */
import { dgentError } from "../core/errors.js";
import { parseLocation, repositoryFor, type BucketOptions } from "./location.js";
import { UNIT, type Manifest } from "./format.js";

export interface PruneOptions {
  /** A directory of archives, `s3://…` or `gs://…`. */
  from: string;
  /** Full backups to keep, newest first, each with every increment made on it (≥ 1). */
  keepFull: number;
  /** Report what would be deleted, delete nothing. */
  dryRun?: boolean;
  bucket?: BucketOptions;
}

export interface PruneReport {
  readonly dryRun: boolean;
  readonly kept: readonly string[];
  /** Deleted (or, on a dry run, would be). */
  readonly deleted: readonly string[];
  /** Left alone: unreadable archives and increments whose full backup is missing. */
  readonly leftAlone: readonly string[];
}

export async function prune(options: PruneOptions): Promise<PruneReport> {
  if (!Number.isInteger(options.keepFull) || options.keepFull < 1) {
    throw dgentError("DGENT_INVALID_OPTIONS", "keep at least one full backup (--keep-full N, N ≥ 1)", { unit: UNIT });
  }
  const location = parseLocation(options.from);
  if (location.kind === "file") throw dgentError("DGENT_INVALID_OPTIONS", "prune works on a repository (a directory, s3://… or gs://…), not on one archive", { unit: UNIT });
  const repository = await repositoryFor(location, options.bucket);
  try {
    const all = await repository.list();
    const byId = new Map<string, { name: string; manifest: Manifest }>();
    const leftAlone: string[] = [];
    for (const a of all) {
      if (a.reader) byId.set(a.reader.manifest.backupId, { name: a.name, manifest: a.reader.manifest });
      else leftAlone.push(a.name);
      await a.reader?.close();
    }
    /** The full backup an archive's chain starts from, or null when a link is missing. */
    const rootOf = (id: string): string | null => {
      const seen = new Set<string>();
      for (let at = byId.get(id); at; at = at.manifest.parent ? byId.get(at.manifest.parent.backupId) : undefined) {
        if (seen.has(at.manifest.backupId)) return null;
        seen.add(at.manifest.backupId);
        if (at.manifest.kind === "full") return at.manifest.backupId;
      }
      return null;
    };
    const fulls = [...byId.values()].filter((a) => a.manifest.kind === "full").sort((a, b) => b.manifest.cut - a.manifest.cut);
    const keep = new Set(fulls.slice(0, options.keepFull).map((a) => a.manifest.backupId));
    const kept: string[] = [];
    const doomed: string[] = [];
    for (const [id, a] of byId) {
      const root = rootOf(id);
      if (root === null) leftAlone.push(a.name);
      else if (keep.has(root)) kept.push(a.name);
      else doomed.push(a.name);
    }
    // Increments before the full backup they stand on: never a moment where a kept name has no parent.
    doomed.sort().reverse();
    if (!options.dryRun) for (const name of doomed) await repository.remove(name);
    return { dryRun: options.dryRun === true, kept: kept.sort(), deleted: doomed, leftAlone: leftAlone.sort() };
  } finally {
    await repository.close();
  }
}
