import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance, type Json, type Target } from "../../testing/index.js";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { gcsAdapter, type GcsOptions } from "./index.js";

// The kit, run exactly as a third party would: one emulator for the file, one bucket, and a fresh
// namespace (key prefix) per instance. Child processes reach the emulator over HTTP.
const BUCKET = "dgent-kit";
let emulator: GcsEmulator;
const optionsOf = new WeakMap<object, GcsOptions>();

function make(options: GcsOptions): Target {
  const adapter = gcsAdapter(options);
  optionsOf.set(adapter, options);
  return adapter;
}

runConformance(
  {
    name: "gcs",
    async beforeAll() {
      emulator = await startGcsEmulator();
      emulator.createBucket(BUCKET);
    },
    afterAll: () => emulator?.stop(),
    create: () =>
      make({
        apiEndpoint: emulator.url,
        projectId: "test",
        bucket: BUCKET,
        namespace: `kit-${randomBytes(6).toString("hex")}`,
        retryBaseDelayMs: 5,
      }),
    reopen: (previous) => make(optionsOf.get(previous) as GcsOptions),
    async destroy(instance) {
      const options = optionsOf.get(instance) as GcsOptions;
      const root = `dgent/${options.namespace}/`;
      const before = emulator.names(BUCKET, root);
      const storage = new (await import("@google-cloud/storage")).Storage({ apiEndpoint: emulator.url, projectId: "test" });
      await storage.bucket(BUCKET).deleteFiles({ prefix: root });
      if (before.length > 0 && emulator.names(BUCKET, root).length > 0) throw new Error(`destroy left objects under ${root}`);
    },
    child: {
      module: new URL("../../test/fixtures/child-gcs.mjs", import.meta.url),
      args: (instance) => JSON.parse(JSON.stringify(optionsOf.get(instance))) as Json,
    },
  },
  { describe, it, beforeAll, afterAll },
  // Half the default: the emulator serves the racing writers' puts one at a time, and the test
  // must fit in the test timeout on a loaded machine (test/README.md, "Races and time").
  { perProcess: 50 },
);
