import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { s3Adapter } from "../adapters/s3/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { run } from "../cli/commands.js";
import { makeDatum, type Adapter, type Datum } from "../core/index.js";
import { scanTier } from "../core/tiers.js";
import { expectCode } from "../testing/index.js";
import { startPostgres, type PostgresServer } from "../test/harness/postgres.js";
import { startS3, S3RVER_CREDENTIALS, type S3Server } from "../test/harness/s3.js";
import { backup, backupAll, datumHash, readAllIndexes, restore, restoreAll, stateDigest, tierNamespaces } from "./index.js";

// Every namespace of a tier: enumerated per tier, one repository per namespace under the
// location with an index of the run, restored all together or one by one.

const root = mkdtempSync(join(tmpdir(), "dgent-backup-all-"));
let server: PostgresServer;
let s3: S3Server;
let dirs = 0;
const fresh = (label: string) => {
  const dir = join(root, `${label}-${dirs++}`);
  mkdirSync(dir);
  return dir;
};

beforeAll(async () => {
  [server, s3] = await Promise.all([startPostgres(), startS3()]);
});
afterAll(async () => {
  await Promise.all([server?.close(), s3?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

const datum = (id: string, createdAt: number, text = `content of ${id}`): Datum => makeDatum({ id, content: text, createdAt, metadata: { k: id.slice(0, 1) } });

async function fill(tier: Adapter, data: readonly Datum[]): Promise<void> {
  await tier.open();
  await tier.putMany?.(data);
  await tier.close();
}

async function digestOf(tier: Adapter): Promise<string> {
  await tier.open();
  const pairs: Array<[string, Buffer]> = [];
  for await (const d of scanTier(tier)) pairs.push([d.id, datumHash(d)]);
  await tier.close();
  return stateDigest(pairs);
}

const sqliteAt = (dir: string, ns: string) => sqliteAdapter({ path: join(dir, `${ns}.db`) });

describe("SQLite: every <namespace>.db of a directory", () => {
  it("backs up each namespace into its own repository with an index; restores all, one, and as of an earlier run", async () => {
    const data = fresh("data");
    const namespaces = { alpha: 30, beta: 5, "gamma.v2": 12 };
    for (const [ns, n] of Object.entries(namespaces)) await fill(sqliteAt(data, ns), Array.from({ length: n }, (_, i) => datum(`${ns}/${i}`, 1_000 + i)));
    // Files that are not namespaces: another extension, a name a namespace cannot have, a directory.
    writeFileSync(join(data, "notes.txt"), "x");
    writeFileSync(join(data, "_hidden.db"), "x");
    mkdirSync(join(data, "restores.db"));
    expect((await tierNamespaces(`sqlite://${data}`)).map((n) => n.namespace)).toEqual(["alpha", "beta", "gamma.v2"]);

    const repo = join(fresh("repo"), "all");
    const first = await backupAll({ from: `sqlite://${data}/`, to: repo, now: () => 10_000 });
    expect(first.namespaces.map((n) => [n.namespace, n.kind, n.state])).toEqual([
      ["alpha", "full", 30],
      ["beta", "full", 5],
      ["gamma.v2", "full", 12],
    ]);
    expect(readdirSync(repo).sort()).toEqual([`all-${first.runId}.json`, "alpha", "beta", "gamma.v2"]);
    // Each namespace's repository is an ordinary one: a plain restore reads it.
    const one = await restore({ from: join(repo, "beta"), to: `sqlite://${join(fresh("plain"), "beta.db")}` });
    expect(one).toMatchObject({ verified: true, state: 5 });

    // A second run, incremental: alpha changes, the others do not.
    await fill(sqliteAt(data, "alpha"), [datum("alpha/new", 5_000)]);
    const second = await backupAll({ from: `sqlite://${data}`, to: repo, incremental: true, now: () => 20_000 });
    expect(second.namespaces.map((n) => [n.namespace, n.kind, n.datums])).toEqual([
      ["alpha", "incremental", 1],
      ["beta", "incremental", 0],
      ["gamma.v2", "incremental", 0],
    ]);
    expect((await readAllIndexes(repo)).map((i) => i.runId)).toEqual([first.runId, second.runId]);

    // All of the newest run, into another directory: every namespace's digest is the source's.
    const target = fresh("target");
    const all = await restoreAll({ from: repo, to: `sqlite://${target}/` });
    expect(all).toMatchObject({ runId: second.runId, verified: true });
    for (const ns of Object.keys(namespaces)) expect(await digestOf(sqliteAt(target, ns))).toBe(await digestOf(sqliteAt(data, ns)));
    expect(all.namespaces.find((n) => n.namespace === "alpha")?.state).toBe(31);

    // One namespace of the first run (as of a time between the runs): alpha without its new datum.
    const onlyAlpha = fresh("only");
    const old = await restoreAll({ from: repo, to: `sqlite://${onlyAlpha}/`, namespaces: ["alpha"], asOf: 15_000 });
    expect(old.namespaces.map((n) => [n.namespace, n.state, n.verified])).toEqual([["alpha", 30, true]]);
    expect(readdirSync(onlyAlpha).filter((f) => f.endsWith(".db"))).toEqual(["alpha.db"]);

    // A dry run creates nothing.
    const dry = join(fresh("dry"), "sub");
    const checked = await restoreAll({ from: repo, to: `sqlite://${dry}/`, dryRun: true });
    expect(checked.verified).toBeNull();
    expect(checked.namespaces.map((n) => n.written)).toEqual([31, 5, 12]);
    expect(existsSync(dry)).toBe(false);

    await expectCode(restoreAll({ from: repo, to: `sqlite://${target}/`, namespaces: ["delta"] }), "DGENT_INVALID_OPTIONS");
    await expectCode(restoreAll({ from: repo, to: `sqlite://${target}/`, asOf: 5_000 }), "DGENT_BACKUP_CHAIN");
  });

  it("refuses what cannot hold every namespace: a file tier URL, a .dgbk file, a tier that cannot list its namespaces", async () => {
    const data = fresh("refuse");
    await fill(sqliteAt(data, "one"), [datum("x", 1)]);
    expect((await expectCode(backupAll({ from: `sqlite://${join(data, "one.db")}`, to: fresh("r") }), "DGENT_INVALID_OPTIONS")).message).toMatch(/directory/);
    expect((await expectCode(backupAll({ from: `sqlite://${data}`, to: join(fresh("r"), "x.dgbk") }), "DGENT_INVALID_OPTIONS")).message).toMatch(/directory, s3/);
    const unsupported = await expectCode(tierNamespaces("memory://"), "DGENT_UNSUPPORTED");
    expect(unsupported.details).toMatchObject({ capability: "namespaces" });
    await expectCode(restoreAll({ from: fresh("empty"), to: `sqlite://${fresh("t")}/` }), "DGENT_BACKUP_CHAIN");
    // An index of a newer version is refused, naming it.
    const repo = fresh("future");
    writeFileSync(join(repo, "all-x.json"), JSON.stringify({ format: "dgent-backup-all", version: 99, runId: "x", namespaces: [] }));
    await expectCode(readAllIndexes(repo), "DGENT_BACKUP_FORMAT");
  });

  it("on the command line: backup --all and restore --all, with --namespace for one", async () => {
    const home = fresh("home");
    const data = join(home, "data", "dgent");
    mkdirSync(data, { recursive: true });
    await fill(sqliteAt(data, "default"), [datum("d/1", 1), datum("d/2", 2)]);
    await fill(sqliteAt(data, "agent-7"), [datum("a/1", 1)]);
    const dgent = async (args: string[]) => {
      let out = "";
      const code = await run(args, {
        stdout: (c) => (out += typeof c === "string" ? c : Buffer.from(c).toString()),
        stderr: () => undefined,
        stdin: Readable.from([]),
        env: { HOME: home, XDG_DATA_HOME: join(home, "data") },
      });
      return { code, out };
    };
    const made = await dgent(["backup", "--all", "--to", join(home, "backups"), "--json"]);
    expect(made.code).toBe(0);
    expect((JSON.parse(made.out) as { namespaces: Array<{ namespace: string }> }).namespaces.map((n) => n.namespace)).toEqual(["agent-7", "default"]);
    const target = join(home, "restored");
    const restored = await dgent(["restore", "--all", "--from", join(home, "backups"), "--to", `sqlite://${target}/`, "--namespace", "agent-7", "--execute", "--json"]);
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.out)).toMatchObject({ verified: true, namespaces: [{ namespace: "agent-7", state: 1 }] });
    await expectCode(dgent(["backup", "--all", "--namespace", "x", "--to", join(home, "b2")]), "DGENT_USAGE");
  });
});

describe("Postgres: every schema holding dgent's table", () => {
  it("lists only dgent schemas, and restores them all into SQLite files", async () => {
    const database = `all_${Date.now().toString(36)}`;
    await server.query(`CREATE DATABASE ${database}`);
    const url = server.urlFor(database);
    try {
      await fill(postgresAdapter({ url, namespace: "agent_a" }), [datum("a/1", 1), datum("a/2", 2)]);
      await fill(postgresAdapter({ url, namespace: "agent-b" }), [datum("b/1", 1)]);
      await server.query("CREATE SCHEMA unrelated; CREATE TABLE unrelated.data (x int)", [], database);
      expect((await tierNamespaces(url)).map((n) => n.namespace)).toEqual(["agent-b", "agent_a"]);
      const repo = fresh("pg-repo");
      const made = await backupAll({ from: url, to: repo });
      expect(made.namespaces.map((n) => [n.namespace, n.state])).toEqual([
        ["agent-b", 1],
        ["agent_a", 2],
      ]);
      const target = fresh("pg-target");
      expect(await restoreAll({ from: repo, to: `sqlite://${target}` })).toMatchObject({ verified: true });
      expect(await digestOf(sqliteAt(target, "agent_a"))).toBe(await digestOf(postgresAdapter({ url, namespace: "agent_a" })));
      expect(await digestOf(sqliteAt(target, "agent-b"))).toBe(await digestOf(postgresAdapter({ url, namespace: "agent-b" })));
    } finally {
      await server.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });
});

describe("S3: every <prefix><namespace>/ with a namespace manifest", () => {
  it("lists the namespaces of a bucket prefix: the <namespace>/dgent.json keys", async () => {
    const bucket = "all-namespaces";
    await s3.createBucket(bucket);
    const options = { bucket, endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { ...S3RVER_CREDENTIALS } };
    for (const ns of ["b", "a", "a.b", "a0"]) await fill(s3Adapter({ ...options, namespace: ns, prefix: "tiers/" }), [datum(`${ns}/1`, 1)]);
    // Another prefix, and an object under the prefix that is no namespace.
    await fill(s3Adapter({ ...options, namespace: "elsewhere", prefix: "other/" }), [datum("e/1", 1)]);
    const { S3Client, PutObjectCommand } = await import("@aws-sdk/client-s3");
    const client = new S3Client({ ...s3.clientOptions, maxAttempts: 1 });
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "tiers/stray/file", Body: Buffer.from("x") }));
    client.destroy();
    const url = `s3://${bucket}/tiers/?endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true&region=us-east-1`;
    const found = await tierNamespaces(url, { s3: { credentials: { ...S3RVER_CREDENTIALS } } });
    expect(found.map((n) => n.namespace)).toEqual(["a", "a.b", "a0", "b"]);
  });
});

describe("archives of one namespace are unchanged", () => {
  it("a plain backup's repository holds no index, and restoreAll says to back up with --all", async () => {
    const data = fresh("single");
    const tier = sqliteAt(data, "default");
    await fill(tier, [datum("x", 1)]);
    const repo = fresh("single-repo");
    await backup({ from: `sqlite://${join(data, "default.db")}`, to: repo });
    expect((await expectCode(restoreAll({ from: repo, to: `sqlite://${fresh("t")}/` }), "DGENT_BACKUP_CHAIN")).message).toMatch(/--all/);
  });
});
