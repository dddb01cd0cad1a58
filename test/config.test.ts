import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  createStoreFromConfig,
  findConfig,
  loadConfig,
  parseDuration,
  parseSize,
  redactConfig,
  redactString,
  resolveConfig,
} from "../compose/config/index.js";
import { makeDatum } from "../core/datum.js";
import * as dgent from "../compose/index.js";
import { Registry, defineAdapter } from "../core/registry.js";
import { memory } from "../adapters/memory/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/config/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "dgent-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (text: string, name = "dgent.config.yaml") => {
  const d = join(dir, `c${n++}`);
  mkdirSync(d);
  writeFileSync(join(d, name), text);
  return join(d, name);
};

describe("${VAR} expansion", () => {
  const expand = (value: string, env: Record<string, string>) =>
    (loadConfig({ tiers: ["memory"], namespace: value }, { env }).config as { namespace?: string }).namespace;

  it("reads the environment, falls back to defaults (also for empty values), nests, and keeps $$ literal", () => {
    expect(expand("${NS}", { NS: "agent" })).toBe("agent");
    expect(expand("a-${NS}-b", { NS: "x" })).toBe("a-x-b");
    expect(expand("${NS:-fallback}", {})).toBe("fallback");
    expect(expand("${NS:-fallback}", { NS: "" })).toBe("fallback");
    expect(expand("${NS-unset-only}", { NS: "set" })).toBe("set");
    expect(expand("${A:-${B:-deep}}", {})).toBe("deep");
    expect(expand("${A:-${B:-deep}}", { B: "b" })).toBe("b");
    expect(() => expand("$${NS}", {})).toThrow(/does not fit/); // "${NS}" stays literal: not a valid namespace
  });

  it("a whole reference becomes the number or boolean the schema asks for; text around it stays a string", async () => {
    const r = await resolveConfig(
      file("tiers:\n  - adapter: memory\n    options:\n      maxDatums: ${MAX}\nupgrader:\n  enabled: ${UP:-false}\nmaxChainDepth: ${DEPTH}\n"),
      { env: { MAX: "12", DEPTH: "50" } },
    );
    expect(r.tiers[0]?.options.maxDatums).toBe(12);
    expect(r.upgrader.enabled).toBe(false);
    expect(r.storeOptions.maxChainDepth).toBe(50);
    await expect(resolveConfig(file("tiers:\n  - adapter: memory\n    options:\n      maxDatums: x${MAX}\n"), { env: { MAX: "12" } })).rejects.toMatchObject({
      code: "DGENT_INVALID_OPTIONS",
      message: expect.stringMatching(/maxDatums: expected an integer, got the string "x12"/),
    });
  });

  it("a value that is exactly ${VAR:-} and comes out empty is left out", () => {
    const loaded = loadConfig({ tiers: [{ adapter: "s3", options: { bucket: "b", endpoint: "${EP:-}" } }], modules: ["${EXTRA:-}"] }, { env: {} });
    expect(loaded.config.tiers[0]).toEqual({ adapter: "s3", options: { bucket: "b" } });
    expect(loaded.config.modules).toEqual([]);
    expect(loaded.variables).toEqual(new Set(["EP", "EXTRA"]));
  });

  it("${DGENT_CONFIG_DIR} is the config file's directory unless the environment sets it", () => {
    const f = file("tiers:\n  - adapter: sqlite\n    options: { path: \"${DGENT_CONFIG_DIR}/x.db\" }\n");
    expect((loadConfig(f, { env: {} }).config.tiers[0] as unknown as { options: { path: string } }).options.path).toBe(join(f, "..", "x.db"));
    expect((loadConfig(f, { env: { DGENT_CONFIG_DIR: "/srv" } }).config.tiers[0] as unknown as { options: { path: string } }).options.path).toBe("/srv/x.db");
  });
});

describe("finding the config file", () => {
  it("--config, then DGENT_CONFIG, then dgent.config.json|yaml|yml in the working directory, else none", () => {
    const cwd = join(dir, "find");
    mkdirSync(cwd);
    expect(findConfig({ cwd, env: {} })).toBeNull();
    writeFileSync(join(cwd, "dgent.config.yml"), "tiers: [memory]\n");
    expect(findConfig({ cwd, env: {} })).toEqual({ path: join(cwd, "dgent.config.yml"), via: "working directory" });
    writeFileSync(join(cwd, "other.json"), "{}");
    expect(findConfig({ cwd, env: { DGENT_CONFIG: "other.json" } })).toEqual({ path: join(cwd, "other.json"), via: "DGENT_CONFIG" });
    expect(findConfig({ cwd, env: { DGENT_CONFIG: "other.json" }, config: "dgent.config.yml" })?.via).toBe("--config");
    expect(() => findConfig({ cwd, env: { DGENT_CONFIG: "gone.yaml" } })).toThrow(expect.objectContaining({ code: "DGENT_CONFIG_NOT_FOUND" }));
    writeFileSync(join(cwd, "dgent.config.json"), "{}");
    expect(() => findConfig({ cwd, env: {} })).toThrow(expect.objectContaining({ code: "DGENT_CONFIG_INVALID" }));
  });
});

