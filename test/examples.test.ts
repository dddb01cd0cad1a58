import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runProcess } from "./harness/run.js";

const xdg = mkdtempSync(join(tmpdir(), "dgent-example-"));
afterAll(() => rmSync(xdg, { recursive: true, force: true }));

describe("examples/agent-memory.mjs", () => {
  it("stores an episode in SQLite under XDG_DATA_HOME, prints its chain, and finds it after a restart", async () => {
    const script = new URL("../examples/agent-memory.mjs", import.meta.url).pathname;
    const env = { ...process.env, XDG_DATA_HOME: xdg };
    const first = await runProcess(process.execPath, [script], { env });
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/memory lives on sqlite \(local\)/);
    expect(first.stdout).toMatch(/causal chain of the answer:\n {2}1\. \[user\] What's the weather in Lisbon tomorrow\?\n(.*\n){2} {2}4\. \[answer\]/);
    expect(first.stdout).toMatch(/after restart \(pid \d+\): found all 4 memories/);
    expect(existsSync(join(xdg, "dgent", "agent-memory-example.db"))).toBe(true);
    // A second run adds a second episode to the same file.
    const second = await runProcess(process.execPath, [script], { env });
    expect(second.status).toBe(0);
  });
});

describe("examples/checkpoints.mjs", () => {
  it("runs a LangGraph-style checkpointer workload (threads, filters, before, limit, cursors, forks, tails, thread deletion) on the public API", async () => {
    const script = new URL("../examples/checkpoints.mjs", import.meta.url).pathname;
    const run = await runProcess(process.execPath, [script], { env: { ...process.env, XDG_DATA_HOME: xdg } });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("t2, source=loop, before step 5, limit 3: 4, 3, 2");
    expect(run.stdout).toContain("t3 paged oldest first: 12 checkpoints in 3 pages");
    expect(run.stdout).toContain("t1 step 8 has 2 children: ckpt/t1/000009, ckpt/t1/000009-fork");
    expect(run.stdout).toContain("the fork's last 3 steps: 7 → 8 → 9");
    expect(run.stdout).toContain("deleted thread t2: 12 checkpoints; t2 now has 0");
  });
});

/** Lines each pattern example must print (what it shows, checked). */
const EXPECTED_LINES: Record<string, readonly string[]> = {
  "typed.mjs": ["the answer's chain: user → assistant", "refused: [DGENT_LENS_INVALID]", 'read failed: [DGENT_INVALID_CONTENT] datum "msg/broken" does not decode with the codec "json"'],
  "state-functor.mjs": ["after restart: tick: count 3", "last 3 states: 51 (depth 51) → 52 (depth 52) → 53 (depth 53)", "lift(add ; double): 8, 24 — lift(add) ; lift(double): 8, 24"],
  "history.mjs": ["kept 3 of 4 saves:", 'rolled back to the first save: {"theme":"dark","size":12}'],
  "conversation.mjs": ['replies to "Name a colour.": "Blue.", "Green."', "10 turns in all branches"],
  "hybrid.mjs": ["the bridge refused to delete crystals/1; the app's table still has 3 rows"],
  "event-stream.mjs": ["optimistic appends: 1 won, 1 lost with DGENT_REF_CONFLICT", "the subscriber saw 251 events"],
  "agent-loop.mjs": ["< Hello Ada (5 turns in view)"],
};

describe("examples/patterns/*.mjs", () => {
  const dir = new URL("../examples/patterns/", import.meta.url).pathname;
  const programs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".mjs")).sort() : [];
  it("there are pattern examples to run", async () => {
    expect(programs).toContain("hybrid.mjs");
  });
  for (const program of programs) {
    it(`${program} runs to the end: exit 0, nothing on stderr, something shown`, async () => {
      const run = await runProcess(process.execPath, [join(dir, program)], { env: { ...process.env, XDG_DATA_HOME: xdg }, timeout: 300_000 });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout.trim().length).toBeGreaterThan(0);
      for (const line of EXPECTED_LINES[program] ?? []) expect(run.stdout).toContain(line);
    });
  }
});

describe("examples/langgraph.mjs", () => {
  it("runs a LangGraph agent on the embedded default: interrupt, resume in a new saver, history, time travel, long-term memory, deleteThread", async () => {
    const script = new URL("../examples/langgraph.mjs", import.meta.url).pathname;
    const run = await runProcess(process.execPath, [script], { env: { ...process.env, XDG_DATA_HOME: xdg }, timeout: 300_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("the agent asks: refund 40 EUR to ada?");
    expect(run.stdout).toContain("after the approval, in a new saver: refunded 40 EUR; we told you by sms");
    expect(run.stdout).toContain('forked at step 1 with "no": no refund; we told you by sms');
    expect(run.stdout).toMatch(/deleted the thread: \d+ datums before, 0 after/);
    expect(existsSync(join(xdg, "dgent", "langgraph-example.db"))).toBe(true);
  });
});

describe("examples/langchain.mjs and examples/openai-agents.mjs", () => {
  it.each([
    ["langchain.mjs", ["turn 2: (3 messages in view) WHAT DID I SAY?", "two writers, 6 batches: 12 messages, every question followed by its answer", "keys under text-embedding: text-embedding:hello, text-embedding:world", "done"]],
    ["openai-agents.mjs", ["> Your name is Ada.", "4 concurrent pops from 2 connections: note 2, note 3, note 4, note 5", "after restart: Hi, I'm Ada. | Nice to meet you, Ada. | Do you remember me? | note 0 | note 1", "done"]],
  ] as const)("%s runs to the end without a network", async (program, lines) => {
    const run = await runProcess(process.execPath, [new URL(`../examples/${program}`, import.meta.url).pathname], { env: { ...process.env, XDG_DATA_HOME: xdg }, timeout: 300_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    for (const line of lines) expect(run.stdout).toContain(line);
  });
});

describe("examples/crdt/*.mjs", () => {
  it.each([
    ["token-usage.mjs", ['tokens by model: {"large":14336,"small":2652}', "after the offline worker synced: small = 3152", "totals unchanged: true"]],
    ["task-board.mjs", ["after a concurrent remove and add: task-1 = python, security, tests", "1 lost with DGENT_REF_CONFLICT"]],
  ] as const)("%s runs to the end", async (program, lines) => {
    const run = await runProcess(process.execPath, [new URL(`../examples/crdt/${program}`, import.meta.url).pathname], { env: { ...process.env, XDG_DATA_HOME: xdg }, timeout: 300_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    for (const line of lines) expect(run.stdout).toContain(line);
  });
});
