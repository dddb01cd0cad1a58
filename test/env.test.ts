import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultRegistry, defaultTiers, postgresProfileFor, resolveEnvironment, sqlitePathFromUrl, tierForUrl } from "../compose/index.js";
import { adapterForUrl } from "../compose/migrate.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { Registry, defineAdapter } from "../core/index.js";

const tiers = async (env: NodeJS.ProcessEnv, registry?: Registry) => (await defaultTiers(resolveEnvironment(env), registry)).map((t) => t.adapter);

describe("environment resolution (seed 003)", () => {
  it("DGENT_DATABASE_URL wins, then the legacy DGENT_POSTGRES_URL, then the KGENTS_* names", () => {
    const all = {
      DGENT_DATABASE_URL: "postgres://a@one/db",
      DGENT_POSTGRES_URL: "postgres://a@two/db",
      KGENTS_DATABASE_URL: "postgresql+asyncpg://a@three/db",
      KGENTS_POSTGRES_URL: "postgres://a@four/db",
    };
    expect(resolveEnvironment(all)).toMatchObject({ url: "postgres://a@one/db", urlSource: "DGENT_DATABASE_URL" });
    expect(resolveEnvironment({ ...all, DGENT_DATABASE_URL: "" })).toMatchObject({ urlSource: "DGENT_POSTGRES_URL" });
    expect(resolveEnvironment({ KGENTS_DATABASE_URL: all.KGENTS_DATABASE_URL, KGENTS_POSTGRES_URL: all.KGENTS_POSTGRES_URL })).toMatchObject({
      url: "postgres://a@three/db",
      urlSource: "KGENTS_DATABASE_URL",
    });
  });

  it("without a URL: SQLite under XDG_DATA_HOME, else ~/.local/share, then memory", async () => {
    expect(await tiers({})).toEqual(["sqlite", "memory"]);
    expect(resolveEnvironment({ XDG_DATA_HOME: "/xdg" }).dataDir).toBe("/xdg/dgent");
    expect(resolveEnvironment({}).dataDir).toBe(join(homedir(), ".local/share/dgent"));
    expect((await defaultTiers(resolveEnvironment({ XDG_DATA_HOME: "/xdg", DGENT_NAMESPACE: "agent" })))[0]).toEqual({
      adapter: "sqlite",
      options: { namespace: "agent", dataDir: "/xdg/dgent" },
    });
  });

  it("a Postgres URL puts Postgres on top, with the profile chosen by host", async () => {
    expect(await tiers({ DGENT_DATABASE_URL: "postgres://u@localhost/db" })).toEqual(["postgres-docker", "sqlite", "memory"]);
    expect(await tiers({ DGENT_DATABASE_URL: "postgres://u@postgres.dgent.svc.cluster.local/db" })).toEqual(["postgres-kind", "sqlite", "memory"]);
    expect(postgresProfileFor("postgres://u@pg.team.svc:5432/x")).toBe("postgres-kind");
  });

  it("DGENT_BACKEND (or KGENTS_DGENT_BACKEND) forces one tier", async () => {
    expect(await tiers({ DGENT_BACKEND: "jsonl" })).toEqual(["jsonl"]);
    expect(await tiers({ KGENTS_DGENT_BACKEND: "MEMORY" })).toEqual(["memory"]);
    expect(await tiers({ DGENT_BACKEND: "postgres", DGENT_DATABASE_URL: "postgres://u@x.svc/db" })).toEqual(["postgres-kind"]);
  });

  it("SQLite URLs, including the seed's driver suffix and ~", async () => {
    expect(sqlitePathFromUrl("sqlite:///var/data/a.db")).toBe("/var/data/a.db");
    expect(sqlitePathFromUrl("sqlite:///~/.local/share/kgents/membrane.db")).toBe(join(homedir(), ".local/share/kgents/membrane.db"));
    const resolved = resolveEnvironment({ KGENTS_DATABASE_URL: "sqlite+aiosqlite:///tmp/m.db" });
    expect((await defaultTiers(resolved))[0]).toEqual({ adapter: "sqlite", options: { path: "/tmp/m.db" } });
  });

  it("an unknown scheme is a coded error that lists the known schemes", async () => {
    await expect(tiers({ DGENT_DATABASE_URL: "mysql://x" })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_ADAPTER", message: expect.stringMatching(/"mysql:".*sqlite:/) });
  });

  it("URL → tier is a registry lookup of the scheme, for every built-in", async () => {
    expect(await tierForUrl("sqlite:///var/a.db", "n")).toMatchObject({ adapter: "sqlite", options: { path: "/var/a.db" } });
    expect(await tierForUrl("jsonl:///var/a.jsonl", "n")).toMatchObject({ adapter: "jsonl", options: { path: "/var/a.jsonl" } });
    expect(await tierForUrl("memory:", "n")).toMatchObject({ adapter: "memory", options: {} });
    expect(await tierForUrl("postgresql+psycopg://u@db.team.svc/x", "n")).toMatchObject({ adapter: "postgres-kind", options: { url: "postgresql://u@db.team.svc/x", namespace: "n" } });
    expect(await tierForUrl("s3://bucket/some/prefix", "n")).toMatchObject({ adapter: "s3", options: { bucket: "bucket", prefix: "some/prefix/", namespace: "n" } });
    expect(await tierForUrl("gs://bucket", "n")).toMatchObject({ adapter: "gcs", options: { bucket: "bucket", namespace: "n" } });
    // The catalogue's lazy entries declare the same schemes as the definitions they load.
    for (const name of defaultRegistry.adapterNames()) {
      const def = await defaultRegistry.adapter(name);
      expect(def.urlSchemes?.length, name).toBeGreaterThan(0);
      for (const scheme of def.urlSchemes ?? []) expect(defaultRegistry.urlSchemes(), `${name} ${scheme}`).toContain(scheme);
    }
  });

  it("a third-party tier with URL schemes gets env selection and migration for free", async () => {
    const made: Record<string, unknown>[] = [];
    const dir = defineAdapter<{ root?: string; namespace?: string }>({
      name: "dir",
      rank: 25,
      urlSchemes: ["dir"],
      fromUrl: (url, context) => ({ root: url.slice("dir://".length), namespace: context.namespace }),
      optionsSchema: { type: "object", properties: { root: { type: "string" }, namespace: { type: "string" } } },
      create: (options) => {
        made.push(options);
        return memoryAdapter();
      },
    });
    const registry = new Registry().registerAdapter(dir);
    for (const name of defaultRegistry.adapterNames()) registry.registerAdapter({ name, load: () => defaultRegistry.adapter(name) });
    // Above SQLite (rank 25 > 20), so the embedded SQLite and memory sit below it.
    expect(await tiers({ DGENT_DATABASE_URL: "dir:///srv/agents", DGENT_NAMESPACE: "a7" }, registry)).toEqual(["dir", "sqlite", "memory"]);
    expect(await tiers({ DGENT_BACKEND: "dir", DGENT_NAMESPACE: "a7" }, registry)).toEqual(["dir"]);
    const tier = await adapterForUrl("dir:///srv/agents", "a7", registry);
    expect(tier.name).toBe("memory");
    expect(made.at(-1)).toEqual({ root: "/srv/agents", namespace: "a7" });
  });

  it("defineAdapter refuses URL schemes without fromUrl, and malformed schemes", () => {
    const base = { name: "x", rank: 1, create: () => memoryAdapter() };
    expect(() => defineAdapter({ ...base, urlSchemes: ["x"] })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    expect(() => defineAdapter({ ...base, urlSchemes: ["x:"], fromUrl: () => ({}) })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
  });
});
