/**
 * Every namespace of a tier: which namespaces a tier holds (`tierNamespaces`), `backupAll()`
 * (one repository per namespace under the location, and an index of the run), and
 * `restoreAll()` (every namespace of an index, or some, into a tier). FORMAT.md "All namespaces".
 */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { withoutDriverSuffix } from "../compose/default-store.js";
import { dgentError } from "../core/errors.js";
import { localPathFromUrl } from "../core/paths.js";
import { redactUrl } from "../core/redact.js";
import { backup, newBackupId, type BackupOptions, type BackupReport } from "./backup.js";
import { ARCHIVE_EXTENSION } from "./container.js";
import { byCodePoint, UNIT } from "./format.js";
import { parseLocation, repositoryFor, type BucketOptions } from "./location.js";
import { restore, type RestoreOptions, type RestoreReport } from "./restore.js";

/** Valid namespace names (core/paths.ts): what a file name must be to count as one. */
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const ALL_INDEX_FORMAT = "dgent-backup-all";
export const ALL_INDEX_VERSION = 1;
/** Index files are `all-<runId>.json` at the top of the location. */
export const ALL_INDEX_PREFIX = "all-";

/** One namespace of a tier: its name and the URL that opens it (with `namespace`). */
export interface TierNamespace {
  readonly namespace: string;
  readonly url: string;
}

const schemeOf = (url: string) => withoutDriverSuffix(url).split(":", 1)[0]?.toLowerCase() ?? "";

/** The directory a `sqlite:`/`jsonl:` URL names for `--all` (it must be one, not a file). */
function directoryOf(url: string, what: string): string {
  const path = localPathFromUrl(url);
  if (existsSync(path) ? !statSync(path).isDirectory() : !url.endsWith("/")) {
    throw dgentError("DGENT_INVALID_OPTIONS", `${what} every namespace needs the directory of the tier's files (${schemeOf(url)}:///path/to/dir/), not the file ${path}`, {
      unit: UNIT,
    });
  }
  return path;
}

/** The URL of one namespace of a tier named for `--all` (a directory for file tiers; the same URL otherwise). */
export function namespaceUrl(url: string, namespace: string): string {
  const scheme = schemeOf(url);
  if (scheme === "sqlite" || scheme === "jsonl") {
    const dir = directoryOf(url, "restoring");
    return `${scheme}://${join(dir, `${namespace}.${scheme === "sqlite" ? "db" : "jsonl"}`)}`;
  }
  return url;
}

/**
 * The namespaces a tier holds, by name: SQLite and JSONL, the `<namespace>.db` / `.jsonl`
 * files of the directory the URL names; Postgres, the schemas holding dgent's `data` table;
 * S3 and GCS, the `<prefix><namespace>/dgent.json` objects. Other tiers cannot list theirs:
 * `DGENT_UNSUPPORTED` with `details.capability: "namespaces"`.
 */
export async function tierNamespaces(url: string, bucket: BucketOptions = {}): Promise<TierNamespace[]> {
  const scheme = schemeOf(url);
  if (scheme === "sqlite" || scheme === "jsonl") {
    const dir = directoryOf(url, "backing up");
    const ext = scheme === "sqlite" ? ".db" : ".jsonl";
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((n) => n.endsWith(ext) && NAMESPACE.test(n.slice(0, -ext.length)) && statSync(join(dir, n)).isFile())
      .map((n) => ({ namespace: n.slice(0, -ext.length), url: `${scheme}://${join(dir, n)}` }))
      .sort((a, b) => byCodePoint(a.namespace, b.namespace));
  }
  if (scheme === "postgres" || scheme === "postgresql") {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: withoutDriverSuffix(url) });
    await client.connect();
    try {
      const r = await client.query<{ schema: string }>(
        `SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'dgent_migrations'
         INTERSECT SELECT table_schema FROM information_schema.tables WHERE table_name = 'data' ORDER BY 1`,
      );
      return r.rows
        .map((row) => row.schema)
        .filter((s) => NAMESPACE.test(s))
        .sort(byCodePoint)
        .map((namespace) => ({ namespace, url }));
    } finally {
      await client.end();
    }
  }
  if (scheme === "s3" || scheme === "gs" || scheme === "gcs") {
    return bucketNamespaces(url, scheme === "s3" ? "s3" : "gcs", bucket);
  }
  throw dgentError("DGENT_UNSUPPORTED", `the tier at ${redactUrl(url)} cannot list its namespaces; back them up one by one with --namespace NS`, {
    unit: UNIT,
    details: { tier: scheme, capability: "namespaces" },
  });
}

