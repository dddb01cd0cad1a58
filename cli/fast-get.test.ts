import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from "../adapters/sqlite/migrations.js";
import { resolveConfig } from "../adapters/sqlite/options.js";
import { CONFIG_FILE_NAMES as FIND_CONFIG_FILE_NAMES } from "../compose/config/find.js";
import { defaultStoreOptions } from "../compose/default-store.js";
import { assertId, makeDatum } from "../core/datum.js";
import { EXPIRES_AT as CORE_EXPIRES_AT, isExpired } from "../core/expiry.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "../core/paths.js";
import { MAX_GET_MANY } from "../core/query.js";
import { CONFIG_FILE_NAMES, DIRECT_MAX_IDS, EXPIRES_AT, SQLITE_DEFAULTS, SQLITE_SCHEMA, dataDirOf, defaultFile, directGet, environmentChoosesStore, journalName, plainId } from "./fast-get.js";

const Database = createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;
const root = mkdtempSync(join(tmpdir(), "dgent-fast-get-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("the facts the direct read restates", () => {
  it("match their sources: schema, tier defaults, config names, expiry tag, limits", () => {
    expect(SQLITE_SCHEMA).toEqual({ version: SCHEMA_VERSION, applicationId: APPLICATION_ID });
    const config = resolveConfig({ namespace: "n1", dataDir: "/data" });
    expect({ busyTimeoutMs: config.busyTimeoutMs, synchronous: config.synchronous, mmapSize: config.mmapSize }).toEqual(SQLITE_DEFAULTS);
    expect([...CONFIG_FILE_NAMES]).toEqual([...FIND_CONFIG_FILE_NAMES]);
    expect(EXPIRES_AT).toBe(CORE_EXPIRES_AT);
    expect(DIRECT_MAX_IDS).toBeLessThanOrEqual(MAX_GET_MANY);
  });

  it("finds the file the default store's SQLite tier opens, and its journal", async () => {
    const cwd = join(root, "cwd");
    mkdirSync(cwd, { recursive: true });
    const cases: [Record<string, string | undefined>, NodeJS.ProcessEnv][] = [
      [{}, { XDG_DATA_HOME: "/x" }],
      [{}, { XDG_DATA_HOME: "relative/dir", HOME: "/home/u" }],
      [{}, { XDG_DATA_HOME: "" }],
      [{}, {}],
      [{ namespace: "agent-7" }, { XDG_DATA_HOME: "/x" }],
      [{}, { DGENT_NAMESPACE: "from.env", XDG_DATA_HOME: "/x" }],
      [{ namespace: "flag" }, { DGENT_NAMESPACE: "env" }],
      [{ "data-dir": "rel/data" }, {}],
      [{ "data-dir": "/abs/data/" }, { DGENT_NAMESPACE: "n" }],
    ];
    for (const [values, env] of cases) {
      expect(dataDirOf(env)).toBe(defaultDataDir(env));
      const namespace = values.namespace ?? (env.DGENT_NAMESPACE || DEFAULT_NAMESPACE);
      const dataDir = values["data-dir"] ?? defaultDataDir(env);
      const file = defaultFile(values, env, cwd);
      // resolveConfig resolves against the process's working directory: compare there.
      expect(defaultFile(values, env, process.cwd())?.path).toBe(resolveConfig({ namespace, dataDir }).path);
      expect(file?.namespace).toBe(namespace);
      const options = await defaultStoreOptions({ env: { ...env }, ...(values.namespace ? { namespace: values.namespace } : {}), ...(values["data-dir"] ? { dataDir: values["data-dir"] } : {}) });
      expect(basename(options.journalPath as string)).toBe(journalName(namespace));
      for (const tier of options.tiers) await tier.close?.();
    }
  });

  it("takes only namespaces and ids the store accepts, and hides what the store's expiry hides", () => {
    for (const namespace of ["default", "a", "A.b_c-d", "x".repeat(128), "x".repeat(129), "-a", ".a", "a/b", "a b", "", "ü", "a\n"]) {
      const taken = defaultFile({ namespace }, {}, root) !== null;
      let accepted = true;
      try {
        assertNamespace(namespace);
      } catch {
        accepted = false;
      }
      expect(taken, namespace).toBe(accepted);
    }
    const ids = ["a", "a/b/c", "ü", "😀", "x".repeat(341), "x".repeat(342), "é".repeat(600), "", "a\u0000", "a\u001f", "a\u007f", "a\u0085", "\ud800", "a\udc00b", " ", "-", "--json"];
    for (let i = 0; i < 500; i++) ids.push(String.fromCharCode(...Array.from({ length: 1 + (i % 7) }, (_, k) => (i * 7919 + k * 104729) % 0xffff)));
    for (const id of ids) {
      if (!plainId(id)) continue;
      expect(() => assertId(id), JSON.stringify(id)).not.toThrow();
    }
    expect(ids.filter(plainId).length).toBeGreaterThan(100);
    const now = 1_000_000;
    for (const tag of [undefined, "0", "999999", "1000000", "1000001"]) {
      const d = makeDatum({ content: new Uint8Array(), metadata: tag === undefined ? {} : { [EXPIRES_AT]: tag } });
      expect(isExpired(d, now)).toBe(tag !== undefined && Number(tag) <= now);
    }
  });

  it("steps aside for an environment or a config that may choose another store", () => {
    expect(environmentChoosesStore({ HOME: "/h", XDG_DATA_HOME: "/x", DGENT_NAMESPACE: "n", DGENT_CONFIG: "", DGENT_BACKEND: "" })).toBe(false);
    for (const name of ["DGENT_DATABASE_URL", "DGENT_POSTGRES_URL", "KGENTS_DATABASE_URL", "KGENTS_POSTGRES_URL", "DGENT_BACKEND", "KGENTS_DGENT_BACKEND", "DGENT_CONFIG", "DGENT_ANYTHING"]) {
      expect(environmentChoosesStore({ [name]: "x" }), name).toBe(true);
    }
    // Every variable the default store's path reads (the CLI's store opening, the config finder,
    // the environment resolution, the data directory) is either one the direct read follows the
    // same way or one that turns it off.
    const sources = ["cli/commands.ts", "cli/command.ts", "compose/config/find.ts", "compose/default-store.ts", "core/paths.ts"];
    const names = new Set<string>();
    for (const file of sources) {
      const text = readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
      for (const m of text.matchAll(/\benv(?:\.|\[")([A-Z][A-Z0-9_]+)|"((?:DGENT|KGENTS|XDG)_[A-Z0-9_]+)"/g)) names.add((m[1] ?? m[2]) as string);
    }
    expect([...names]).toEqual(expect.arrayContaining(["DGENT_DATABASE_URL", "DGENT_BACKEND", "DGENT_NAMESPACE", "DGENT_CONFIG", "XDG_DATA_HOME"]));
    for (const name of names) {
      if (name === "DGENT_NAMESPACE" || name === "XDG_DATA_HOME") continue; // followed: the file's name and directory
      expect(environmentChoosesStore({ [name]: "x" }), name).toBe(true);
    }
    expect(defaultFile({ config: "c.json" }, {}, root)).toBeNull();
    const withConfig = join(root, "with-config");
    mkdirSync(withConfig, { recursive: true });
    writeFileSync(join(withConfig, "dgent.config.yml"), "");
    expect(defaultFile({}, {}, withConfig)).toBeNull();
    expect(defaultFile({ "data-dir": "" }, {}, root)).toBeNull();
    expect(directGet({}, { XDG_DATA_HOME: join(root, "nothing-here") }, ["a"])).toBeNull();
  });
});

// -----------------------------------------------------------------------------------------------
// Both paths as whole processes: the same bytes on stdout and stderr, the same exit code
// -----------------------------------------------------------------------------------------------

const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
// Which path a process took: `run` (the command table) and the kernel (the store) report when they load.
const HOOKS = `export async function load(url, context, next) {
  if (url.endsWith("/dist/cli/commands.js")) process._rawDebug("RUN LOADED");
  if (url.endsWith("/dist/core/store.js")) process._rawDebug("KERNEL LOADED");
  return next(url, context);
}`;
const HOOK = `data:text/javascript,${encodeURIComponent(`import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`)}`;

interface Outcome {
  stdout: Buffer;
  stderr: string;
  status: number | null;
  /** The command table loaded: the command line went through `run`, not the direct read. */
  run: boolean;
  /** The kernel loaded (the store was composed). */
  store: boolean;
}

/** One `dgent` process, awaited (the worker stays responsive while it runs). */
async function dgent(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Outcome> {
  const child = spawn(process.execPath, ["--import", HOOK, BIN, ...args], { env: { PATH: process.env.PATH ?? "", HOME: root, ...env }, cwd, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
  const status = await new Promise<number | null>((done, fail) => {
    child.on("error", fail);
    child.on("close", (code) => done(code));
  });
  const lines = Buffer.concat(err).toString("utf8").split("\n");
  const marks = ["RUN LOADED", "KERNEL LOADED"];
  return { stdout: Buffer.concat(out), stderr: lines.filter((l) => !marks.includes(l)).join("\n"), status, run: lines.includes("RUN LOADED"), store: lines.includes("KERNEL LOADED") };
}

/** A data directory with datums of every kind (in `<dir>/data/dgent/default.db`). */
async function seeded(name: string): Promise<string> {
  const home = join(root, name);
  const data = join(home, "data");
  mkdirSync(home, { recursive: true });
  const env = { XDG_DATA_HOME: data };
  const put = async (...args: string[]) => {
    const r = await dgent(["put", ...args], env, home);
    if (r.status !== 0) throw new Error(`put ${args.join(" ")}: ${r.stderr}`);
  };
  await put("hello", "--id", "a");
  await put("second", "--id", "b", "--parent", "a", "--meta", "role=user", "--meta", "k=v w");
  await put("gone", "--id", "expired", "--meta", `${EXPIRES_AT}=1`);
  await put("later", "--id", "future", "--meta", `${EXPIRES_AT}=99999999999999`);
  await put("deleted", "--id", "deleted");
  expect((await dgent(["delete", "deleted"], env, home)).status).toBe(0);
  await put("ünïcode \u202e and \u001b[31m escapes\n", "--id", "ids/ü/😀");
  writeFileSync(join(home, "bin"), Buffer.from([0, 1, 2, 255, 254, 10, 13]));
  await put("--file", join(home, "bin"), "--id", "bin");
  return home;
}

/**
 * Runs `args` with the direct read allowed, then with it ruled out (`DGENT_DIRECT_GET=0`), on a
 * copy of the same data when `fresh` (the store's run may change the files: a migration, a journal).
 */
async function both(home: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}, fresh = false): Promise<{ direct: Outcome; store: Outcome }> {
  let storeHome = home;
  if (fresh) {
    storeHome = `${home}-copy`;
    rmSync(storeHome, { recursive: true, force: true });
    cpSync(home, storeHome, { recursive: true });
  }
  const direct = await dgent(args, { XDG_DATA_HOME: join(home, "data"), ...extraEnv }, home);
  const store = await dgent(args, { XDG_DATA_HOME: join(storeHome, "data"), ...extraEnv, DGENT_DIRECT_GET: "0" }, storeHome);
  expect(store.run, "DGENT_DIRECT_GET=0 sends get through run").toBe(true);
  // Messages that name a file name the copy's.
  return { direct, store: { ...store, stderr: store.stderr.replaceAll(storeHome, home) } };
}

function expectSame(r: { direct: Outcome; store: Outcome }, label: string): void {
  expect(r.direct.stderr, label).toBe(r.store.stderr);
  expect(r.direct.stdout.equals(r.store.stdout), `${label}: stdout ${JSON.stringify(r.direct.stdout.toString())} vs ${JSON.stringify(r.store.stdout.toString())}`).toBe(true);
  expect(r.direct.status, label).toBe(r.store.status);
}

describe("dgent get: the direct read and the store print the same", () => {
  let home = "";
  beforeAll(async () => {
    home = await seeded("main");
  });

  it("reads directly, and prints what the store prints, for datums present, missing, expired and deleted, in every output form", async () => {
    const direct: string[][] = [
      ["get", "a"],
      ["get", "a", "--json"],
      ["--json", "get", "a"],
      ["get", "--json", "a", "--json"],
      ["get", "b", "--json"],
      ["get", "b"],
      ["get", "missing"],
      ["get", "missing", "--json"],
      ["get", "expired"],
      ["get", "expired", "--json"],
      ["get", "future", "--json"],
      ["get", "deleted"],
      ["get", "ids/ü/😀"],
      ["get", "ids/ü/😀", "--json"],
      ["get", "bin"],
      ["get", "bin", "--json"],
      ["get", "a", "b", "missing", "expired", "bin"],
      ["get", "a", "b", "missing", "expired", "bin", "a", "--json"],
      ["get", "a", "a"],
      ["-n", "default", "get", "a"],
      ["--namespace=default", "get", "--json", "b"],
      ["get", "a", "--data-dir", "data/dgent"],
      ["get", "--", "a"],
    ];
    for (const args of direct) {
      const r = await both(home, args);
      expect(r.direct.run || r.direct.store, `${args.join(" ")} is read directly`).toBe(false);
      expectSame(r, args.join(" "));
    }
  });

  it("leaves to the store what it cannot answer alike: bad ids, usage errors, help, other namespaces", async () => {
    const viaStore: string[][] = [
      ["get", ""],
      ["get", "a\u0001b"],
      ["get", "x".repeat(400)],
      ["get"],
      ["get", "--bogus", "a"],
      ["get", "--help"],
      ["get", "a", "--json=1"],
      ["--config", "nowhere.yaml", "get", "a"],
      ["get", "a", "--namespace", "other"],
      ["get", "a", "--namespace", "bad/name"],
      ["get", "a", "--data-dir", ""],
      ["get", "-n", "x", "-n", "y", "a"],
    ];
    for (const args of viaStore) {
      const r = await both(home, args, {}, true);
      expect(r.direct.run, `${args.join(" ")} goes through run`).toBe(true);
      expectSame(r, args.join(" "));
    }
    const memory = await both(home, ["get", "a"], { DGENT_BACKEND: "memory" });
    expect(memory.direct.store).toBe(true);
    expectSame(memory, "DGENT_BACKEND=memory");
  });

  it("leaves the file to the store when the store's open would change it: absent, older schema, not WAL, a journal of pending deletes", async () => {
    // No file yet: the store creates it (and says the datum is missing).
    const empty = join(root, "empty");
    mkdirSync(empty, { recursive: true });
    const absent = await both(empty, ["get", "a"], {}, true);
    expect(absent.direct.store).toBe(true);
    expectSame(absent, "no file");

    // A file at the schema before the current one: the store migrates it first.
    const older = join(root, "older");
    mkdirSync(join(older, "data", "dgent"), { recursive: true });
    const db = new Database(join(older, "data", "dgent", "default.db"));
    db.pragma("journal_mode = WAL");
    for (const step of MIGRATIONS.filter((m) => m.version < SCHEMA_VERSION)) db.exec(step.up);
    db.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.prepare("INSERT INTO data (id, content, created_at, causal_parent, metadata) VALUES (?, ?, ?, ?, ?)").run("a", Buffer.from("old"), 1_700_000_000_000, null, null);
    db.close();
    const migrated = await both(older, ["get", "a", "--json"], {}, true);
    expect(migrated.direct.store).toBe(true);
    expect(JSON.parse(migrated.direct.stdout.toString()).content).toBe("old");
    expectSame(migrated, "older schema");

    // A rollback-journal file: the store's open turns WAL on.
    const rollback = await seeded("rollback");
    const file = new Database(join(rollback, "data", "dgent", "default.db"));
    file.pragma("journal_mode = DELETE");
    file.close();
    const notWal = await both(rollback, ["get", "a"], {}, true);
    expect(notWal.direct.store).toBe(true);
    expectSame(notWal, "not WAL");

    // A journal left by a store that died with a delete of "a" pending on SQLite: the store applies it before reading.
    const journaled = await seeded("journaled");
    writeFileSync(join(journaled, "data", "dgent", `${journalName("default")}.999999.deadbeef`), `${JSON.stringify({ owner: null })}\n${JSON.stringify({ tier: "sqlite", id: "a" })}\n`);
    const pending = await both(journaled, ["get", "a"], {}, true);
    expect(pending.direct.store).toBe(true);
    expect(pending.direct.status).toBe(1);
    expectSame(pending, "pending delete");
    // Applied, the journal is gone: the direct read applies again.
    const after = await both(journaled, ["get", "a", "b"]);
    expect(after.direct.store).toBe(false);
    expectSame(after, "after the journal");

    // A config file in the working directory chooses the store.
    const configured = await seeded("configured");
    writeFileSync(join(configured, "dgent.config.json"), "{ not json");
    const config = await both(configured, ["get", "a"], {}, true);
    expect(config.direct.run).toBe(true);
    expectSame(config, "config file");
  });
});
