import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { runBench } from "../benchmarks/cli.js";
import { loadConfig } from "../compose/config/load.js";
import { expectCode } from "../testing/index.js";
import { run } from "./commands.js";
import { errorLine } from "./main.js";
import { safe, safeJson, safeYaml } from "./terminal.js";

// The CLI in this process, on a real SQLite store under a temporary XDG_DATA_HOME: what a
// terminal would receive, byte for byte, for hostile ids, tags, paths and messages; and the
// command line's rough edges.

const home = mkdtempSync(join(tmpdir(), "dgent-cli-safety-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** What must never reach a terminal raw (line feeds between lines excepted). */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

interface Result {
  code: number;
  out: string;
  err: string;
}

async function dgent(args: string[], options: { input?: string | Buffer; env?: Record<string, string>; tty?: boolean } = {}): Promise<Result> {
  let out = "";
  let err = "";
  const stdin = Readable.from(options.input === undefined || options.input.length === 0 ? [] : [Buffer.from(options.input)]) as NodeJS.ReadableStream & {
    isTTY?: boolean;
  };
  if (options.tty) stdin.isTTY = true;
  const io = {
    stdout: (c: string | Uint8Array) => (out += typeof c === "string" ? c : Buffer.from(c).toString("utf8")),
    stderr: (c: string) => (err += c),
    stdin,
    env: { HOME: home, XDG_DATA_HOME: join(home, "data"), ...options.env },
  };
  try {
    return { code: await run(args, io), out, err };
  } catch (error) {
    // What cli/main.ts does with an error: one line, exit 2 for usage, else 1.
    return { code: (error as { code?: string }).code === "DGENT_USAGE" ? 2 : 1, out, err: err + errorLine(error) };
  }
}

function expectSafe(r: Result): void {
  expect(r.out, `stdout holds a raw control or bidi character: ${JSON.stringify(r.out)}`).not.toMatch(UNSAFE);
  expect(r.err, `stderr holds a raw control or bidi character: ${JSON.stringify(r.err)}`).not.toMatch(UNSAFE);
}

let namespaces = 0;
const ns = () => `safety-${namespaces++}`;

/** Ids may hold bidi controls and separators (no C0/C1); tags and content may hold anything but U+0000. */
const HOSTILE_IDS = ["invoice\u202Etxt.exe", "a\u2066b\u2069c", "rtl\u200Fmark\u061C", "line\u2028sep\u2029para", "\u202Aembed\u202C"];
const HOSTILE_TAGS: Record<string, string> = {
  csi: "\u001b[2J\u001b[31mred\u001b[0m",
  osc: "\u001b]0;pwned\u0007",
  c1: "\u009b31mbright\u0085nel",
  "k\u001b[1mey": "bidi\u202Eevil",
  cr: "over\rwrite\ttab\bback",
};

describe("hostile values reach a terminal escaped, and JSON exactly", () => {
  it("put, list, get, chain and delete", async () => {
    const n = ns();
    const meta = Object.entries(HOSTILE_TAGS).flatMap(([k, v]) => ["--meta", `${k}=${v}`]);
    const ids: string[] = [];
    let parent: string | null = null;
    for (const id of HOSTILE_IDS) {
      const put = await dgent(["put", `content of ${id}\u001b[5m`, "--id", id, "-n", n, ...meta, ...(parent ? ["--parent", parent] : [])]);
      expect(put.code, put.err).toBe(0);
      expectSafe(put);
      expect(put.out).toBe(`${safe(id)}\n`);
      ids.push(id);
      parent = id;
    }

    const table = await dgent(["list", "-n", n]);
    expect(table.code).toBe(0);
    expectSafe(table);
    expect(table.out).toContain("invoice\\u{202e}txt.exe");
    expect(table.out).toContain("\\x1b[2J");
    expect(table.out.split("\n").filter(Boolean)).toHaveLength(2 + HOSTILE_IDS.length); // one line per datum

    const json = await dgent(["list", "-n", n, "--json"]);
    expectSafe(json);
    const listed = JSON.parse(json.out) as Array<{ id: string; metadata: Record<string, string> }>;
    expect(listed.map((d) => d.id).sort()).toEqual([...ids].sort());
    for (const d of listed) expect(d.metadata).toEqual(HOSTILE_TAGS);

    const last = ids[ids.length - 1] as string;
    const chain = await dgent(["chain", last, "-n", n]);
    expect(chain.code).toBe(0);
    expectSafe(chain);
    expect(chain.out.trim().split("\n")).toHaveLength(ids.length);
    const chainJson = await dgent(["chain", last, "-n", n, "--json"]);
    expectSafe(chainJson);
    expect((JSON.parse(chainJson.out) as Array<{ id: string }>).map((d) => d.id)).toEqual(ids);

    const got = await dgent(["get", ids[0] as string, "-n", n, "--json"]);
    expectSafe(got);
    expect(JSON.parse(got.out)).toMatchObject({ id: ids[0], metadata: HOSTILE_TAGS, content: `content of ${ids[0]}\u001b[5m` });

    const missing = await dgent(["get", "no\u202Esuch", "-n", n]);
    expect(missing.code).toBe(1);
    expectSafe(missing);
    expect(missing.err).toBe('dgent: no datum with id "no\\u{202e}such"\n');
    const invalid = await dgent(["get", "esc\u001b[31m\u009b", "-n", n]);
    expect(invalid.code).toBe(1);
    expectSafe(invalid);
    expect(invalid.err).toMatch(/\[DGENT_INVALID_ID\]\n$/);

    const deleted = await dgent(["delete", ids[1] as string, "-n", n]);
    expect(deleted.code).toBe(0);
    expectSafe(deleted);
    expect(deleted.out).toBe(`deleted ${safe(ids[1] as string)}\n`);
    const deletedJson = await dgent(["delete", ids[2] as string, "-n", n, "--json"]);
    expectSafe(deletedJson);
    expect(JSON.parse(deletedJson.out)).toEqual({ id: ids[2], deleted: true });
  });

  it("backend, config print and config validate with a data directory and a config path full of escapes", async () => {
    const dir = join(home, "evil\u202E\u001b[31m\u0085dir");
    mkdirSync(dir, { recursive: true });
    const n = ns();
    expect((await dgent(["put", "x", "-n", n, "--data-dir", dir])).code).toBe(0);
    const text = await dgent(["backend", "-n", n, "--data-dir", dir]);
    expect(text.code).toBe(0);
    expectSafe(text);
    expect(text.out).toContain("evil\\u{202e}\\x1b[31m\\x85dir");
    const json = await dgent(["backend", "-n", n, "--data-dir", dir, "--json"]);
    expectSafe(json);
    expect((JSON.parse(json.out) as { tiers: Array<{ location?: string }> }).tiers[0]?.location).toBe(join(dir, `${n}.db`));

    const printed = await dgent(["config", "print", "--data-dir", dir]);
    expect(printed.code).toBe(0);
    expectSafe(printed);
    expect((parse(printed.out) as { dataDir: string }).dataDir).toBe(dir);
    const printedJson = await dgent(["config", "print", "--data-dir", dir, "--json"]);
    expectSafe(printedJson);
    expect((JSON.parse(printedJson.out) as { dataDir: string }).dataDir).toBe(dir);

    const file = join(dir, "dgent.config.yaml");
    writeFileSync(file, `namespace: ${n}\ntiers:\n  - adapter: memory\n`);
    const valid = await dgent(["config", "validate", "--config", file]);
    expect(valid.code).toBe(0);
    expectSafe(valid);
    expect(valid.out).toContain("ok: ");
    writeFileSync(file, `namespace: ${n}\ntiers:\n  - adapter: memory\n    options: { bogus\u202E: 1 }\n`);
    const invalid = await dgent(["config", "validate", "--config", file]);
    expect(invalid.code).toBe(1);
    expectSafe(invalid);

    const unwritable = await dgent(["list", "--data-dir", join(dir, "x\u202E", "\u0000nul")]);
    expect(unwritable.code).toBe(1);
    expectSafe(unwritable);
  });

  it("the report of a migration with hostile conflicting ids", async () => {
    const a = join(home, "mig-a.db");
    const b = join(home, "mig-b.db");
    const id = "conf\u202Elict";
    expect((await dgent(["put", "one", "--id", id], { env: { DGENT_DATABASE_URL: `sqlite://${a}` } })).code).toBe(0);
    expect((await dgent(["put", "two", "--id", id], { env: { DGENT_DATABASE_URL: `sqlite://${b}` } })).code).toBe(0);
    const r = await dgent(["migrate", "--from", `sqlite://${a}`, "--to", `sqlite://${b}`, "--dry-run"]);
    expect(r.code).toBe(1);
    expectSafe(r);
    expect(r.out).toContain("conf\\u{202e}lict");
    const j = await dgent(["migrate", "--from", `sqlite://${a}`, "--to", `sqlite://${b}`, "--dry-run", "--json"]);
    expectSafe(j);
    expect((JSON.parse(j.out) as { conflicts: string[] }).conflicts).toEqual([id]);
  });

  it("safeJson and safeYaml keep every value exact; safe escapes every unsafe character", () => {
    const all = Array.from({ length: 0x2070 }, (_, i) => String.fromCharCode(i)).join("");
    const value = { [`key${all.slice(0, 40)}`]: all, list: [all, "plain"], n: 1 };
    expect(safeJson(value)).not.toMatch(UNSAFE);
    expect(JSON.parse(safeJson(value, 2))).toEqual(value);
    const yaml = safeYaml(value);
    expect(yaml).not.toMatch(UNSAFE);
    expect(parse(yaml)).toEqual(value);
    expect(safe(all)).not.toMatch(/[\n]/);
    expect(safe(all)).not.toMatch(UNSAFE);
    expect(safe("plain / ü € 𝄞 \u200d")).toBe("plain / ü € 𝄞 \u200d");
  });
});

describe("the command line's rough edges", () => {
  it("options every command takes may come before the command", async () => {
    const n = ns();
    const put = await dgent(["--namespace", n, "put", "before the command"]);
    expect(put.code, put.err).toBe(0);
    const id = put.out.trim();
    expect(JSON.parse((await dgent(["--json", "-n", n, "list"])).out)).toHaveLength(1);
    expect(JSON.parse((await dgent([`--namespace=${n}`, "--json", "get", id])).out)).toMatchObject({ content: "before the command" });
    expect((await dgent(["-n", n, "get", id])).out).toBe("before the command");
    const dir = join(home, "data-before");
    expect((await dgent(["--data-dir", dir, "-n", n, "put", "x"])).code).toBe(0);
    expect(existsSync(join(dir, `${n}.db`))).toBe(true);
    const unknown = await dgent(["--limit", "3", "list"]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^dgent: unknown option "--limit" before the command.*\[DGENT_USAGE\]\n$/);
    expect((await dgent(["--namespace"])).code).toBe(2);
    const help = await dgent(["--json"]);
    expect(help.code).toBe(2);
    expect(help.out).toMatch(/Usage: dgent <command>/);
    expect((await dgent(["-n", n, "put", "--help"])).out).toMatch(/^dgent put/);
  });

  it("contradictory or repeated options are usage errors, not silently ignored", async () => {
    const n = ns();
    for (const args of [
      ["put", "x", "--id", "a", "--content-id"],
      ["put", "x", "--id", "a", "--id-prefix", "p/"],
      ["-n", "one", "list", "-n", "two"],
      ["list", "--limit", "1", "--limit", "2"],
      ["migrate", "--from", "sqlite:///a.db", "--to", "sqlite:///b.db", "--dry-run", "--checkpoint", "c.json"],
      ["init", "--stdout", "--force"],
    ]) {
      const r = await dgent([...args, ...(args.includes("-n") ? [] : ["-n", n])]);
      expect(r.code, `${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(/\[DGENT_USAGE\]\n$/);
    }
    expect(JSON.parse((await dgent(["list", "-n", n, "--json"])).out)).toEqual([]); // nothing was stored
    expect((await dgent(["-n", n, "list", "-n", n])).code).toBe(0); // the same value twice is one choice
    expect((await dgent(["put", "x", "--content-id", "--id-prefix", "p/", "-n", n])).out).toMatch(/^p\/[0-9a-f]{64}\n$/);
  });

  it("put refuses empty content unless --allow-empty", async () => {
    const n = ns();
    const empty = await dgent(["put", "-n", n], { input: "" });
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/^dgent: nothing to store: stdin gave 0 bytes; --allow-empty stores an empty datum \[DGENT_USAGE\]\n$/);
    expect((await dgent(["put", "", "-n", n])).code).toBe(2);
    const file = join(home, "empty-file");
    writeFileSync(file, "");
    expect((await dgent(["put", "--file", file, "-n", n])).err).toMatch(/--file .*empty-file is empty/);
    expect(JSON.parse((await dgent(["list", "-n", n, "--json"])).out)).toEqual([]);
    const allowed = await dgent(["put", "--allow-empty", "-n", n, "--json"], { input: "" });
    expect(allowed.code, allowed.err).toBe(0);
    const { id } = JSON.parse(allowed.out) as { id: string };
    expect(JSON.parse((await dgent(["get", id, "-n", n, "--json"])).out)).toMatchObject({ bytes: 0, content: "" });
    expect((await dgent(["put", "-n", n], { tty: true })).err).toMatch(/nothing to store: give CONTENT/);
  });

  it("dgent bench refuses an unknown tier with a code", async () => {
    let err = "";
    const io = { stdout: () => undefined, stderr: (s: string) => void (err += s), env: {}, stderrIsTTY: false };
    expect(await runBench(["--tier", "nonsense"], io)).toBe(2);
    expect(err).toMatch(/^dgent bench: unknown tier "nonsense".*\[DGENT_USAGE\]\n$/);
    err = "";
    expect(await runBench(["--tier", ","], io)).toBe(2);
    expect(err).toMatch(/--tier names no tier.*\[DGENT_USAGE\]/);
    err = "";
    expect(await runBench(["--fast"], io)).toBe(2);
    expect(err).toMatch(/^dgent bench: .*\[DGENT_USAGE\]\n/);
    // A directory it cannot make is refused before anything runs, also under /proc.
    for (const args of [["--data-dir", "/proc/dgent-bench/x"], ["--out", "/proc/dgent-bench-out"]]) {
      err = "";
      expect(await runBench([...args, "--tier", "none", "--skip", "peers,hooks,scaling"], io)).toBe(1);
      expect(err).toMatch(/^dgent bench: cannot write to data directory \/proc\/.*\[DGENT_DATA_DIR_UNWRITABLE\]\n$/);
    }
  });
});

describe("hangs and wrong codes", () => {
  it("--data-dir under /proc is DGENT_DATA_DIR_UNWRITABLE for every local tier, not a spin", async () => {
    for (const env of [{}, { DGENT_BACKEND: "jsonl" }, { DGENT_BACKEND: "sqlite" }] as Record<string, string>[]) {
      for (const dir of ["/proc/dgent-test", "/proc/dgent-test/deeper/still", "/proc/self/dgent-test"]) {
        const r = await dgent(["list", "--data-dir", dir], { env });
        expect(r.code, JSON.stringify(env)).toBe(1);
        expect(r.err).toMatch(/^dgent: cannot write to data directory \/proc\/.*\[DGENT_DATA_DIR_UNWRITABLE\]\n$/);
      }
    }
  });

  it("--config naming a directory says so, with DGENT_CONFIG_NOT_FOUND", async () => {
    const dir = join(home, "conf-dir");
    mkdirSync(dir, { recursive: true });
    const r = await dgent(["list", "--config", dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is a directory, not a config file.*\[DGENT_CONFIG_NOT_FOUND\]\n$/);
    writeFileSync(join(dir, "dgent.config.yaml"), "tiers: [memory]\n");
    expect((await dgent(["list", "--config", dir])).err).toContain(`did you mean ${join(dir, "dgent.config.yaml")}?`);
    expect((await dgent(["list"], { env: { DGENT_CONFIG: dir } })).err).toMatch(/DGENT_CONFIG names .* which is a directory/);
  });

  it("YAML alias recursion, alias bombs and dangling aliases are DGENT_CONFIG_SYNTAX at file:line:column", async () => {
    const dir = join(home, "aliases");
    mkdirSync(dir, { recursive: true });
    const cases: Array<[string, string, number]> = [
      ["recursive.yaml", "version: 1\ntiers: &t\n  - adapter: memory\n    options:\n      self: *t\n", 5],
      ["self.yaml", "a: &a\n  b: *a\n", 2],
      ["bomb.yaml", `a: &a [x, x, x, x, x, x, x, x, x, x]\n${["b", "c", "d", "e", "f", "g"].map((k, i) => `${k}: &${k} [${Array(10).fill(`*${"abcdefg"[i]}`).join(", ")}]`).join("\n")}\ntiers: [memory]\n`, 2],
      ["dangling.yaml", "tiers:\n  - *nowhere\n", 2],
    ];
    for (const [name, text, line] of cases) {
      const file = join(dir, name);
      writeFileSync(file, text);
      const err = await expectCode(Promise.resolve().then(() => loadConfig(file)), "DGENT_CONFIG_SYNTAX");
      expect(err.message, name).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:${line}:\\d+: not valid YAML: `));
      const cli = await dgent(["config", "validate", "--config", file]);
      expect(cli.code).toBe(1);
      expect(cli.err).toMatch(/\[DGENT_CONFIG_SYNTAX\]\n$/);
      const list = await dgent(["list", "--config", file]);
      expect(list.err).toMatch(/\[DGENT_CONFIG_SYNTAX\]\n$/);
    }
    expect(readdirSync(dir).sort()).toEqual(cases.map(([n]) => n).sort()); // nothing else was written
  });
});
