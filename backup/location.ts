/** What `--to` / `--from` name: a `.dgbk` file, a directory, or a bucket prefix; and its repository. */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { dgentError } from "../core/errors.js";
import { bucketRepository } from "./bucket.js";
import { ARCHIVE_EXTENSION, directoryRepository, packedReader, type ArchiveReader, type Repository } from "./container.js";
import { UNIT } from "./format.js";

/** Options for bucket locations that a URL cannot carry (credentials, an injected client). */
export interface BucketOptions {
  readonly s3?: Record<string, unknown>;
  readonly gcs?: Record<string, unknown>;
}

/** Where `--to` / `--from` points. */
export type Location =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "directory"; readonly path: string }
  | { readonly kind: "bucket"; readonly service: "s3" | "gcs"; readonly url: string };

export function parseLocation(text: string): Location {
  if (/^(s3|gs|gcs):\/\//.test(text)) return { kind: "bucket", service: text.startsWith("s3:") ? "s3" : "gcs", url: text };
  const path = resolve(text.startsWith("file://") ? fileURLToPath(text) : text);
  if (path.endsWith(ARCHIVE_EXTENSION) || (existsSync(path) && statSync(path).isFile())) return { kind: "file", path };
  return { kind: "directory", path };
}

/** The repository a location belongs to: a file's directory, the directory, or the bucket prefix. */
export async function repositoryFor(location: Location, options: BucketOptions = {}): Promise<Repository> {
  if (location.kind === "file") return directoryRepository(dirname(location.path));
  if (location.kind === "directory") return directoryRepository(location.path);
  const url = new URL(location.url);
  const bucket = url.hostname;
  const prefix = decodeURIComponent(url.pathname.replace(/^\/+/, ""));
  const keyPrefix = prefix === "" ? "" : prefix.endsWith("/") ? prefix : `${prefix}/`;
  const q = Object.fromEntries(url.searchParams);
  const shown = `${url.protocol}//${bucket}/${keyPrefix}`;
  if (location.service === "s3") {
    const { resolveConfig } = await import("../adapters/s3/options.js");
    const { connectS3 } = await import("../adapters/s3/backend.js");
    const config = resolveConfig({
      bucket,
      ...(q.endpoint ? { endpoint: q.endpoint } : {}),
      ...(q.region ? { region: q.region } : {}),
      ...(q.forcePathStyle ? { forcePathStyle: q.forcePathStyle === "true" } : {}),
      ...(options.s3 ?? {}),
    } as import("../adapters/s3/options.js").S3Options);
    const backend = await connectS3(config);
    await backend.open(false);
    return bucketRepository(backend, keyPrefix, shown);
  }
  const { resolveConfig } = await import("../adapters/gcs/options.js");
  const { connectGcs } = await import("../adapters/gcs/backend.js");
  const config = resolveConfig({
    bucket,
    ...(q.apiEndpoint ? { apiEndpoint: q.apiEndpoint } : {}),
    ...(q.projectId ? { projectId: q.projectId } : {}),
    ...(options.gcs ?? {}),
  } as import("../adapters/gcs/options.js").GcsOptions);
  const backend = await connectGcs(config);
  await backend.open(false);
  return bucketRepository(backend, keyPrefix, shown);
}

/** The archive a location names: the file itself, else the newest archive of the repository. */
export async function openNamed(location: Location, repository: Repository): Promise<ArchiveReader | null> {
  if (location.kind === "file") {
    if (!existsSync(location.path)) {
      throw dgentError("DGENT_BACKUP_CHAIN", `there is no archive at ${location.path}`, { unit: UNIT, details: { archive: location.path } });
    }
    return packedReader(location.path);
  }
  const all = await repository.list();
  const good = all.filter((a) => a.reader !== null);
  for (const a of good.slice(0, -1)) await a.reader?.close();
  return good.length ? (good[good.length - 1]?.reader as ArchiveReader) : null;
}
