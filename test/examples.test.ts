import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const xdg = mkdtempSync(join(tmpdir(), "dgent-example-"));
afterAll(() => rmSync(xdg, { recursive: true, force: true }));

describe("examples/agent-memory.mjs", () => {
  it("stores an episode in SQLite under XDG_DATA_HOME, prints its chain, and finds it after a restart", () => {
    const script = new URL("../examples/agent-memory.mjs", import.meta.url).pathname;
    const env = { ...process.env, XDG_DATA_HOME: xdg };
    const first = spawnSync(process.execPath, [script], { env, encoding: "utf8" });
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/memory lives on sqlite \(local\)/);
    expect(first.stdout).toMatch(/causal chain of the answer:\n {2}1\. \[user\] What's the weather in Lisbon tomorrow\?\n(.*\n){2} {2}4\. \[answer\]/);
    expect(first.stdout).toMatch(/after restart \(pid \d+\): found all 4 memories/);
    expect(existsSync(join(xdg, "dgent", "agent-memory-example.db"))).toBe(true);
    // A second run adds a second episode to the same file.
    const second = spawnSync(process.execPath, [script], { env, encoding: "utf8" });
    expect(second.status).toBe(0);
  });
});
