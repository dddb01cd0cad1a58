/**
 * LangGraph's checkpointer suite (`@langchain/langgraph-checkpoint-validation`, its library entry;
 * see validation.test.ts for how it runs under this Vitest) on an object store: S3 (s3rver), a
 * tier without transactions, where each putWrites call is one object (README "Pending writes").
 */
import { randomBytes } from "node:crypto";
import { deltaChannelHistoryTests, specTest, type CheckpointSaverTestInitializer } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createStore } from "../../core/store.js";
import { s3Adapter } from "../../adapters/s3/index.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { DgentSaver } from "./index.js";

Object.assign(globalThis, { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach });

const BUCKET = "dgent-langgraph";
let server: S3Server;

const initializer: CheckpointSaverTestInitializer<DgentSaver> = {
  checkpointerName: "dgent-s3",
  beforeAllTimeout: 60_000,
  async beforeAll() {
    server = await startS3();
    await server.createBucket(BUCKET);
  },
  afterAll: () => server?.stop(),
  createCheckpointer() {
    const adapter = s3Adapter({ ...server.clientOptions, bucket: BUCKET, namespace: `lg-${randomBytes(6).toString("hex")}`, retryBaseDelayMs: 5 });
    return new DgentSaver({ store: createStore({ tiers: [adapter] }) });
  },
  destroyCheckpointer: async (saver) => (await saver.store()).close(),
};

specTest(initializer);
describe("dgent-s3", () => deltaChannelHistoryTests(initializer));
