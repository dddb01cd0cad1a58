/**
 * LangGraph's own conformance suite for checkpointers, `@langchain/langgraph-checkpoint-validation`,
 * run through its library entry (`specTest`, plus the opt-in `deltaChannelHistoryTests`) on the
 * memory, JSONL and SQLite tiers (memory and SQLite also with `latest: "ref"`); Postgres and S3
 * have their own files. The suite's specs call
 * Vitest's globals (`describe`, `it`, `expect`, hooks) instead of importing them, and its package
 * brings Vitest 4 for its CLI; its library entry imports no Vitest at all, so giving it this
 * runner's functions as globals before it registers its tests is all it takes (README "Tests").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deltaChannelHistoryTests, specTest, type CheckpointSaverTestInitializer } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createStore, type Store } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { DgentSaver } from "./index.js";

Object.assign(globalThis, { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach });

const dir = mkdtempSync(join(tmpdir(), "dgent-lg-validation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const tiers: Record<string, () => Store> = {
  memory: () => createStore({ tiers: [memoryAdapter()] }),
  jsonl: () => createStore({ tiers: [jsonlAdapter({ path: join(dir, `v${++n}.jsonl`) })] }),
  sqlite: () => createStore({ tiers: [sqliteAdapter({ path: join(dir, `v${++n}.db`) })] }),
};

// Each tier with the latest checkpoint found by a query (the default); memory and SQLite also by a ref.
const runs: Array<[string, () => Store, "query" | "ref"]> = [
  ...Object.entries(tiers).map(([tier, make]) => [`dgent-${tier}`, make, "query"] as [string, () => Store, "query"]),
  ["dgent-memory-ref", tiers.memory as () => Store, "ref"],
  ["dgent-sqlite-ref", tiers.sqlite as () => Store, "ref"],
];
for (const [name, make, latest] of runs) {
  const initializer: CheckpointSaverTestInitializer<DgentSaver> = {
    checkpointerName: name,
    createCheckpointer: () => new DgentSaver({ store: make(), latest }),
    destroyCheckpointer: async (saver) => (await saver.store()).close(),
  };
  specTest(initializer);
  describe(name, () => deltaChannelHistoryTests(initializer));
}
