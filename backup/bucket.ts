/**
 * Archives in a bucket (S3, GCS): one object per chunk under `<prefix><backupId>/`, its
 * `manifest.json` written last, through the object-store tiers' backends.
 */
import { dgentError, isDgentError } from "../core/errors.js";
import type { ObjectBackend } from "../adapters/object-store/backend.js";
import { checkChunk, MANIFEST_NAME, type ArchiveReader, type Repository } from "./container.js";
import { parseManifest, UNIT } from "./format.js";

async function withRetry<T>(what: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await what();
    } catch (error) {
      if (attempt >= 4 || !isDgentError(error) || !error.retryable) throw error;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt * Math.random()));
    }
  }
}

/** Archives in a bucket: `<prefix><backupId>/<chunk>` objects and `<prefix><backupId>/manifest.json`. */
export function bucketRepository(backend: ObjectBackend, prefix: string, location: string): Repository {
  const keyOf = (backupId: string, name: string) => `${prefix}${backupId}/${name}`;
  const reader = async (backupId: string): Promise<ArchiveReader | null> => {
    const archive = `${location}${backupId}/`;
    const bytes = await withRetry(() => backend.get(keyOf(backupId, MANIFEST_NAME)));
    if (bytes === null) return null;
    const manifest = parseManifest(bytes, archive);
    return {
      name: archive,
      manifest,
      async readChunk(entry) {
        const body = await withRetry(() => backend.get(keyOf(backupId, entry.name)));
        if (body === null) {
          throw dgentError("DGENT_BACKUP_TRUNCATED", `chunk ${entry.name} of ${archive} is missing`, { unit: UNIT, details: { archive, chunk: entry.name } });
        }
        return checkChunk(Buffer.from(body.buffer, body.byteOffset, body.byteLength), entry, archive);
      },
      async close() {},
    };
  };
  return {
    location,
    async list() {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await withRetry(() => backend.list(prefix, cursor, 1000));
        for (const o of page.objects) {
          const rest = o.key.slice(prefix.length);
          const slash = rest.indexOf("/");
          if (slash > 0 && rest.slice(slash + 1) === MANIFEST_NAME) ids.push(rest.slice(0, slash));
        }
        cursor = page.cursor;
      } while (cursor !== null);
      const out = [];
      for (const id of ids.sort()) {
        try {
          out.push({ name: `${location}${id}/`, reader: await reader(id), error: null });
        } catch (error) {
          if (!isDgentError(error)) throw error;
          out.push({ name: `${location}${id}/`, reader: null, error });
        }
      }
      return out;
    },
    open: reader,
    async create(backupId) {
      const written: string[] = [];
      return {
        name: `${location}${backupId}/`,
        async writeChunk(name, bytes) {
          written.push(name);
          await withRetry(() => backend.put(keyOf(backupId, name), bytes));
        },
        async finish(manifest) {
          await withRetry(() => backend.put(keyOf(backupId, MANIFEST_NAME), manifest));
        },
        async abort() {
          for (const name of written) await backend.delete(keyOf(backupId, name)).catch(() => false);
        },
      };
    },
    async remove(name) {
      const backupId = name.slice(location.length).replace(/\/$/, "");
      await withRetry(() => backend.delete(keyOf(backupId, MANIFEST_NAME)));
      let cursor: string | null = null;
      do {
        const page = await withRetry(() => backend.list(keyOf(backupId, ""), cursor, 1000));
        for (const o of page.objects) await withRetry(() => backend.delete(o.key));
        cursor = page.cursor;
      } while (cursor !== null);
    },
    async readNote(name) {
      const body = await withRetry(() => backend.get(`${prefix}${name}`));
      return body === null ? null : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    },
    async writeNote(name, bytes) {
      await withRetry(() => backend.put(`${prefix}${name}`, bytes));
    },
    async listNotes(start) {
      const names: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await withRetry(() => backend.list(`${prefix}${start}`, cursor, 1000));
        for (const o of page.objects) {
          const rest = o.key.slice(prefix.length);
          if (!rest.includes("/")) names.push(rest);
        }
        cursor = page.cursor;
      } while (cursor !== null);
      return names.sort();
    },
    close: () => backend.close(),
  };
}

