/**
 * The search suite (testing/suites/search.ts) on the local tiers: memory, JSONL (vectors as datums), SQLite
 * with sqlite-vec (vectors in a vec0 table of the same file, a native index) and SQLite with the
 * datum storage. S3 and Postgres run it in their own files.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { jsonlAdapter } from "../../adapters/jsonl/index.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore } from "../../core/store.js";
import { recallPlugin } from "./index.js";
import { runSearchSuite } from "../../testing/suites/search.js";

const fw = { describe, it, beforeAll, afterAll };
const report = (line: string) => process.stdout.write(`${line}\n`);
let dir = "";
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dgent-recall-suite-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (ext: string) => join(dir, `s${++n}.${ext}`);
const paths = new WeakMap<object, string>();

runSearchSuite({ name: "memory", create: (o) => createStore({ tiers: [memoryAdapter()], plugins: [recallPlugin(o)] }) }, fw, { report });

runSearchSuite(
  {
    name: "jsonl (vectors as datums)",
    create(o) {
      const path = file("jsonl");
      const store = createStore({ tiers: [jsonlAdapter({ path })], plugins: [recallPlugin(o)] });
      paths.set(store, path);
      return store;
    },
    reopen: (previous, o) => createStore({ tiers: [jsonlAdapter({ path: paths.get(previous) as string })], plugins: [recallPlugin(o)] }),
  },
  fw,
  { report },
);

runSearchSuite(
  {
    name: "sqlite (sqlite-vec in the same file)",
    nativeIndex: true,
    create(o) {
      const path = file("db");
      const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ ...o, storage: "sqlite-vec" })] });
      paths.set(store, path);
      return store;
    },
    reopen: (previous, o) => createStore({ tiers: [sqliteAdapter({ path: paths.get(previous) as string })], plugins: [recallPlugin({ ...o, storage: "sqlite-vec" })] }),
  },
  fw,
  { report },
);

runSearchSuite(
  {
    name: "sqlite (vectors as datums)",
    create(o) {
      const path = file("db");
      const store = createStore({ tiers: [sqliteAdapter({ path })], plugins: [recallPlugin({ ...o, storage: "datums" })] });
      paths.set(store, path);
      return store;
    },
    reopen: (previous, o) => createStore({ tiers: [sqliteAdapter({ path: paths.get(previous) as string })], plugins: [recallPlugin({ ...o, storage: "datums" })] }),
  },
  fw,
  { report, size: 300, annSize: 1500 },
);