async function bucketNamespaces(url: string, service: "s3" | "gcs", options: BucketOptions): Promise<TierNamespace[]> {
  const { bucketFromUrl } = await import("../adapters/object-store/options.js");
  const { MANIFEST_NAME } = await import("../adapters/object-store/keys.js");
  const parsed = bucketFromUrl(url, "default");
  const prefix = parsed.prefix ?? "dgent/";
  const u = new URL(url);
  const q = Object.fromEntries(u.searchParams);
  const backend =
    service === "s3"
      ? await (async () => {
          const { resolveConfig } = await import("../adapters/s3/options.js");
          const { connectS3 } = await import("../adapters/s3/backend.js");
          const config = resolveConfig({
            bucket: parsed.bucket,
            ...(q.endpoint ? { endpoint: q.endpoint } : {}),
            ...(q.region ? { region: q.region } : {}),
            ...(q.forcePathStyle ? { forcePathStyle: q.forcePathStyle === "true" } : {}),
            ...(options.s3 ?? {}),
          } as import("../adapters/s3/options.js").S3Options);
          return connectS3(config);
        })()
      : await (async () => {
          const { resolveConfig } = await import("../adapters/gcs/options.js");
          const { connectGcs } = await import("../adapters/gcs/backend.js");
          const config = resolveConfig({
            bucket: parsed.bucket,
            ...(q.apiEndpoint ? { apiEndpoint: q.apiEndpoint } : {}),
            ...(q.projectId ? { projectId: q.projectId } : {}),
            ...(options.gcs ?? {}),
          } as import("../adapters/gcs/options.js").GcsOptions);
          return connectGcs(config);
        })();
  await backend.open(false);
  try {
    // The namespaces are the `<prefix><namespace>/dgent.json` keys. The whole prefix is listed
    // (a request per 1000 keys, less than the backup's own reads): skipping ahead with
    // `startAfter` would trust the server to list in byte order, which S3 and GCS do and some
    // S3-compatible servers do not.
    const out: TierNamespace[] = [];
    let cursor: string | null = null;
    do {
      const page = await backend.list(prefix, cursor, 1000);
      for (const o of page.objects) {
        const rest = o.key.slice(prefix.length);
        const slash = rest.indexOf("/");
        const namespace = rest.slice(0, slash);
        if (slash > 0 && rest.slice(slash + 1) === MANIFEST_NAME && NAMESPACE.test(namespace)) out.push({ namespace, url });
      }
      cursor = page.cursor;
    } while (cursor !== null);
    return out.sort((a, b) => byCodePoint(a.namespace, b.namespace));
  } finally {
    await backend.close();
  }
}

/** Where one namespace's archives go under an all-namespaces location: `<dir>/<namespace>/` or `<prefix><namespace>/`. */
export function namespaceLocation(location: string, namespace: string): string {
  const loc = parseLocation(location);
  if (loc.kind === "directory") return join(loc.path, namespace);
  if (loc.kind === "bucket") {
    const u = new URL(loc.url);
    u.pathname = `${u.pathname.replace(/\/?$/, "/")}${namespace}/`;
    return u.toString();
  }
  throw dgentError("DGENT_INVALID_OPTIONS", `backing up every namespace needs a directory, s3://… or gs://… (one repository per namespace goes under it), not the file ${loc.path}`, {
    unit: UNIT,
  });
}

/** The index an all-namespaces run writes at the top of the location (`all-<runId>.json`). */
export interface AllIndex {
  readonly format: typeof ALL_INDEX_FORMAT;
  readonly version: number;
  readonly runId: string;
  readonly source: { readonly url: string };
  readonly startedAt: number;
  readonly finishedAt: number;
  /** Every namespace the tier held when the run started, by name, with the archive made of it. */
  readonly namespaces: ReadonlyArray<{
    readonly namespace: string;
    readonly backupId: string;
    readonly kind: "full" | "incremental";
    readonly cut: number;
    readonly archiveDigest: string;
    readonly stateDigest: string;
    readonly state: number;
  }>;
}

