import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleFileName, initTemplate } from "../cli/init-templates.js";
import { createStoreFromConfig, resolveConfig } from "../compose/config/index.js";
import CONFIG_SCHEMA from "../compose/config/schema.json" with { type: "json" };
import { makeDatum } from "../core/datum.js";
import type { Store } from "../core/store.js";
import { startGcsEmulator, type GcsEmulator } from "./harness/gcs-emulator.js";
import { dropSchema, freshSchema, startPostgres, type PostgresServer } from "./harness/postgres.js";
import { S3RVER_CREDENTIALS, startS3, type S3Server } from "./harness/s3.js";

// Every file under examples/configs loads and works: the embedded one on real files, the Postgres
// ones against the harness' throwaway server, the archives against s3rver and the GCS emulator.
// The examples are copied into a project whose node_modules/dgent is this repository (as a user's
// would be), so their modules import "dgent" as third parties do. Needs `npm run build`.
const ROOT = new URL("..", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "dgent-config-examples-"));
const examples = join(work, "project", "examples");
const configs = join(examples, "configs");
mkdirSync(join(work, "project", "node_modules"), { recursive: true });
symlinkSync(ROOT, join(work, "project", "node_modules", "dgent"), "dir");
cpSync(join(ROOT, "examples"), examples, { recursive: true });
afterAll(() => rmSync(work, { recursive: true, force: true }));

let stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close().catch(() => undefined);
});
async function open(file: string, env: Record<string, string>): Promise<Store> {
  const store = await createStoreFromConfig(join(configs, file), { env });
  stores.push(store);
  await store.open();
  return store;
}

async function roundTrip(store: Store): Promise<string> {
  const question = await store.put(makeDatum({ content: "what is in the archive?", metadata: { role: "user" } }));
  const answer = await store.put(makeDatum({ content: "everything older than a month", causalParent: question, metadata: { role: "agent" } }));
  expect(Buffer.from((await store.get(answer))?.content ?? []).toString()).toBe("everything older than a month");
  expect((await store.causalChain(answer)).map((d) => d.id)).toEqual([question, answer]);
  expect((await store.list({ limit: 10 })).map((d) => d.id)).toEqual([answer, question]);
  return answer;
}

