import { homedir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defaultTiers, postgresProfileFor, resolveEnvironment, sqlitePathFromUrl } from "../core/index.js";

const tiers = (env: NodeJS.ProcessEnv) => defaultTiers(resolveEnvironment(env)).map((t) => t.adapter);

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

  it("without a URL: SQLite under XDG_DATA_HOME, else ~/.local/share, then memory", () => {
    expect(tiers({})).toEqual(["sqlite", "memory"]);
    expect(resolveEnvironment({ XDG_DATA_HOME: "/xdg" }).dataDir).toBe("/xdg/dgent");
    expect(resolveEnvironment({}).dataDir).toBe(join(homedir(), ".local/share/dgent"));
    expect(defaultTiers(resolveEnvironment({ XDG_DATA_HOME: "/xdg", DGENT_NAMESPACE: "agent" }))[0]).toEqual({
      adapter: "sqlite",
      options: { namespace: "agent", dataDir: "/xdg/dgent" },
    });
  });

  it("a Postgres URL puts Postgres on top, with the profile chosen by host", () => {
    expect(tiers({ DGENT_DATABASE_URL: "postgres://u@localhost/db" })).toEqual(["postgres-docker", "sqlite", "memory"]);
    expect(tiers({ DGENT_DATABASE_URL: "postgres://u@postgres.dgent.svc.cluster.local/db" })).toEqual(["postgres-kind", "sqlite", "memory"]);
    expect(postgresProfileFor("postgres://u@pg.team.svc:5432/x")).toBe("postgres-kind");
  });

  it("DGENT_BACKEND (or KGENTS_DGENT_BACKEND) forces one tier", () => {
    expect(tiers({ DGENT_BACKEND: "jsonl" })).toEqual(["jsonl"]);
    expect(tiers({ KGENTS_DGENT_BACKEND: "MEMORY" })).toEqual(["memory"]);
    expect(tiers({ DGENT_BACKEND: "postgres", DGENT_DATABASE_URL: "postgres://u@x.svc/db" })).toEqual(["postgres-kind"]);
  });

  it("SQLite URLs, including the seed's driver suffix and ~", () => {
    expect(sqlitePathFromUrl("sqlite:///var/data/a.db")).toBe("/var/data/a.db");
    expect(sqlitePathFromUrl("sqlite:///~/.local/share/kgents/membrane.db")).toBe(join(homedir(), ".local/share/kgents/membrane.db"));
    const resolved = resolveEnvironment({ KGENTS_DATABASE_URL: "sqlite+aiosqlite:///tmp/m.db" });
    expect(defaultTiers(resolved)[0]).toEqual({ adapter: "sqlite", options: { path: "/tmp/m.db" } });
  });

  it("an unknown scheme is a coded error", () => {
    expect(() => tiers({ DGENT_DATABASE_URL: "mysql://x" })).toThrow(expect.objectContaining({ code: "DGENT_UNKNOWN_ADAPTER" }));
  });
});
