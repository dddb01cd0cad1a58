import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { exampleFileName, initTemplate, type ArchiveTier, type InitProfile } from "./init-templates.js";

// The built CLI with config files, as a user drives it: real processes, real files, a working
// directory of the test's own.
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const EXAMPLES = new URL("../examples/configs/", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-cli-config-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

let dirs = 0;
function project(): string {
  const dir = join(home, `p${dirs++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function dgent(cwd: string, args: string[], env: Record<string, string> = {}, input = "") {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    input,
    env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data"), ...env },
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("dgent with a config file", () => {
  it("every command uses dgent.config.* from the working directory; without one, the embedded default", () => {
    const dir = project();
    expect(JSON.parse(dgent(dir, ["backend", "--json"]).stdout)).toMatchObject({ landing: "sqlite" });
    writeFileSync(join(dir, "dgent.config.yaml"), "namespace: from-file\ntiers:\n  - adapter: jsonl\n  - memory\n");
    const id = dgent(dir, ["put", "hello from the config"]).stdout.trim();
    expect(dgent(dir, ["get", id]).stdout).toBe("hello from the config");
    const report = JSON.parse(dgent(dir, ["backend", "--json"]).stdout) as { landing: string; namespace: string; tiers: { name: string }[] };
    expect(report).toMatchObject({ landing: "jsonl", namespace: "from-file" });
    expect(report.tiers.map((t) => t.name)).toEqual(["jsonl", "memory"]);
    expect(existsSync(join(home, "data", "dgent", "from-file.jsonl"))).toBe(true);
    // --namespace overrides the file's namespace.
    expect(dgent(dir, ["get", id, "--namespace", "other"]).code).toBe(1);
  });

  it("--config and DGENT_CONFIG name the file; a missing one is DGENT_CONFIG_NOT_FOUND", () => {
    const dir = project();
    const file = join(dir, "elsewhere.json");
    writeFileSync(file, JSON.stringify({ tiers: ["memory"] }));
    expect(JSON.parse(dgent(home, ["backend", "--json", "--config", file]).stdout)).toMatchObject({ landing: "memory", volatile: true });
    expect(JSON.parse(dgent(home, ["backend", "--json"], { DGENT_CONFIG: file }).stdout)).toMatchObject({ landing: "memory" });
    const missing = dgent(dir, ["list", "--config", "nope.yaml"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^dgent: --config names nope\.yaml, but there is no such file.*\[DGENT_CONFIG_NOT_FOUND\]\n$/);
  });

  it("DGENT_BACKEND is ignored, and said to be, when a config file chooses the tiers", () => {
    const dir = project();
    writeFileSync(join(dir, "dgent.config.json"), JSON.stringify({ tiers: ["sqlite"] }));
    const r = dgent(dir, ["backend", "--json"], { DGENT_BACKEND: "memory" });
    expect(JSON.parse(r.stdout)).toMatchObject({ landing: "sqlite" });
    expect(r.stderr).toMatch(/warning: DGENT_BACKEND=memory is ignored: .*dgent\.config\.json chooses the tiers/);
  });

  it("a broken config is one line naming file:line:column, the path and the code", () => {
    const dir = project();
    writeFileSync(join(dir, "dgent.config.yaml"), "tiers:\n  - adapter: sqlite\n    options:\n      busyTimeoutMs: soon\n");
    const r = dgent(dir, ["list"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/dgent: .*dgent\.config\.yaml:4:7: tiers\[0\]\.options\.busyTimeoutMs: expected an integer, got the string "soon" .*\[DGENT_INVALID_OPTIONS\]/);
  });

  it("two config files in one directory are refused", () => {
    const dir = project();
    writeFileSync(join(dir, "dgent.config.json"), JSON.stringify({ tiers: ["sqlite"] }));
    writeFileSync(join(dir, "dgent.config.yml"), "tiers: [memory]\n");
    const r = dgent(dir, ["list"]);
    expect(r.stderr).toMatch(/are both in .*; keep one, or choose with --config.*\[DGENT_CONFIG_INVALID\]/);
  });
});

describe("dgent config validate", () => {
  it("says what the config resolves to", () => {
    const dir = project();
    writeFileSync(join(dir, "dgent.config.yaml"), "namespace: ${NS:-agent}\ntiers:\n  - sqlite\n  - memory\nplugins: [cache]\n");
    const r = dgent(dir, ["config", "validate"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ok: .*dgent\.config\.yaml \(found via working directory\)/);
    expect(r.stdout).toMatch(/tiers: +sqlite \(rank 20, landing\) → memory \(rank 0\)/);
    expect(r.stdout).toMatch(/plugins: +cache/);
    expect(r.stdout).toMatch(/reads: +NS/);
    const json = JSON.parse(dgent(dir, ["config", "validate", "--json"], { NS: "other" }).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ ok: true, namespace: "other", landing: "sqlite", plugins: ["cache"], variables: ["NS"] });
  });

  it("lists every problem, one per line, and exits 1", () => {
    const dir = project();
    writeFileSync(join(dir, "dgent.config.yaml"), "namespace: 42\ntiers: [memory]\nlandng: memory\n");
    const r = dgent(dir, ["config", "validate"]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^dgent: also .*dgent\.config\.yaml:3:1: landng: unknown key "landng"; did you mean "landing"\?/);
    expect(lines[1]).toMatch(/dgent\.config\.yaml:1:1: namespace: expected a string, got 42 .*\[DGENT_CONFIG_INVALID\]$/);
  });

  it("without a config file is DGENT_CONFIG_NOT_FOUND, suggesting dgent init", () => {
    const r = dgent(project(), ["config", "validate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no config file: .*dgent init writes one.*\[DGENT_CONFIG_NOT_FOUND\]/);
  });

  it("a subcommand it does not know is a usage error", () => {
    const r = dgent(project(), ["config", "check"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown config subcommand "check"; use validate or print.*\[DGENT_USAGE\]/);
  });
});

describe("dgent config print", () => {
  it("prints the resolved config with defaults, and no secret", () => {
    const dir = project();
    writeFileSync(
      join(dir, "dgent.config.yaml"),
      [
        "tiers:",
        "  - adapter: s3",
        "    options:",
        "      bucket: archive",
        "      credentials: { accessKeyId: AKIAEXAMPLE, secretAccessKey: \"${S3_SECRET}\" }",
        "  - adapter: postgres-docker",
        "    options:",
        "      url: ${DB_URL}",
        "  - sqlite",
        "landing: postgres-docker",
        "upgrader: { ageMs: 7d, sizeBytes: 1GiB }",
        "",
      ].join("\n"),
    );
    const env = { DB_URL: "postgres://agent:pg-password-123@db.internal:5432/agents?sslmode=require", S3_SECRET: "s3-secret-456" };
    const r = dgent(dir, ["config", "print"], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/pg-password-123|s3-secret-456|AKIAEXAMPLE/);
    expect(r.stdout).toMatch(/^# resolved from .*dgent\.config\.yaml/);
    const printed = parse(r.stdout) as { tiers: { adapter: string; options: Record<string, unknown> }[]; upgrader: Record<string, number>; journalPath: string; namespace: string };
    expect(printed.tiers[1]?.options.url).toBe("postgres://agent:***@db.internal:5432/agents?sslmode=require");
    expect(printed.tiers[0]?.options.credentials).toEqual({ accessKeyId: "<redacted>", secretAccessKey: "<redacted>" });
    expect(printed.tiers[2]?.options).toMatchObject({ namespace: "default", busyTimeoutMs: 5000, dataDir: join(home, "data", "dgent") });
    expect(printed.upgrader).toEqual({ ageMs: 7 * 86_400_000, sizeBytes: 2 ** 30 });
    expect(printed.journalPath).toBe(join(home, "data", "dgent", "default.pending-deletes.jsonl"));
    const json = dgent(dir, ["config", "print", "--json"], env);
    expect(json.stdout).not.toMatch(/pg-password-123|s3-secret-456/);
    expect((JSON.parse(json.stdout) as { landing: string }).landing).toBe("postgres-docker");
  });

  it("without a config file prints the embedded default the environment chooses", () => {
    const r = dgent(project(), ["config", "print", "--json"], { DGENT_DATABASE_URL: "postgres://u:topsecret@db:5432/x" });
    const printed = JSON.parse(r.stdout) as { tiers: { adapter: string; options: { url?: string } }[] };
    expect(printed.tiers.map((t) => t.adapter)).toEqual(["postgres-docker", "sqlite", "memory"]);
    expect(r.stdout).not.toContain("topsecret");
    expect(printed.tiers[0]?.options.url).toBe("postgres://u:***@db:5432/x");
  });
});

describe("dgent init", () => {
  it("writes the embedded starter config, which the next command uses", () => {
    const dir = project();
    const r = dgent(dir, ["init"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*dgent\.config\.yaml \(embedded profile\)\. Next: dgent config validate/);
    const text = readFileSync(join(dir, "dgent.config.yaml"), "utf8");
    expect(text).toBe(initTemplate("embedded"));
    expect(text).toMatch(/^# dgent config: embedded/);
    expect(dgent(dir, ["config", "validate"]).code).toBe(0);
    const id = dgent(dir, ["put", "kept"], { DGENT_NAMESPACE: "from-init" }).stdout.trim();
    expect(dgent(dir, ["get", id], { DGENT_NAMESPACE: "from-init" }).stdout).toBe("kept");
    expect(existsSync(join(home, "data", "dgent", "from-init.db"))).toBe(true);
  });

  it("never overwrites without --force, nor writes a second config beside another", () => {
    const dir = project();
    expect(dgent(dir, ["init"]).code).toBe(0);
    const again = dgent(dir, ["init", "--profile", "team-postgres"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; --force overwrites it/);
    expect(readFileSync(join(dir, "dgent.config.yaml"), "utf8")).toBe(initTemplate("embedded"));
    expect(dgent(dir, ["init", "--profile", "team-postgres", "--force"]).code).toBe(0);
    expect(readFileSync(join(dir, "dgent.config.yaml"), "utf8")).toBe(initTemplate("team-postgres"));

    const other = project();
    writeFileSync(join(other, "dgent.config.json"), "{}");
    expect(dgent(other, ["init"]).stderr).toMatch(/dgent\.config\.json is already here; two config files would compete/);
  });

  it("--stdout prints each profile's starter config: the files under examples/configs", () => {
    const profiles: [InitProfile, ArchiveTier | undefined][] = [["embedded", undefined], ["team-postgres", undefined], ["production", "s3"], ["production", "gcs"]];
    for (const [profile, archive] of profiles) {
      const r = dgent(project(), ["init", "--stdout", "--profile", profile, ...(archive ? ["--archive", archive] : [])]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(readFileSync(join(EXAMPLES, exampleFileName(profile, archive)), "utf8"));
    }
    const bad = dgent(project(), ["init", "--profile", "prod"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--profile takes embedded, team-postgres, production; got "prod"/);
    expect(dgent(project(), ["init", "--archive", "gcs"]).stderr).toMatch(/--archive applies to --profile production only/);
  });

  it("--output writes elsewhere, and --help lists the new commands and --config", () => {
    const dir = project();
    expect(dgent(dir, ["init", "--profile", "production", "--archive", "gcs", "--output", "conf/prod.yaml"]).code).toBe(1);
    mkdirSync(join(dir, "conf"));
    const r = dgent(dir, ["init", "--profile", "production", "--archive", "gcs", "--output", "conf/prod.yaml", "--json"]);
    expect(JSON.parse(r.stdout)).toMatchObject({ profile: "production", archive: "gcs" });
    expect(readFileSync(join(dir, "conf/prod.yaml"), "utf8")).toContain("adapter: gcs");
    const help = dgent(dir, ["--help"]).stdout;
    expect(help).toMatch(/\n {2}config +check the config file/);
    expect(help).toMatch(/\n {2}init +write a commented starter config/);
    expect(help).toMatch(/--config PATH/);
  });
});