describe("createStoreFromConfig", () => {
  it("is exported from dgent with the loader", () => {
    for (const name of ["createStoreFromConfig", "resolveConfig", "loadConfig", "findConfig", "configSchema", "redactConfig", "dgentVersion", "CONFIG_FILE_NAMES"]) {
      expect(dgent, name).toHaveProperty(name);
    }
  });

  it("composes tiers with namespace and dataDir defaults, landing, upgrader, journal and backoff; the store is not opened", async () => {
    const data = join(dir, "compose-data");
    const config = {
      namespace: "agent-7",
      dataDir: data,
      tiers: [{ adapter: "jsonl", options: { durability: "fsync" } }, "memory"],
      landing: "jsonl",
      upgrader: { intervalMs: "2s", ageMs: "1h", sizeBytes: "5MB" },
      probeBackoffMs: { min: "100ms", max: "1m" },
      plugins: ["cache"],
    };
    const r = await resolveConfig(config, { env: {} });
    expect(r.tiers[0]?.options).toEqual({ namespace: "agent-7", dataDir: data, durability: "fsync", groupCommitMs: 0 });
    expect(r.journalPath).toBe(join(data, "agent-7.pending-deletes.jsonl"));
    expect(r.upgrader).toEqual({ intervalMs: 2000, ageMs: 3_600_000, sizeBytes: 5_000_000 });
    expect(r.storeOptions).toMatchObject({ namespace: "agent-7", landing: "jsonl", probeBackoffMs: { min: 100, max: 60_000 }, journalPath: r.journalPath });
    expect(r.plugins).toEqual([{ plugin: "cache", options: expect.objectContaining({ maxEntries: 10_000 }) }]);
    const store = await createStoreFromConfig(config, { env: {} });
    expect(existsSync(join(data, "agent-7.jsonl"))).toBe(false); // not opened yet
    const id = await store.put(makeDatum({ content: "x" }));
    expect((await store.backend()).tiers.map((t) => [t.name, t.landing, t.location])).toEqual([
      ["jsonl", true, join(data, "agent-7.jsonl")],
      ["memory", false, null],
    ]);
    expect(await store.get(id)).not.toBeNull();
    await store.close();
  });

  it("the overrides (the CLI's --namespace, --data-dir) win over the file", async () => {
    const r = await resolveConfig(file("namespace: from-file\ndataDir: ./d\ntiers: [sqlite]\n"), { env: {}, namespace: "flag", dataDir: "/tmp/flag" });
    expect(r.tiers[0]?.options).toMatchObject({ namespace: "flag", dataDir: "/tmp/flag" });
    const plain = await resolveConfig(file("namespace: from-file\ndataDir: ./d\ntiers: [sqlite]\n"), { env: { DGENT_NAMESPACE: "env" } });
    expect(plain.tiers[0]?.options).toMatchObject({ namespace: "from-file", dataDir: join(plain.dir, "d") });
  });

  it("plugins apply dependencies first whatever the order listed, with their options checked and defaulted", async () => {
    const store = await createStoreFromConfig(
      { modules: [join(FIXTURES, "deps.mjs")], tiers: ["memory"], plugins: [{ plugin: "stacked", options: { label: "y" } }, "base"] },
      { env: {} },
    );
    const id = await store.put(makeDatum({ content: "x" }));
    expect((await store.get(id))?.metadata).toEqual({ stacked: "y" });
    expect(((await store.plugin("base")) as { order: string[] }).order).toEqual(["base", "stacked:y"]);
    await store.close();
  });

  it("loading the same modules twice, or into two stores, never collides; a custom base registry is used and left alone", async () => {
    const config = { modules: [join(FIXTURES, "twin-a.mjs")], tiers: ["mine"], plugins: ["twin"] };
    const base = new Registry().registerAdapter(defineAdapter({ name: "mine", rank: 5, create: (o) => memory.create(o as never) }));
    const a = await resolveConfig(config, { env: {}, registry: base });
    const b = await resolveConfig(config, { env: {}, registry: base });
    expect(a.tiers[0]?.rank).toBe(5);
    expect(b.plugins.map((p) => p.plugin)).toEqual(["twin"]);
    expect(base.pluginNames()).toEqual([]);
    await expect(resolveConfig({ tiers: ["sqlite"] }, { env: {}, registry: base })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_ADAPTER", message: /Known: mine/ });
  });

  it("loads a third-party package by name from the config file's node_modules", async () => {
    const project = join(dir, "by-name");
    mkdirSync(join(project, "node_modules"), { recursive: true });
    symlinkSync(ROOT, join(project, "node_modules", "dgent"), "dir");
    cpSync(join(ROOT, "examples/plugins/audit-log"), join(project, "node_modules", "dgent-plugin-audit-log"), { recursive: true });
    cpSync(join(ROOT, "examples/dir-adapter"), join(project, "node_modules", "@acme", "dgent-adapter-dir"), { recursive: true });
    const config = join(project, "dgent.config.yaml");
    writeFileSync(
      config,
      "modules:\n  - dgent-plugin-audit-log\n  - '@acme/dgent-adapter-dir'\ntiers:\n  - adapter: dir\n    options: { dir: \"${DGENT_CONFIG_DIR}/datums\" }\nplugins:\n  - plugin: audit-log\n    options: { path: \"${DGENT_CONFIG_DIR}/audit.jsonl\" }\n",
    );
    const r = await resolveConfig(config, { env: {}, cwd: tmpdir() });
    expect(r.modules.map((m) => [m.file, m.range])).toEqual([
      [join(project, "node_modules/dgent-plugin-audit-log/index.mjs"), ">=0.1.0 <1"],
      [join(project, "node_modules/@acme/dgent-adapter-dir/index.mjs"), ">=0.1.0 <1"],
    ]);
    const store = await createStoreFromConfig(config, { env: {} });
    await store.put(makeDatum({ content: "by name" }));
    expect(((await store.plugin("audit-log")) as { lines(): number }).lines()).toBe(1);
    await store.close();
  });
});

describe("units and redaction", () => {
  it("durations and sizes", () => {
    expect([parseDuration(250), parseDuration("500ms"), parseDuration("30s"), parseDuration("5m"), parseDuration("2h"), parseDuration("7d"), parseDuration("1.5s")]).toEqual([
      250, 500, 30_000, 300_000, 7_200_000, 604_800_000, 1500,
    ]);
    expect([parseSize(1), parseSize("512kB"), parseSize("10MB"), parseSize("1GiB"), parseSize("2 TB"), parseSize("64MiB")]).toEqual([1, 512_000, 1e7, 2 ** 30, 2e12, 2 ** 26]);
  });

  it("redacts URL passwords, secret query parameters, PEM keys and values under secret keys; keeps the rest", () => {
    expect(redactString("postgres://u:p%40ss@h:5432/db?sslmode=require&password=x")).toBe("postgres://u:***@h:5432/db?sslmode=require&password=***");
    expect(redactString("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----")).toBe("<redacted>");
    const config = {
      url: "https://user:tok@example.com/x",
      credentials: { client_email: "a@b", private_key: "k" },
      password: "pw",
      apiKey: 42,
      token: { nested: "t" },
      useAuthWithCustomEndpoint: true,
      keyFilename: "/etc/key.json",
      bucket: "archive",
    };
    expect(redactConfig(config)).toEqual({
      url: "https://user:***@example.com/x",
      credentials: { client_email: "<redacted>", private_key: "<redacted>" },
      password: "<redacted>",
      apiKey: "<redacted>",
      token: { nested: "<redacted>" },
      useAuthWithCustomEndpoint: true,
      keyFilename: "/etc/key.json",
      bucket: "archive",
    });
    expect(config.password).toBe("pw");
  });
});

describe("the package", () => {
  it("ships the config schema (also as dgent/config-schema.json) and the config reference", async () => {
    const { execFileSync } = await import("node:child_process");
    const packed = JSON.parse(
      execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
    ) as Array<{ files: Array<{ path: string }> }>;
    const files = (packed[0]?.files ?? []).map((f) => f.path);
    expect(files).toContain("dist/compose/config/schema.json");
    expect(files).toContain("compose/config/README.md");
    const { createRequire } = await import("node:module");
    const schema = createRequire(import.meta.url)("dgent/config-schema.json") as { title: string; required: string[] };
    expect(schema).toMatchObject({ title: "dgent config file", required: ["tiers"] });
  });
});
