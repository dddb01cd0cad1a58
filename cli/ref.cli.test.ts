import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// `dgent ref` driven as a user would: real processes over one SQLite file under XDG_DATA_HOME.
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-ref-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function dgent(args: string[], input = "") {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data") } });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("dgent ref", () => {
  it("set, get, move with --expect, refuse a stale expectation, list, log and delete", () => {
    const a = dgent(["put", "first"]).stdout.trim();
    const b = dgent(["put", "second"]).stdout.trim();
    const created = dgent(["ref", "set", "thread/1/head", a, "--expect", "absent", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "thread/1/head", target: a, version: 1 });

    const got = dgent(["ref", "get", "thread/1/head"]);
    expect(got.stdout).toMatch(new RegExp(`^thread/1/head  ${a}  version 1  \\d{4}-`));

    expect(dgent(["ref", "set", "thread/1/head", b, "--expect", "1"]).code).toBe(0);
    const stale = dgent(["ref", "set", "thread/1/head", a, "--expect", "1"]);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(/DGENT_REF_CONFLICT/);
    expect(stale.stderr).toMatch(/version 2/);
    expect(JSON.parse(dgent(["ref", "get", "thread/1/head", "--json"]).stdout)).toMatchObject({ target: b, version: 2 });

    expect(dgent(["ref", "set", "thread/1/head", a, "--expect", `target:${b}`]).code).toBe(0);
    dgent(["ref", "set", "thread/2/head", a]);
    const listed = JSON.parse(dgent(["ref", "list", "thread/", "--json"]).stdout) as { name: string }[];
    expect(listed.map((r) => r.name)).toEqual(["thread/1/head", "thread/2/head"]);

    const log = JSON.parse(dgent(["ref", "log", "thread/1/head", "--json"]).stdout) as { from: string | null; to: string | null; by: string }[];
    expect(log.map((e) => [e.from, e.to])).toEqual([
      [b, a],
      [a, b],
      [null, a],
    ]);
    expect(log[0]?.by).toMatch(/:\d+$/);

    expect(dgent(["ref", "delete", "thread/2/head", "--expect", "2"]).stderr).toMatch(/DGENT_REF_CONFLICT/);
    const deleted = dgent(["ref", "delete", "thread/2/head", "--expect", "1", "--json"]);
    expect(JSON.parse(deleted.stdout)).toEqual({ name: "thread/2/head", existed: true });
    expect(dgent(["ref", "get", "thread/2/head"]).code).toBe(1);
  });

  it("bad subcommands and --expect values are usage errors with a code", () => {
    expect(dgent(["ref"]).stderr).toMatch(/get, set, delete, list or log \[DGENT_USAGE\]/);
    expect(dgent(["ref", "move", "x"]).stderr).toMatch(/DGENT_USAGE/);
    expect(dgent(["ref", "set", "x", "y", "--expect", "soon"]).stderr).toMatch(/--expect takes .*\[DGENT_USAGE\]/);
    expect(dgent(["ref", "get", "x", "--expect", "1"]).stderr).toMatch(/--expect applies .*\[DGENT_USAGE\]/);
    expect(dgent(["ref", "set", "bad\u0007name", "y"]).stderr).toMatch(/DGENT_INVALID_ID/);
  });
});
