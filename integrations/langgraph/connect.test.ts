/**
 * Opening a saver or a long-term store the way LangGraph's own savers open: `fromConnString` with
 * a URL of any registered scheme, `fromConfig` with a dgent config, `new DgentSaver()` on the
 * embedded default; `setup()` opens, `end()` closes what the saver opened and nothing else.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emptyCheckpoint } from "@langchain/langgraph-checkpoint";
import { afterAll, expect, it } from "vitest";
import { createStore } from "../../core/store.js";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { DgentSaver, DgentStore } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-lg-connect-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const meta = { source: "input" as const, step: -1, parents: {} };
const thread = { configurable: { thread_id: "t" } };

it("fromConnString(sqlite://…): a file that a second saver opens again", async () => {
  const file = join(dir, "conn.db");
  const saver = DgentSaver.fromConnString(`sqlite://${file}`);
  await saver.setup();
  const cp = emptyCheckpoint();
  await saver.put(thread, cp, meta, {});
  await saver.end();
  await expect((await saver.store()).get("x")).rejects.toMatchObject({ code: "DGENT_CLOSED" });

  const again = DgentSaver.fromUrl(`sqlite://${file}`);
  expect((await again.getTuple(thread))?.checkpoint.id).toBe(cp.id);
  expect((await again.store()).tiers.map((t) => t.name)).toEqual(["sqlite"]);
  await again.end();
});

it("fromConnString with other schemes, and a URL nothing accepts", async () => {
  const mem = DgentSaver.fromConnString("memory:");
  await mem.put(thread, emptyCheckpoint(), meta, {});
  expect((await mem.store()).tiers.map((t) => t.name)).toEqual(["memory"]);
  await mem.end();
  const log = DgentStore.fromConnString(`jsonl://${join(dir, "store.jsonl")}`);
  await log.put(["a"], "k", { v: 1 });
  expect((await log.get(["a"], "k"))?.value).toEqual({ v: 1 });
  await log.end();
  const bad = DgentSaver.fromConnString("nosuch://x");
  await expect(bad.setup()).rejects.toMatchObject({ code: "DGENT_UNKNOWN_ADAPTER" });
});

it("fromConfig: a dgent config (object or file) names the tiers", async () => {
  const saver = DgentSaver.fromConfig({ tiers: [{ adapter: "sqlite", options: { path: join(dir, "config.db") } }, "memory"] });
  await saver.put(thread, emptyCheckpoint(), meta, {});
  expect((await saver.store()).tiers.map((t) => t.name)).toEqual(["sqlite", "memory"]);
  await saver.end();
  expect(existsSync(join(dir, "config.db"))).toBe(true);
});

it("new DgentSaver(): the embedded default (SQLite under $XDG_DATA_HOME/dgent), in the namespace asked for", async () => {
  const saved = { ...process.env };
  process.env.XDG_DATA_HOME = dir;
  delete process.env.DGENT_DATABASE_URL;
  delete process.env.DGENT_BACKEND;
  try {
    const saver = new DgentSaver({ namespace: "graphs" });
    await saver.put(thread, emptyCheckpoint(), meta, {});
    await saver.end();
    expect(existsSync(join(dir, "dgent", "graphs.db"))).toBe(true);
  } finally {
    process.env = saved;
  }
});

it("end() leaves a store that was passed in open", async () => {
  const store = createStore({ tiers: [memoryAdapter()] });
  const saver = new DgentSaver({ store });
  await saver.put(thread, emptyCheckpoint(), meta, {});
  await saver.end();
  expect(await store.count({})).toBe(1);
  await store.close();
});
