import { randomBytes } from "node:crypto";
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance, type Json, type Target } from "../../testing/index.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { s3Adapter, type S3Options } from "./index.js";

// The kit, run exactly as a third party would: one s3rver for the file, one bucket, and a fresh
// namespace (key prefix) per instance.
const BUCKET = "dgent-kit";
let server: S3Server;
const optionsOf = new WeakMap<object, S3Options>();

function make(options: S3Options): Target {
  const adapter = s3Adapter(options);
  optionsOf.set(adapter, options);
  return adapter;
}

function fresh(): S3Options {
  return { ...server.clientOptions, bucket: BUCKET, namespace: `kit-${randomBytes(6).toString("hex")}`, retryBaseDelayMs: 5 };
}

runConformance(
  {
    name: "s3",
    async beforeAll() {
      server = await startS3();
      await server.createBucket(BUCKET);
    },
    afterAll: () => server?.stop(),
    create: () => make(fresh()),
    reopen: (previous) => make(optionsOf.get(previous) as S3Options),
    async destroy(instance) {
      const options = optionsOf.get(instance) as S3Options;
      const client = new S3Client(server.clientOptions);
      const Prefix = `dgent/${options.namespace}/`;
      for (;;) {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix, MaxKeys: 1000 }));
        const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key as string }));
        if (keys.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
      }
      client.destroy();
    },
    child: {
      module: new URL("../../test/fixtures/child-s3.mjs", import.meta.url),
      args: (instance) => JSON.parse(JSON.stringify(optionsOf.get(instance))) as Json,
    },
  },
  { describe, it, beforeAll, afterAll },
  // Half the default: the emulator serves the racing writers' puts one at a time, and the test
  // must fit in the test timeout on a loaded machine (test/README.md, "Races and time").
  { perProcess: 50 },
);
