import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// Drives the built CLI as a user would: a real process, a real SQLite file under XDG_DATA_HOME.
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function dgent(args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? "",
    env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data"), ...options.env },
  });
  return { code: result.status, out: result.stdout, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

function expectOneLineError(r: ReturnType<typeof dgent>, code: number, pattern: RegExp) {
  expect(r.code).toBe(code);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^dgent: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe("the dgent CLI on the embedded default", () => {
  it("put, get, chain, list, delete and backend work across separate processes", () => {
    const root = dgent(["put", "user asked: what is the capital of France?", "--meta", "role=user"]);
    expect(root.code).toBe(0);
    const rootId = root.stdout.trim();
    expect(rootId).toMatch(/^[0-9a-f-]{36}$/);
    const thought = dgent(["put", "--parent", rootId, "--meta", "role=agent", "--meta", "step=think"], { input: "recall: Paris" });
    const thoughtId = thought.stdout.trim();
    const answer = dgent(["put", "Paris.", "-p", thoughtId, "--json"]);
    const answerId = (JSON.parse(answer.stdout) as { id: string }).id;

    expect(dgent(["get", thoughtId]).stdout).toBe("recall: Paris");
    const asJson = JSON.parse(dgent(["get", rootId, "--json"]).stdout) as Record<string, unknown>;
    expect(asJson).toMatchObject({ id: rootId, causalParent: null, metadata: { role: "user" }, content: "user asked: what is the capital of France?" });

    const chain = dgent(["chain", answerId]);
    expect(chain.code).toBe(0);
    const order = [rootId, thoughtId, answerId].map((id) => chain.stdout.indexOf(id));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const chainJson = JSON.parse(dgent(["chain", answerId, "--json"]).stdout) as Array<{ id: string }>;
    expect(chainJson.map((d) => d.id)).toEqual([rootId, thoughtId, answerId]);

    const table = dgent(["list"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+CREATED\s+BYTES/);
    expect(table.stdout).toContain("role=agent,step=think");
    const listed = JSON.parse(dgent(["list", "--limit", "2", "--json"]).stdout) as Array<{ id: string }>;
    expect(listed.map((d) => d.id)).toEqual([answerId, thoughtId]);

    const backend = JSON.parse(dgent(["backend", "--json"]).stdout) as { landing: string; volatile: boolean; tiers: Array<{ count: number }> };
    expect(backend.landing).toBe("sqlite");
    expect(backend.volatile).toBe(false);
    expect(backend.tiers[0]?.count).toBe(3);
    expect(dgent(["backend"]).stdout).toMatch(/writes land on sqlite/);

    expect(dgent(["delete", thoughtId]).code).toBe(0);
    expect(dgent(["delete", thoughtId]).code).toBe(1);
    expect(dgent(["get", thoughtId]).code).toBe(1);
    expect((JSON.parse(dgent(["chain", answerId, "--json"]).stdout) as unknown[]).length).toBe(1);
  });

  it("binary content from stdin round-trips byte for byte", () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const id = dgent(["put", "-n", "binary"], { input: bytes }).stdout.trim();
    expect(Buffer.compare(dgent(["get", id, "-n", "binary"]).out, bytes)).toBe(0);
    expect(JSON.parse(dgent(["get", id, "-n", "binary", "--json"]).stdout)).toHaveProperty("contentBase64", bytes.toString("base64"));
  });

  it("namespaces are separate stores", () => {
    const id = dgent(["put", "only in a", "--namespace", "ns-a"]).stdout.trim();
    expect(dgent(["get", id, "--namespace", "ns-a"]).code).toBe(0);
    expect(dgent(["get", id, "--namespace", "ns-b"]).code).toBe(1);
  });

  it("bad input gives one line, a code and a non-zero exit, never a stack trace", () => {
    expectOneLineError(dgent(["lsit"]), 2, /unknown command "lsit"; did you mean "list"\?.*\[DGENT_USAGE\]/);
    expectOneLineError(dgent(["put", "x", "--meta", "novalue"]), 2, /--meta takes key=value/);
    expectOneLineError(dgent(["list", "--limit", "ten"]), 2, /--limit takes a whole number/);
    expectOneLineError(dgent(["list", "--bogus"]), 2, /Unknown option '--bogus'/);
    expectOneLineError(dgent(["get"]), 2, /missing ID/);
    expectOneLineError(dgent(["put", "x", "--id", "bad\u0001id"]), 1, /control character.*\[DGENT_INVALID_ID\]/);
    expectOneLineError(dgent(["put", "x", "--meta", "k=v", "--namespace", "../etc"]), 1, /namespace.*\[DGENT_INVALID_OPTIONS\]/);
    expectOneLineError(dgent(["get", "nope"]), 1, /no datum with id "nope"/);
    expectOneLineError(dgent(["list", "--after", "yesterday-ish"]), 2, /--after takes/);
  });

  it("a file that is not a database, or an unwritable data dir, is a coded one-line error", () => {
    const dir = join(home, "broken");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "default.db"), "this is not sqlite, it is a shopping list\n".repeat(20));
    expectOneLineError(dgent(["list", "--data-dir", dir]), 1, /\[DGENT_NOT_A_DATABASE\]/);
    const file = join(home, "a-file");
    writeFileSync(file, "x");
    expectOneLineError(dgent(["put", "x", "--data-dir", join(file, "sub")]), 1, /\[DGENT_DATA_DIR_UNWRITABLE\]/);
  });

  it("DGENT_BACKEND and DGENT_DATABASE_URL choose the tier", () => {
    const db = join(home, "chosen.db");
    const id = dgent(["put", "x"], { env: { DGENT_DATABASE_URL: `sqlite://${db}` } }).stdout.trim();
    expect(dgent(["get", id], { env: { DGENT_DATABASE_URL: `sqlite://${db}` } }).stdout).toBe("x");
    expect(dgent(["get", id]).code).toBe(1);
    const jsonl = JSON.parse(dgent(["backend", "--json"], { env: { DGENT_BACKEND: "jsonl" } }).stdout) as { landing: string };
    expect(jsonl.landing).toBe("jsonl");
    const mem = dgent(["backend"], { env: { KGENTS_DGENT_BACKEND: "memory" } });
    expect(mem.stdout).toMatch(/VOLATILE/);
  });

  it("--help and --version answer", () => {
    expect(dgent(["--help"]).stdout).toMatch(/Usage: dgent <command>/);
    expect(dgent(["put", "--help"]).stdout).toMatch(/^dgent put/);
    expect(dgent(["--version"]).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
