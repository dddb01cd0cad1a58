/**
 * Interrupt and resume across a process restart: a child process runs an approval graph on a
 * SQLite file until the graph asks for approval, then dies by SIGKILL; a second process resumes
 * it with the answer; then this process opens the file with a new store and reads the thread as
 * it ended. The children import the built package (`npm run build` first), as a user would.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createStore } from "../../core/store.js";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { DgentSaver } from "./index.js";

const run = promisify(execFile);
const FIXTURE = new URL("./fixtures/approval.mjs", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "dgent-lg-restart-"));

beforeAll(() => {
  if (!existsSync(new URL("../../dist/integrations/langgraph/index.js", import.meta.url))) {
    throw new Error("dist/integrations/langgraph is missing: run `npm run build` first");
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function child(mode: "start" | "resume", file: string): Promise<{ code: number | null; signal: string | null; json: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, [FIXTURE, mode, file, "approval-1"], { cwd: dir });
    return { code: 0, signal: null, json: JSON.parse(stdout) };
  } catch (error) {
    const e = error as { code: number | null; signal: string | null; stdout: string; stderr: string };
    if (e.signal === null) throw new Error(`child ${mode} failed: ${e.stderr}`);
    return { code: e.code, signal: e.signal, json: JSON.parse(e.stdout) };
  }
}

it("a graph interrupted in one process (killed) is resumed in another and read back in a third store", async () => {
  const file = join(dir, "approval.db");
  const first = await child("start", file);
  expect(first.signal).toBe("SIGKILL");
  expect(first.json).toEqual({ interrupt: [{ question: "approve the plan?" }], steps: ["plan", "approve"] });

  const second = await child("resume", file);
  // The plan is not made again: the new process starts from the checkpoint at the interrupt.
  expect(second.json).toEqual({
    out: { request: "deploy", plan: "steps for deploy", approved: "yes", result: "done: steps for deploy" },
    steps: ["approve", "act"],
  });

  const store = createStore({ tiers: [sqliteAdapter({ path: file })] });
  const saver = new DgentSaver({ store });
  const latest = await saver.getTuple({ configurable: { thread_id: "approval-1" } });
  expect(latest?.checkpoint.channel_values).toMatchObject({ result: "done: steps for deploy", approved: "yes" });
  expect(latest?.metadata?.source).toBe("loop");
  const history = [];
  for await (const t of saver.list({ configurable: { thread_id: "approval-1" } })) history.push(t.metadata?.step);
  expect(history).toEqual([3, 2, 1, 0, -1]);
  await store.close();
});
