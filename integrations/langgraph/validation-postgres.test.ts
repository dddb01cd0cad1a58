/**
 * LangGraph's checkpointer suite (`@langchain/langgraph-checkpoint-validation`, its library entry;
 * see validation.test.ts for how it runs under this Vitest) on the Postgres tier: a throwaway
 * cluster for the file, a fresh schema per checkpointer.
 */
import { deltaChannelHistoryTests, specTest, type CheckpointSaverTestInitializer } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createStore } from "../../core/store.js";
import { postgresAdapter, type PostgresAdapter } from "../../adapters/postgres/index.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { DgentSaver } from "./index.js";

Object.assign(globalThis, { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach });

let server: PostgresServer;
const schemas = new WeakMap<DgentSaver, string>();

const initializer: CheckpointSaverTestInitializer<DgentSaver> = {
  checkpointerName: "dgent-postgres",
  beforeAllTimeout: 60_000,
  async beforeAll() {
    server = await startPostgres();
  },
  afterAll: () => server?.close(),
  createCheckpointer() {
    const adapter: PostgresAdapter = postgresAdapter({ url: server.url, namespace: freshSchema("lg") });
    const saver = new DgentSaver({ store: createStore({ tiers: [adapter] }) });
    schemas.set(saver, adapter.schema);
    return saver;
  },
  async destroyCheckpointer(saver) {
    await (await saver.store()).close();
    await dropSchema(server, schemas.get(saver) as string);
  },
};

specTest(initializer);
describe("dgent-postgres", () => deltaChannelHistoryTests(initializer));
