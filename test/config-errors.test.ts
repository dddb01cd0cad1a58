import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../compose/config/index.js";
import { defaultRegistry } from "../compose/catalogue.js";
import type { ErrorCode } from "../core/errors.js";

// Every malformed config gives its own coded error, and a message that names the file, the line
// (where the file has one) and the path inside it. Modules come from test/fixtures/config (they
// import "dgent", i.e. the build: run `npm run build` first).
const FIXTURES = new URL("./fixtures/config/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "dgent-config-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  name: string;
  file?: string;
  text: string;
  code: ErrorCode;
  /** 1-based line the message must point at (null: the error has no line, e.g. a missing file). */
  line: number | null;
  /** The path inside the file the message must name. */
  path: string;
  message: RegExp;
  env?: Record<string, string>;
}

const CASES: Case[] = [
  { name: "YAML syntax error", text: "tiers:\n  - adapter: sqlite\n  options: [\n", code: "DGENT_CONFIG_SYNTAX", line: 3, path: "", message: /not valid YAML/ },
  { name: "JSON syntax error (trailing comma)", file: "c.json", text: '{\n  "tiers": [\n    "sqlite",\n  ]\n}\n', code: "DGENT_CONFIG_SYNTAX", line: 4, path: "", message: /not valid JSON: Unexpected token/ },
  { name: "an unquoted reference in a flow map", text: "tiers:\n  - adapter: sqlite\n    options: { path: ${DB_PATH} }\n", code: "DGENT_CONFIG_SYNTAX", line: 3, path: "", message: /quote a value that uses/ },
  { name: "a key given twice", text: "tiers: [sqlite]\nlanding: sqlite\nlanding: memory\n", code: "DGENT_CONFIG_SYNTAX", line: 3, path: "", message: /unique/ },
  { name: "top level is a list", text: "- sqlite\n- memory\n", code: "DGENT_CONFIG_INVALID", line: 1, path: "(top level)", message: /expected an object \(a map of keys\), got a list/ },
  { name: "an empty file", text: "# nothing yet\n", code: "DGENT_CONFIG_INVALID", line: null, path: "(top level)", message: /expected an object.*got null/ },
  { name: "no tiers", text: "namespace: agent\n", code: "DGENT_CONFIG_INVALID", line: 1, path: "(top level)", message: /missing the required key "tiers"/ },
  { name: "tiers of the wrong type", text: "namespace: agent\ntiers: sqlite\n", code: "DGENT_CONFIG_INVALID", line: 2, path: "tiers", message: /expected a list, got the string "sqlite"/ },
  { name: "tier options that are not a map", text: "tiers:\n  - adapter: sqlite\n    options: fast\n", code: "DGENT_CONFIG_INVALID", line: 3, path: "tiers[0].options", message: /expected an object \(a map of keys\), got the string "fast"$/ },
  { name: "a tier that is neither a name nor a map", text: "tiers:\n  - 42\n", code: "DGENT_CONFIG_INVALID", line: 2, path: "tiers[0]", message: /expected a string or an object \(a map of keys\), got 42/ },
  { name: "a misspelt top-level key", text: "tiers: [sqlite]\nplugin:\n  - cache\n", code: "DGENT_CONFIG_INVALID", line: 2, path: "plugin", message: /unknown key "plugin"; did you mean "plugins"\?/ },
  { name: "a misspelt key in a tier", text: "tiers:\n  - adapter: sqlite\n    optoins: {}\n", code: "DGENT_CONFIG_INVALID", line: 3, path: "tiers[0].optoins", message: /unknown key "optoins"; did you mean "options"\?/ },
  { name: "a misspelt adapter", text: "tiers:\n  - adapter: sqllite\n  - memory\n", code: "DGENT_UNKNOWN_ADAPTER", line: 2, path: "tiers[0].adapter", message: /no adapter named "sqllite".*Did you mean "sqlite"\?/ },
  { name: "a misspelt plugin", text: "tiers: [sqlite]\nplugins:\n  - cahce\n", code: "DGENT_UNKNOWN_PLUGIN", line: 3, path: "plugins[0]", message: /no plugin named "cahce".*Did you mean "cache"\?/ },
  { name: "an option of the wrong type", text: "tiers:\n  - adapter: sqlite\n    options:\n      busyTimeoutMs: soon\n", code: "DGENT_INVALID_OPTIONS", line: 4, path: "tiers[0].options.busyTimeoutMs", message: /expected an integer, got the string "soon" \(options of "sqlite"\)/ },
  { name: "an option outside its enum", text: "tiers:\n  - adapter: sqlite\n    options: { synchronous: fast }\n", code: "DGENT_INVALID_OPTIONS", line: 3, path: "tiers[0].options.synchronous", message: /expected one of "NORMAL", "FULL"/ },
  { name: "an unknown option, with the nearest one", text: "tiers:\n  - adapter: sqlite\n    options:\n      busyTimeout: 10\n", code: "DGENT_INVALID_OPTIONS", line: 4, path: "tiers[0].options.busyTimeout", message: /unknown key "busyTimeout"; did you mean "busyTimeoutMs"\?/ },
  { name: "a Postgres URL of another scheme (password redacted)", text: "tiers:\n  - adapter: postgres-docker\n    options:\n      url: mysql://agent:hunter2@db:3306/x\n", code: "DGENT_INVALID_OPTIONS", line: 4, path: "tiers[0].options.url", message: /url must start with postgres:\/\/.*mysql:\/\/agent:\*\*\*@db/ },
  { name: "an S3 endpoint that is not a URL", text: "tiers:\n  - adapter: s3\n    options:\n      bucket: archive\n      endpoint: localhost:9000\n", code: "DGENT_INVALID_OPTIONS", line: 5, path: "tiers[0].options.endpoint", message: /"localhost:9000" does not fit the pattern \^https\?:\/\// },
  { name: "a missing environment variable", text: "tiers:\n  - adapter: postgres-docker\n    options:\n      url: ${DGENT_TEST_NOT_SET_URL}\n", code: "DGENT_CONFIG_ENV_MISSING", line: 4, path: "tiers[0].options.url", message: /DGENT_TEST_NOT_SET_URL is not set; set it, or give a default/ },
  { name: "a reference that is not a variable", text: "tiers:\n  - adapter: sqlite\n    options: { path: \"${1-bad}\" }\n", code: "DGENT_CONFIG_INVALID", line: 3, path: "tiers[0].options.path", message: /is not a variable reference/ },
  { name: "an unclosed reference", text: "namespace: ${DGENT_NAMESPACE\ntiers: [memory]\n", code: "DGENT_CONFIG_INVALID", line: 1, path: "namespace", message: /unclosed "\$\{"/ },
  { name: "a landing tier that is not listed", text: "tiers: [sqlite, memory]\nlanding: sqlit\n", code: "DGENT_CONFIG_INVALID", line: 2, path: "landing", message: /"sqlit" is not one of the tiers listed; did you mean "sqlite"\?/ },
  { name: "the same tier twice", text: "tiers:\n  - sqlite\n  - adapter: sqlite\n", code: "DGENT_DUPLICATE_NAME", line: 3, path: "tiers[1].adapter", message: /already listed at tiers\[0\]/ },
  { name: "the same plugin twice", text: "tiers: [memory]\nplugins:\n  - cache\n  - plugin: cache\n    options: {}\n", code: "DGENT_DUPLICATE_NAME", line: 4, path: "plugins[1].plugin", message: /the plugin "cache" is already listed at plugins\[0\]/ },
  { name: "a duration without a unit dgent knows", text: "tiers: [sqlite, memory]\nupgrader:\n  ageMs: 7 days\n", code: "DGENT_CONFIG_INVALID", line: 3, path: "upgrader.ageMs", message: /"7 days" does not fit: Milliseconds, or a number with a unit/ },
  { name: "a namespace that is not a safe name", text: "namespace: ../etc\ntiers: [memory]\n", code: "DGENT_CONFIG_INVALID", line: 1, path: "namespace", message: /"\.\.\/etc" does not fit/ },
  { name: "a format version from the future", text: "version: 2\ntiers: [memory]\n", code: "DGENT_CONFIG_INVALID", line: 1, path: "version", message: /expected 1, got 2/ },
  { name: "plugin options of the wrong type", text: "tiers: [memory]\nplugins:\n  - plugin: cache\n    options:\n      maxEntries: lots\n", code: "DGENT_INVALID_OPTIONS", line: 5, path: "plugins[0].options.maxEntries", message: /expected an integer, got the string "lots" \(options of "cache"\)/ },
  { name: "a secret of the wrong type is not echoed", text: "tiers:\n  - adapter: s3\n    options:\n      bucket: archive\n      credentials:\n        accessKeyId: 12345\n        secretAccessKey: hunter2\n", code: "DGENT_INVALID_OPTIONS", line: 6, path: "tiers[0].options.credentials.accessKeyId", message: /expected a string, got a value not shown here \(a secret\)/ },
  { name: "a module that does not exist", text: "modules: [./no-such-module.mjs]\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 1, path: "modules[0]", message: /cannot find the module "\.\/no-such-module\.mjs": no file at/ },
  { name: "a package that is not installed", text: "modules:\n  - dgent-adapter-nobody-wrote\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 2, path: "modules[0]", message: /no package of that name is installed/ },
  { name: "a module that throws on import", text: "modules:\n  - ${FIXTURES}/throws.mjs\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 2, path: "modules[0]", message: /failed to load: boom: this module cannot be imported/ },
  { name: "a module whose range excludes this dgent", text: "modules:\n  - ${FIXTURES}/too-new.mjs\ntiers: [memory]\n", code: "DGENT_VERSION_MISMATCH", line: 2, path: "modules[0]", message: /supports dgent >=2\.0\.0; this is dgent 0\.1\.0/ },
  { name: "a module that declares no range", text: "modules:\n  - ${FIXTURES}/no-range.mjs\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 2, path: "modules[0]", message: /does not declare which dgent versions it supports: export const dgentVersions/ },
  { name: "a module whose range is not semver", text: "modules:\n  - ${FIXTURES}/bad-range.mjs\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 2, path: "modules[0]", message: /"banana".*not a semver range/ },
  { name: "a module that exports no definition", text: "modules:\n  - ${FIXTURES}/empty.mjs\ntiers: [memory]\n", code: "DGENT_MODULE_LOAD", line: 2, path: "modules[0]", message: /exports no adapter or plugin/ },
  { name: "a module that redefines a built-in adapter", text: "modules:\n  - ${FIXTURES}/clash.mjs\ntiers: [memory]\n", code: "DGENT_DUPLICATE_NAME", line: 2, path: "modules[0]", message: /exports an adapter named "memory", which dgent already has/ },
  { name: "two modules exporting the same plugin name", text: "modules:\n  - ${FIXTURES}/twin-a.mjs\n  - ${FIXTURES}/twin-b.mjs\ntiers: [memory]\n", code: "DGENT_DUPLICATE_NAME", line: 3, path: "modules[1]", message: /a plugin named "twin", which the module ".*twin-a\.mjs" already exports/ },
  { name: "the same module listed twice", text: "modules:\n  - ${FIXTURES}/twin-a.mjs\n  - ${FIXTURES}/twin-a.mjs\ntiers: [memory]\n", code: "DGENT_DUPLICATE_NAME", line: 3, path: "modules[1]", message: /already listed at modules\[0\]/ },
  { name: "plugins that depend on each other in a cycle", text: "modules: [\"${FIXTURES}/deps.mjs\"]\ntiers: [memory]\nplugins:\n  - cache\n  - ping\n  - pong\n", code: "DGENT_PLUGIN_DEPENDENCY", line: 5, path: "plugins[1]", message: /cycle: ping → pong → ping/ },
  { name: "a plugin whose dependency is not listed", text: "modules: [\"${FIXTURES}/deps.mjs\"]\ntiers: [memory]\nplugins:\n  - needy\n", code: "DGENT_PLUGIN_DEPENDENCY", line: 4, path: "plugins[0]", message: /"needy" depends on plugin "helper", which is not in this store; add it under plugins \(- plugin: helper\)/ },
];

describe("malformed config files", () => {
  it("the table has at least twenty cases, each with its own name", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(new Set(CASES.map((c) => c.code)).size).toBeGreaterThanOrEqual(10);
  });

  for (const [index, c] of CASES.entries()) {
    it(`${c.name} → ${c.code}`, async () => {
      const file = join(dir, `case-${index}-${c.file ?? "dgent.config.yaml"}`);
      writeFileSync(file, c.text);
      const error = await resolveConfig(file, { env: { FIXTURES, ...c.env }, cwd: dir }).then(
        () => null,
        (e: unknown) => e as Error & { code: string; details: Record<string, unknown> },
      );
      expect(error, "the config was accepted").not.toBeNull();
      expect(error?.code, error?.message).toBe(c.code);
      expect(error?.message).toMatch(c.message);
      const where = c.line === null ? `${file}: ` : `${file}:${c.line}:`;
      expect(error?.message.startsWith(where), `${error?.message} should start with ${where}`).toBe(true);
      if (c.path) {
        expect(error?.message).toContain(`: ${c.path}: `);
        expect(error?.details.path).toBe(c.path);
      }
      if (c.line !== null) expect(error?.details.line).toBe(c.line);
      expect(error?.message).not.toMatch(/hunter2/);
    });
  }

  it("a config that names a module never changes the default registry", () => {
    expect(defaultRegistry.pluginNames()).not.toContain("twin");
    expect(defaultRegistry.adapterNames()).not.toContain("dir");
  });

  it("several problems are all reported, the first in the message, every one in details", async () => {
    const file = join(dir, "many.yaml");
    writeFileSync(file, "namespace: 42\ntiers: [memory]\nlandng: memory\nupgrader:\n  ageMs: -1\n");
    const error = (await resolveConfig(file, { env: {} }).catch((e: unknown) => e)) as Error & { details: { problems: { path: string; line: number }[] } };
    expect(error.message).toMatch(/:1:1: namespace: expected a string, got 42 \(and 2 more: landng, upgrader\.ageMs\)/);
    expect(error.details.problems.map((p) => [p.path, p.line])).toEqual([
      ["namespace", 1],
      ["landng", 3],
      ["upgrader.ageMs", 5],
    ]);
  });

  it("a config object has paths but no lines", async () => {
    const error = (await resolveConfig({ tiers: [{ adapter: "memory", options: { maxDatums: "many" } }] }, { env: {} }).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe("DGENT_INVALID_OPTIONS");
    expect(error.message).toMatch(/^<config object>: tiers\[0\]\.options\.maxDatums: expected an integer/);
  });

  it("a missing file is DGENT_CONFIG_NOT_FOUND naming it", async () => {
    await expect(resolveConfig(join(dir, "nope.yaml"))).rejects.toMatchObject({ code: "DGENT_CONFIG_NOT_FOUND", message: expect.stringContaining("nope.yaml") });
  });
});
