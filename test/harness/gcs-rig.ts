import { randomBytes } from "node:crypto";
import { Storage } from "@google-cloud/storage";
import { expect } from "vitest";
import { gcsAdapter, type GcsOptions } from "../../adapters/gcs/index.js";
import type { GcsEmulator } from "./gcs-emulator.js";
import type { Rig } from "./object-store-cases.js";

/** The shared object-store cases' view of the GCS emulator (see object-store-cases.ts). */
export function gcsRig(emulator: () => GcsEmulator, bucket: string): Rig {
  let storage: Storage | null = null;
  const raw = () => (storage ??= new Storage({ apiEndpoint: emulator().url, projectId: "test", retryOptions: { autoRetry: false } }));
  return {
    name: "gcs",
    bucket,
    make: (options = {}) =>
      gcsAdapter({
        apiEndpoint: emulator().url,
        projectId: "test",
        bucket,
        namespace: `t-${randomBytes(6).toString("hex")}`,
        retryBaseDelayMs: 5,
        ...options,
      } as GcsOptions),
    requests: async () => emulator().stats().byOp,
    resetRequests: async () => emulator().resetStats(),
    ops: { list: "objects.list", read: "objects.download", write: "upload.multipart", delete: ["objects.delete"] },
    fault: async (status, count, op) => emulator().fault({ status, count, ...(op ? { op } : {}) }),
    async bulk(objects) {
      for (const o of objects) emulator().putObject(bucket, o.key, o.body);
    },
    async rawPut(key, body) {
      await raw().bucket(bucket).file(key).save(Buffer.from(body), { resumable: false });
    },
    async rawKeys(prefix) {
      const [files] = await raw().bucket(bucket).getFiles({ prefix });
      return files.map((f) => f.name);
    },
    expectBigUpload(r) {
      // Above the resumable threshold: a session, then the bytes.
      expect(r["upload.resumable.init"]).toBe(1);
      expect(r["upload.resumable.put"]).toBeGreaterThanOrEqual(1);
      expect(r["upload.multipart"]).toBe(2); // the two index markers (root and "big/"), nothing else
    },
    async enforcePreconditions(enforced) {
      emulator().ignorePreconditions = !enforced;
    },
    deadEndpoint: { apiEndpoint: "http://127.0.0.1:9" },
  };
}