describe("examples/configs", () => {
  it("are one file per profile, each the starter config dgent init writes, each fitting the published schema", () => {
    const files = readdirSync(join(ROOT, "examples/configs")).sort();
    expect(files).toEqual(["embedded.yaml", "minimal.json", "production-gcs.yaml", "production-s3.yaml", "retention.yaml", "team-postgres.yaml", "third-party.yaml"]);
    expect(readFileSync(join(configs, exampleFileName("embedded")), "utf8")).toBe(initTemplate("embedded"));
    expect(readFileSync(join(configs, exampleFileName("team-postgres")), "utf8")).toBe(initTemplate("team-postgres"));
    expect(readFileSync(join(configs, exampleFileName("production", "s3")), "utf8")).toBe(initTemplate("production", "s3"));
    expect(readFileSync(join(configs, exampleFileName("production", "gcs")), "utf8")).toBe(initTemplate("production", "gcs"));
    // schema.json works on its own, as an editor or another tool would use it (before expansion,
    // ${…} strings stand where numbers may go, so only the files' shape is checked here).
    const validate = new Ajv({ allErrors: true, strict: false }).compile(CONFIG_SCHEMA);
    for (const f of files) {
      const text = readFileSync(join(configs, f), "utf8");
      const data = f.endsWith(".json") ? JSON.parse(text) : parse(text);
      const shape = JSON.parse(JSON.stringify(data, (_k, v: unknown) => (typeof v === "string" && v.startsWith("${") ? undefined : v)));
      expect(validate(shape) ? [] : validate.errors, f).toEqual([]);
    }
  });

  it("embedded.yaml: SQLite under XDG_DATA_HOME with memory last, the cache plugin, a restart finds the data", async () => {
    const xdg = join(work, "xdg-embedded");
    const env = { XDG_DATA_HOME: xdg, DGENT_NAMESPACE: "embedded-example" };
    const store = await open("embedded.yaml", env);
    const answer = await roundTrip(store);
    const report = await store.backend();
    expect(report).toMatchObject({ landing: "sqlite", volatile: false, namespace: "embedded-example" });
    expect(report.tiers.map((t) => t.name)).toEqual(["sqlite", "memory"]);
    const cache = (await store.plugin("cache")) as { stats(): { fills: number } };
    expect(cache.stats().fills).toBeGreaterThan(0);
    await store.close();
    expect(existsSync(join(xdg, "dgent", "embedded-example.db"))).toBe(true);
    const again = await open("embedded.yaml", env);
    expect((await again.get(answer))?.causalParent).not.toBeNull();
    await again.close();
  });

  it("minimal.json: the shortest useful config, in JSON", async () => {
    const r = await resolveConfig(join(configs, "minimal.json"), { env: { XDG_DATA_HOME: join(work, "xdg-min") } });
    expect(r.tiers.map((t) => t.adapter)).toEqual(["sqlite", "memory"]);
    expect(r.plugins).toEqual([{ plugin: "cache", options: expect.objectContaining({ maxEntries: 1000 }) }]);
    await roundTrip(await open("minimal.json", { XDG_DATA_HOME: join(work, "xdg-min") }));
  });

  it("retention.yaml: plan says what goes and moves, apply does it, pinned datums stay", async () => {
    const data = join(work, "retention-data");
    const env = { DGENT_DATA_DIR: data };
    const store = await open("retention.yaml", env);
    const day = 86_400_000;
    const now = Date.UTC(2026, 11, 1);
    const at = (days: number) => now - days * day;
    await store.putMany([
      makeDatum({ id: "trace/old", content: "t1", createdAt: at(120) }),
      makeDatum({ id: "trace/new", content: "t2", createdAt: at(10) }),
      makeDatum({ id: "trace/pinned", content: "t3", createdAt: at(500), metadata: { pinned: "yes" } }),
      makeDatum({ id: "session/week-old", content: "s1", createdAt: at(8) }),
      makeDatum({ id: "session/today", content: "s2", createdAt: at(0) }),
      makeDatum({ id: "session/ancient", content: "s3", createdAt: at(400) }),
      makeDatum({ id: "run/1", content: "tool says hi", createdAt: at(20), metadata: { kind: "tool" } }),
      makeDatum({ id: "notes/1", content: "n", createdAt: at(1_000) }),
    ]);
    const plan = await store.planRetention({ now });
    expect(plan.policies.map((p) => [p.name, p.matched.count, p.delete.count, p.move.count])).toEqual([
      ["pinned", 1, 0, 0],
      ["traces", 2, 1, 0],
      ["sessions", 3, 1, 1],
      ["tool-output", 1, 1, 0],
    ]);
    expect(plan.unmatched.count).toBe(1);
    const applied = await store.applyRetention({ now });
    expect([applied.total.delete.count, applied.total.move.count]).toEqual([3, 1]);
    const left = (await store.query({ limit: 100, select: "ids" })).items.sort();
    expect(left).toEqual(["notes/1", "session/today", "session/week-old", "trace/new", "trace/pinned"]);
    expect((await store.backend()).tiers.map((t) => [t.name, t.count])).toEqual([
      ["sqlite", 1],
      ["jsonl", 4],
    ]);
    await store.close();
  });

  it("third-party.yaml: the dir adapter and the audit-log plugin, loaded by relative path, beside a built-in plugin", async () => {
    const data = join(work, "third-party-data");
    const r = await resolveConfig(join(configs, "third-party.yaml"), { env: { DGENT_DATA_DIR: data, USER: "tester" } });
    expect(r.modules.map((m) => [m.specifier, m.adapters, m.plugins, m.rangeFrom])).toEqual([
      ["../dir-adapter/index.mjs", ["dir"], [], "package.json"],
      ["../plugins/audit-log", [], ["audit-log"], "export"],
    ]);
    const store = await open("third-party.yaml", { DGENT_DATA_DIR: data, USER: "tester" });
    const answer = await roundTrip(store);
    expect((await store.backend()).landing).toBe("dir");
    expect(await store.delete(answer)).toBe(true);
    await store.close();
    expect(readdirSync(join(data, "datums")).filter((f) => f.endsWith(".json"))).toHaveLength(1);
    const audit = readFileSync(join(data, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { op: string; actor: string; id: string });
    expect(audit.map((a) => a.op)).toEqual(["put", "put", "delete"]);
    expect(audit.every((a) => a.actor === "tester")).toBe(true);
    // Without DGENT_DATA_DIR, paths start at the config file's directory (${DGENT_CONFIG_DIR}).
    const defaults = await resolveConfig(join(configs, "third-party.yaml"), { env: {} });
    expect(defaults.tiers[0]?.options.dir).toBe(join(configs, "data", "datums"));
    expect(defaults.namespace).toBe("third-party");
  });

  // Asynchronous, so the worker stays responsive while node:test runs the kit (minutes on a loaded machine).
  it("the third-party examples pass their own tests (the conformance kit under node:test) from a project that installed dgent", async () => {
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--test", "--test-reporter=tap", "examples/plugins/audit-log/", "examples/dir-adapter/"], {
        cwd: join(work, "project"),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.once("error", reject);
      child.once("close", (status) => resolve({ status, stdout, stderr }));
    });
    expect(run.stdout, run.stderr).toMatch(/# fail 0/);
    expect(Number(/# pass (\d+)/.exec(run.stdout)?.[1])).toBeGreaterThan(50);
    expect(run.status).toBe(0);
  }, 600_000);

  describe("against servers", () => {
    let pg: PostgresServer;
    let s3: S3Server;
    let gcs: GcsEmulator;
    const schemas: string[] = [];
    beforeAll(async () => {
      [pg, s3, gcs] = await Promise.all([startPostgres(), startS3(), startGcsEmulator()]);
      await s3.createBucket("dgent-archive");
      gcs.createBucket("dgent-archive");
      // The S3 SDK takes credentials from its default chain (the environment), as in a pod.
      process.env.AWS_ACCESS_KEY_ID = S3RVER_CREDENTIALS.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = S3RVER_CREDENTIALS.secretAccessKey;
    });
    afterAll(async () => {
      for (const s of stores) await s.close().catch(() => undefined);
      stores = [];
      for (const schema of schemas) await dropSchema(pg, schema).catch(() => undefined);
      await Promise.all([pg?.close(), s3?.stop(), gcs?.stop()]);
    });
    const namespace = (label: string) => {
      const schema = freshSchema(label);
      schemas.push(schema);
      return schema;
    };

    it("team-postgres.yaml: writes land on Postgres, SQLite and memory below it", async () => {
      const ns = namespace("team");
      const env = { DGENT_DATABASE_URL: pg.url, DGENT_NAMESPACE: ns, XDG_DATA_HOME: join(work, "xdg-team"), DGENT_POOL_SIZE: "3" };
      const r = await resolveConfig(join(configs, "team-postgres.yaml"), { env });
      expect(r.tiers[0]?.options.poolSize).toBe(3); // "${DGENT_POOL_SIZE:-4}" became a number
      const store = await open("team-postgres.yaml", env);
      await roundTrip(store);
      const report = await store.backend();
      expect(report).toMatchObject({ landing: "postgres-docker", preferred: "postgres-docker", degraded: false });
      expect(report.tiers.map((t) => t.name)).toEqual(["postgres-docker", "sqlite", "memory"]);
      const rows = await pg.query<{ n: string }>(`SELECT count(*) AS n FROM "${ns}".data`);
      expect(Number(rows.rows[0]?.n)).toBe(2);
    });

    const production = (archive: "s3" | "gcs") => async () => {
      const ns = namespace(`prod_${archive}`);
      const env: Record<string, string> = {
        DGENT_DATABASE_URL: pg.url,
        DGENT_NAMESPACE: ns.replace(/_/g, "-"),
        DGENT_DATA_DIR: join(work, `pod-volume-${archive}`),
        DGENT_POSTGRES_TLS: pg.tls ? "require" : "off",
        ...(archive === "s3"
          ? { DGENT_S3_BUCKET: "dgent-archive", DGENT_S3_ENDPOINT: s3.endpoint, DGENT_S3_FORCE_PATH_STYLE: "true" }
          : { DGENT_GCS_BUCKET: "dgent-archive", DGENT_GCS_ENDPOINT: gcs.url, GOOGLE_CLOUD_PROJECT: "test" }),
      };
      schemas.push(env.DGENT_NAMESPACE as string);
      const file = `production-${archive}.yaml`;
      const r = await resolveConfig(join(configs, file), { env });
      expect(r.tiers.map((t) => [t.adapter, t.rank])).toEqual([[archive, 50], ["postgres-kind", 40], ["sqlite", 20]]);
      expect(r.upgrader).toEqual({ intervalMs: 300_000, ageMs: 30 * 86_400_000, sizeBytes: 1e12 });
      const store = await open(file, env);
      const answer = await roundTrip(store);
      let report = await store.backend();
      expect(report).toMatchObject({ landing: "postgres-kind", degraded: false });
      expect(report.tiers.find((t) => t.name === "postgres-kind")?.count).toBe(2);
      // A month later the age trigger moves both datums up into the archive; reads still find them.
      const moved = await store.upgradeTick(Date.now() + 31 * 86_400_000);
      expect(moved).toEqual([{ from: "postgres-kind", to: archive, moved: 2, kept: [] }]);
      report = await store.backend();
      expect(report.tiers.find((t) => t.name === archive)?.count).toBe(2);
      expect(report.tiers.find((t) => t.name === "postgres-kind")?.count).toBe(0);
      expect(Buffer.from((await store.get(answer))?.content ?? []).toString()).toBe("everything older than a month");
      await store.close();
    };
    it("production-s3.yaml: Postgres on Kubernetes (TLS) lands the writes, S3 archives them by age", production("s3"));
    it("production-gcs.yaml: the same with a GCS archive", production("gcs"));

    it("the CLI runs the team config end to end (--config, secrets redacted in config print)", () => {
      const ns = namespace("cli");
      const env = { PATH: process.env.PATH ?? "", HOME: work, XDG_DATA_HOME: join(work, "xdg-cli"), DGENT_DATABASE_URL: pg.url, DGENT_NAMESPACE: ns };
      const bin = join(ROOT, "dist/cli/main.js");
      const config = join(configs, "team-postgres.yaml");
      const dgent = (...args: string[]) => spawnSync(process.execPath, [bin, ...args, "--config", config], { env, encoding: "utf8" });
      const id = dgent("put", "via the team config").stdout.trim();
      expect(dgent("get", id).stdout).toBe("via the team config");
      expect(JSON.parse(dgent("backend", "--json").stdout)).toMatchObject({ landing: "postgres-docker" });
      const printed = dgent("config", "print");
      expect(printed.status).toBe(0);
      expect(printed.stdout).toContain("postgres://postgres:***@");
      expect(printed.stdout).not.toContain(pg.password);
    });
  });
});
