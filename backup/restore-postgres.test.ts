import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum, type Adapter, type Datum } from "../core/index.js";
import { expectCode } from "../testing/index.js";
import { resolveQuery } from "../core/query.js";
import { scanTier } from "../core/tiers.js";
import { assertBuilt, freshSchema, startPostgres, type PostgresServer } from "../test/harness/postgres.js";
import { putsHeard } from "../test/harness/heard.js";
import { until } from "../test/harness/until.js";
import { backup, datumHash, restore } from "./index.js";

// A restore into Postgres goes through the tier's bulk import (`importDatums`, adapters/postgres/
// bulk.ts): the same datums, tags, parents and refs as the source, held ids never overwritten,
// and listeners hear every restored datum.

const root = mkdtempSync(join(tmpdir(), "dgent-restore-pg-"));
let server: PostgresServer;
let n = 0;
const path = (label: string) => join(root, `${label}-${n++}`);

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

const N = 2_500;
const sourceDatum = (i: number): Datum =>
  makeDatum({
    id: `c/${i}`,
    content: `memory ${i} `.repeat(1 + (i % 9)),
    createdAt: 10_000 + i,
    causalParent: i % 10 === 0 || i === 0 ? null : `c/${i - 1}`,
    metadata: { kind: i % 3 ? "note" : "plan", i: String(i) },
  });

async function source(): Promise<Adapter> {
  const tier = sqliteAdapter({ path: `${path("src")}.db` });
  await tier.open();
  await tier.putMany?.(Array.from({ length: N }, (_, i) => sourceDatum(i)));
  await tier.setRef?.("head", "c/42", undefined, { by: "writer", at: 1_000 });
  await tier.setRef?.("head", "c/43", undefined, { by: "writer", at: 1_001 });
  return tier;
}

const hashes = async (tier: Adapter) => {
  const out = new Map<string, string>();
  for await (const d of scanTier(tier)) out.set(d.id, datumHash(d).toString("hex"));
  return out;
};

describe("restore into Postgres through the bulk import", () => {
  it("every datum, tag, parent and ref as in the source; a held id with another value is named and kept; a re-run stores nothing", async () => {
    const src = await source();
    const repo = path("repo");
    await backup({ from: src, to: repo, chunkBytes: 16 * 1024 });
    const namespace = freshSchema("restore_bulk");
    const target = postgresAdapter({ url: server.url, namespace, listen: false });
    await target.open();
    try {
      // Held before the restore: c/7 with another value (a conflict), c/8 with the same one.
      await target.put(makeDatum({ id: "c/7", content: "kept as it is", createdAt: 1 }));
      await target.put(sourceDatum(8));
      const checkpointPath = `${path("cp")}.json`;
      const r = await restore({ from: repo, to: target, checkpointPath, batchSize: 500 });
      expect(r).toMatchObject({ state: N, written: N - 2, conflicts: ["c/7"], refs: 1, refsExact: 1, verified: false });
      expect(Buffer.from((await target.get("c/7"))?.content ?? []).toString()).toBe("kept as it is");
      const want = await hashes(src);
      const got = await hashes(target);
      expect(got.size).toBe(N);
      for (const [id, h] of want) if (id !== "c/7") expect(got.get(id), id).toBe(h);
      // Tags are queryable as after a put.
      const plans = await target.query({ ...resolveQuery({ where: { kind: "plan" }, order: "oldest" }), limit: 10_000 });
      expect(plans.map((d) => d.id)).toEqual(Array.from({ length: N }, (_, i) => i).filter((i) => i % 3 === 0 && i !== 7).map((i) => `c/${i}`));
      expect((await target.query({ ...resolveQuery({ where: { i: "1234" } }), limit: 10 })).map((d) => d.id)).toEqual(["c/1234"]);
      expect((await target.causalChain?.("c/13", 100))?.map((d) => d.id)).toEqual(["c/10", "c/11", "c/12", "c/13"]);
      expect(await target.getRef?.("head")).toMatchObject({ target: "c/43", version: 2 });
      // Again: nothing new, the same conflict.
      // The first run did not verify (the conflict), so its checkpoint was kept: a fresh one makes
      // this a whole second run.
      const again = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json`, batchSize: 500 });
      expect(again).toMatchObject({ written: 0, conflicts: ["c/7"], refs: 0 });
      expect((await target.stats?.())?.count).toBe(N);
    } finally {
      await target.close();
      await src.close();
    }
  });

  // A target given as a URL is opened as `dgent migrate` opens one, with notify off (adapters/
  // postgres/index.ts); an adapter with notify on, as here, announces what the restore writes.
  it("a store listening on the target hears every datum a restore in another process writes into a tier with notify on", async () => {
    assertBuilt();
    const src = await source();
    const repo = path("repo");
    await backup({ from: src, to: repo, chunkBytes: 16 * 1024 });
    await src.close();
    const namespace = freshSchema("restore_heard");
    const { store: listener, heard } = await putsHeard(server.url, namespace);
    try {
      const child = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { restore } = await import(${JSON.stringify(new URL("../dist/backup/index.js", import.meta.url).href)});
           const { postgresAdapter } = await import(${JSON.stringify(new URL("../dist/adapters/postgres/index.js", import.meta.url).href)});
           const to = postgresAdapter({ url: process.env.URL, namespace: process.env.NS, listen: false });
           await to.open();
           const r = await restore({ from: process.env.REPO, to, checkpointPath: process.env.CP, batchSize: 400 });
           await to.close();
           if (r.verified !== true || r.written !== ${N}) throw new Error(JSON.stringify(r));`,
        ],
        { env: { ...process.env, REPO: repo, URL: server.url, NS: namespace, CP: `${path("cp")}.json` }, stdio: ["ignore", "inherit", "inherit"] },
      );
      expect(await new Promise<number | null>((resolve) => child.on("exit", resolve))).toBe(0);
      await until("every restored datum heard", () => heard.size === N);
      expect([...heard].sort()).toEqual(Array.from({ length: N }, (_, i) => `c/${i}`).sort());
    } finally {
      await listener.close();
    }
  });

  it("a role without TEMPORARY on the database (no staging table) restores through putMany", async () => {
    const src = await source();
    const repo = path("repo");
    await backup({ from: src, to: repo, chunkBytes: 16 * 1024 });
    await src.close();
    const tag = randomBytes(4).toString("hex");
    const db = `notemp_${tag}`;
    const role = `restorer_${tag}`;
    await server.query(`CREATE DATABASE ${db}`);
    await server.query(`REVOKE TEMPORARY ON DATABASE ${db} FROM PUBLIC`);
    await server.query(`CREATE ROLE ${role} LOGIN PASSWORD '${tag}'`);
    await server.query(`GRANT CONNECT, CREATE ON DATABASE ${db} TO ${role}`);
    const url = new URL(server.urlFor(db));
    url.username = role;
    url.password = tag;
    const target = postgresAdapter({ url: url.href, namespace: freshSchema("notemp"), listen: false });
    await target.open();
    try {
      await expectCode(target.importDatums([sourceDatum(0)]), "DGENT_BACKEND_ERROR", { reason: "42501" });
      const r = await restore({ from: repo, to: target, checkpointPath: `${path("cp")}.json`, batchSize: 500 });
      expect(r).toMatchObject({ state: N, written: N, conflicts: [], verified: true });
      expect((await target.stats?.())?.count).toBe(N);
    } finally {
      await target.close();
      await server.query(`DROP DATABASE ${db} WITH (FORCE)`);
      await server.query(`DROP ROLE ${role}`);
    }
  });
});