export interface BackupAllOptions extends Omit<BackupOptions, "from" | "to" | "namespace" | "base"> {
  /** The tier: `sqlite:///dir/` or `jsonl:///dir/` (a directory of namespace files), `postgres://…`, `s3://…`, `gs://…`. */
  from: string;
  /** A directory, `s3://bucket/prefix/` or `gs://bucket/prefix/`. */
  to: string;
  /** Each namespace incremental on its newest archive (a full backup for a namespace that has none). */
  incremental?: boolean;
  /** Called as each namespace's backup ends. */
  onNamespace?: (report: BackupReport & { readonly namespace: string }) => void | Promise<void>;
}

export interface BackupAllReport {
  readonly runId: string;
  /** The index written: `<location>/all-<runId>.json`. */
  readonly index: string;
  readonly namespaces: ReadonlyArray<BackupReport & { readonly namespace: string }>;
  readonly durationMs: number;
}

/**
 * Backs up every namespace of a tier, each into its own repository under `to` (so increments and
 * `--as-of` work per namespace as for one), then writes the run's index, last: an index lists
 * only archives that are complete.
 */
export async function backupAll(options: BackupAllOptions): Promise<BackupAllReport> {
  const started = Date.now();
  const { from, to, incremental, onNamespace, ...rest } = options;
  namespaceLocation(to, "probe");
  const namespaces = await tierNamespaces(from, options.bucket);
  const runId = newBackupId((options.now ?? Date.now)());
  const reports: Array<BackupReport & { readonly namespace: string }> = [];
  for (const ns of namespaces) {
    const r = await backup({ ...rest, from: ns.url, to: namespaceLocation(to, ns.namespace), namespace: ns.namespace, ...(incremental ? { base: "latest" } : {}) });
    const report = { ...r, namespace: ns.namespace };
    reports.push(report);
    await onNamespace?.(report);
  }
  const index: AllIndex = {
    format: ALL_INDEX_FORMAT,
    version: ALL_INDEX_VERSION,
    runId,
    source: { url: redactUrl(from) },
    startedAt: started,
    finishedAt: Date.now(),
    namespaces: reports.map((r) => ({ namespace: r.namespace, backupId: r.backupId, kind: r.kind, cut: r.cut, archiveDigest: r.archiveDigest, stateDigest: r.stateDigest, state: r.state })),
  };
  const name = `${ALL_INDEX_PREFIX}${runId}.json`;
  const repository = await repositoryFor(parseLocation(to), options.bucket);
  try {
    await repository.writeNote(name, Buffer.from(JSON.stringify(index, null, 1), "utf8"));
  } finally {
    await repository.close();
  }
  return { runId, index: `${repository.location.replace(/\/?$/, "/")}${name}`, namespaces: reports, durationMs: Date.now() - started };
}

/** The all-namespaces indexes of a location, oldest first (unreadable ones are an error naming them). */
export async function readAllIndexes(location: string, bucket: BucketOptions = {}): Promise<AllIndex[]> {
  const loc = parseLocation(location);
  namespaceLocation(location, "probe");
  const repository = await repositoryFor(loc, bucket);
  try {
    const out: AllIndex[] = [];
    for (const name of await repository.listNotes(ALL_INDEX_PREFIX)) {
      if (!name.endsWith(".json")) continue;
      const bytes = await repository.readNote(name);
      let index: AllIndex | null = null;
      try {
        index = bytes === null ? null : (JSON.parse(bytes.toString("utf8")) as AllIndex);
      } catch {
        index = null;
      }
      if (!index || index.format !== ALL_INDEX_FORMAT || !Array.isArray(index.namespaces)) {
        throw dgentError("DGENT_BACKUP_CORRUPT", `${name} in ${repository.location} is not an all-namespaces index`, { unit: UNIT, details: { archive: name } });
      }
      if (index.version > ALL_INDEX_VERSION) {
        throw dgentError("DGENT_BACKUP_FORMAT", `${name} is an all-namespaces index of version ${index.version}; this dgent reads up to ${ALL_INDEX_VERSION}`, {
          unit: UNIT,
          details: { archive: name },
        });
      }
      out.push(index);
    }
    return out.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
  } finally {
    await repository.close();
  }
}

