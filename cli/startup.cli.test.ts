import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// What a short command line loads (benchmarks/README.md, "CLI start-up"): the built CLI run with
// a module hook that reports every module Node loads (ES modules, CommonJS and built-ins).
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-startup-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

const HOOKS = `export async function load(url, context, next) { process._rawDebug("LOADED " + url); return next(url, context); }`;
const REGISTER = `import Module, { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});
process.on("exit", () => {
  for (const file of Object.keys(Module._cache)) process._rawDebug("LOADED file://" + file);
  process._rawDebug("BUILTINS " + process.moduleLoadList.join(","));
});`;

function loaded(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(REGISTER)}`, BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data"), ...env },
    cwd: home,
    encoding: "utf8",
  });
  const lines = r.stderr.split("\n");
  const modules = lines.filter((l) => l.startsWith("LOADED ")).map((l) => l.slice(7).replace(/^.*\/dist\//, "dist/").replace(/^.*\/node_modules\//, "node_modules/"));
  const builtins = (lines.find((l) => l.startsWith("BUILTINS ")) ?? "").slice(9).split(",");
  return { code: r.status, stdout: r.stdout, modules, builtins, stderr: lines.filter((l) => !/^(LOADED|BUILTINS) /.test(l)).join("\n") };
}

describe("dgent get's start-up", () => {
  it("reads the default store's file directly: its own module, the SQL texts and the terminal helpers, and nothing else of dgent's", () => {
    const put = spawnSync(process.execPath, [BIN, "put", "hello", "--id", "startup/probe"], {
      env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data") },
      cwd: home,
      encoding: "utf8",
    });
    expect(put.stdout.trim()).toBe("startup/probe");
    const r = loaded(["get", "startup/probe"]);
    expect(r.stderr.trim()).toBe("");
    expect(r.stdout).toBe("hello");
    expect(r.code).toBe(0);
    // cli/fast-get.ts and what it imports: no command table, no kernel, no tier, no error machinery
    // (and without --json, not the datum formatter).
    const dist = r.modules.filter((m) => m.startsWith("dist/")).sort();
    expect(dist).toEqual(["dist/adapters/sqlite/sql.js", "dist/cli/args.js", "dist/cli/fast-get.js", "dist/cli/main.js", "dist/cli/terminal.js", "dist/core/lazy.js"]);
    const packages = new Set(r.modules.filter((m) => m.startsWith("node_modules/")).map((m) => m.split("/")[1]));
    expect([...packages].sort()).toEqual(["better-sqlite3", "bindings", "file-uri-to-path"]);
    expect(r.builtins).not.toContain("NativeModule crypto");
  });

  it("through the store (DGENT_DIRECT_GET=0): its own command's module, the kernel and the SQLite and memory tiers, and nothing else", () => {
    const r = loaded(["get", "startup/probe"], { DGENT_DIRECT_GET: "0" });
    expect(r.stderr.trim()).toBe("");
    expect(r.stdout).toBe("hello");
    expect(r.code).toBe(0);
    const dist = r.modules.filter((m) => m.startsWith("dist/"));
    expect(dist).toContain("dist/cli/query-commands.js");
    expect(dist).toContain("dist/core/store.js");
    expect(dist).toContain("dist/adapters/sqlite/index.js");
    // Other commands, the config machinery, backup, scrub and other tiers stay unloaded.
    const cliModules = dist.filter((m) => m.startsWith("dist/cli/") && m.endsWith("-commands.js"));
    expect(cliModules).toEqual(["dist/cli/query-commands.js"]);
    const elsewhere = dist.filter((m) => /^dist\/(backup|scrub|server|plugins)\/|^dist\/compose\/config\/(?!find\.js)|^dist\/adapters\/(?!sqlite\/|memory\/|shared-index\/|ranks\.js|postgres\/profile-for-url\.js)/.test(m));
    expect(elsewhere).toEqual([]);
    // Packages: the SQLite driver (and its loader of the native module) and tapable's hook kinds,
    // not tapable's index of every kind; not yaml, ajv or semver.
    const packages = new Set(r.modules.filter((m) => m.startsWith("node_modules/")).map((m) => m.split("/")[1]));
    expect(packages).toContain("better-sqlite3");
    expect(packages).toContain("tapable");
    for (const lazy of ["yaml", "ajv", "semver", "pg", "fastify"]) expect(packages, lazy).not.toContain(lazy);
    expect(r.modules).toContain("node_modules/tapable/lib/SyncHook.js");
    expect(r.modules).not.toContain("node_modules/tapable/lib/index.js");
    // node:crypto is loaded by the first new id or content hash, which a get does not make.
    expect(r.builtins).not.toContain("NativeModule crypto");
  });
});