export interface RestoreAllOptions extends Omit<RestoreOptions, "from" | "to" | "namespace" | "checkpointPath" | "asOf"> {
  /** The location an all-namespaces backup wrote to. */
  from: string;
  /** The tier: `sqlite:///dir/` / `jsonl:///dir/` (one file per namespace), `postgres://…`, `s3://…`, `gs://…`. */
  to: string;
  /** Only these namespaces of the index (each must be in it). Default: all. */
  namespaces?: readonly string[];
  /** The newest run whose every archive was cut at or before this time. Default: the newest run. */
  asOf?: number;
  /** Directory for the per-namespace checkpoints (default under the data dir). */
  checkpointDir?: string;
  onNamespace?: (report: RestoreReport & { readonly namespace: string }) => void | Promise<void>;
}

export interface RestoreAllReport {
  readonly runId: string;
  readonly namespaces: ReadonlyArray<RestoreReport & { readonly namespace: string }>;
  /** Every namespace restored verified (null on a dry run). */
  readonly verified: boolean | null;
}

/**
 * Restores the namespaces of an all-namespaces run into a tier: each exactly the archive the run's
 * index names (checked by backupId), each as one `restore()` — all checks before writes, digest
 * after — in name order. A namespace's failure stops the run (the ones before it stay restored;
 * running it again resumes: restores are idempotent).
 */
export async function restoreAll(options: RestoreAllOptions): Promise<RestoreAllReport> {
  const { from, to, namespaces: only, asOf, checkpointDir, onNamespace, ...rest } = options;
  const indexes = await readAllIndexes(from, options.bucket);
  const eligible = indexes.filter((i) => asOf === undefined || i.namespaces.every((n) => n.cut <= asOf));
  const index = eligible[eligible.length - 1];
  if (!index) {
    throw dgentError(
      "DGENT_BACKUP_CHAIN",
      asOf === undefined ? `${from} holds no all-namespaces index (all-*.json): back up with --all first` : `${from} holds no all-namespaces run cut at or before ${new Date(asOf).toISOString()}`,
      { unit: UNIT, details: { archive: from } },
    );
  }
  const missing = (only ?? []).filter((ns) => !index.namespaces.some((n) => n.namespace === ns));
  if (missing.length > 0) {
    throw dgentError("DGENT_INVALID_OPTIONS", `the run ${index.runId} holds no namespace ${missing.map((m) => JSON.stringify(m)).join(", ")}; it holds ${index.namespaces.map((n) => n.namespace).join(", ") || "none"}`, {
      unit: UNIT,
    });
  }
  const reports: Array<RestoreReport & { readonly namespace: string }> = [];
  for (const entry of index.namespaces) {
    if (only && !only.includes(entry.namespace)) continue;
    const target = namespaceUrl(to, entry.namespace);
    const scheme = schemeOf(to);
    if ((scheme === "sqlite" || scheme === "jsonl") && !rest.dryRun) mkdirSync(localPathFromUrl(to), { recursive: true });
    // The archive the index names: its file in a directory; in a bucket, the newest of the
    // namespace's repository cut at or before its cut (checked by backupId below).
    const repo = namespaceLocation(from, entry.namespace);
    const pinned = parseLocation(from).kind === "directory" ? { from: join(repo, `${entry.backupId}${ARCHIVE_EXTENSION}`) } : { from: repo, asOf: entry.cut };
    const r = await restore({
      ...rest,
      ...pinned,
      to: target,
      namespace: entry.namespace,
      ...(checkpointDir !== undefined ? { checkpointPath: join(checkpointDir, `${entry.namespace}.json`) } : {}),
    });
    const restoredFrom = r.chain[r.chain.length - 1] ?? "";
    if (!restoredFrom.includes(entry.backupId) || r.stateDigest !== entry.stateDigest) {
      throw dgentError("DGENT_BACKUP_CHAIN", `namespace ${entry.namespace}: the run ${index.runId} names archive ${entry.backupId}, but its repository resolved to ${restoredFrom}`, {
        unit: UNIT,
        details: { archive: restoredFrom },
      });
    }
    const report = { ...r, namespace: entry.namespace };
    reports.push(report);
    await onNamespace?.(report);
  }
  return { runId: index.runId, namespaces: reports, verified: rest.dryRun ? null : reports.every((r) => r.verified === true) };
}
