import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { allCommands } from "../../cli/commands.js";
import { createStore, contentText, type Datum } from "../../compose/index.js";
import { DATA_PATHS, invokePath, knownPaths, parsePath } from "./index.js";

describe("the self.data.* paths", () => {
  it("put, get, list, chain, query, count, children, refs and backend run through one table", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const ctx = { store };
    const a = (await invokePath("self.data.put", ["hello", { id: "a", metadata: { role: "user" } }], ctx)) as string;
    const b = (await invokePath("self.data.put", ["world", { id: "b", causalParent: a }], ctx)) as string;
    expect(contentText((await invokePath(`self.data.get[${a}]`, [], ctx)) as Datum)).toBe("hello");
    expect(((await invokePath("self.data.chain", [b], ctx)) as Datum[]).map((d) => d.id)).toEqual(["a", "b"]);
    expect(((await invokePath("self.data.chain", [b, { tail: 1 }], ctx)) as Datum[]).map((d) => d.id)).toEqual(["b"]);
    expect(await invokePath("self.data.count", [{ where: { role: "user" } }], ctx)).toBe(1);
    expect(((await invokePath("self.data.children", [a, { select: "ids" }], ctx)) as { items: string[] }).items).toEqual(["b"]);
    expect(((await invokePath("self.data.list", [], ctx)) as Datum[]).length).toBe(2);
    await invokePath("self.data.ref.set", ["head", b], ctx);
    expect(await invokePath("self.data.ref.get", ["head"], ctx)).toMatchObject({ target: "b", version: 1 });
    expect(await invokePath("self.data.backend", [], ctx)).toMatchObject({ landing: "memory" });
    expect(await invokePath("self.data.delete", ["a"], ctx)).toBe(true);
    await store.close();
  });

  it("an unknown path names the nearest one; wrong arguments are coded errors", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    await expect(invokePath("self.data.chian", ["x"], { store })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_PATH", details: { nearest: "self.data.chain" } });
    await expect(invokePath("self.data.table.users.get", ["1"], { store })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_PATH" });
    await expect(invokePath("self.data.get", [], { store })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS", details: { path: "self.data.get" } });
    await expect(invokePath("self.data.get", [42], { store })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await expect(invokePath("self.data.upgrade", ["extra"], { store })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
    await store.close();
  });

  it("tables of the bridge appear as self.data.table.<name>.<op>", async () => {
    const store = createStore({ tiers: [memoryAdapter()] });
    const users = createStore({ tiers: [memoryAdapter()] });
    await users.put({ id: "users/1", content: new TextEncoder().encode("{}"), createdAt: 1, causalParent: null, metadata: { source: "table:users" } });
    expect(knownPaths(["users"])).toContain("self.data.table.users.get");
    expect(((await invokePath("self.data.table.users.get", ["users/1"], { store, tables: { users } })) as Datum).metadata).toEqual({ source: "table:users" });
    expect(await invokePath("self.data.table.users.count", [], { store, tables: { users } })).toBe(1);
    await expect(invokePath("self.data.table.users.delete", ["users/1"], { store, tables: { users } })).rejects.toMatchObject({ code: "DGENT_UNKNOWN_PATH" });
  });

  it("the seed's bracket form parses", () => {
    expect(parsePath("self.data.get[abc]")).toEqual({ path: "self.data.get", args: ["abc"] });
    expect(parsePath("self.data.list")).toEqual({ path: "self.data.list", args: [] });
  });

  it("every path's CLI command exists, and the CLI README names the path next to its command", async () => {
    const { readFileSync } = await import("node:fs");
    const readme = readFileSync(new URL("../../cli/README.md", import.meta.url), "utf8");
    const COMMANDS = await allCommands();
    for (const p of DATA_PATHS) {
      const [name, sub] = p.cli.split(" ");
      const command = COMMANDS[name as string];
      expect(command, `dgent ${p.cli} for ${p.path}`).toBeDefined();
      if (sub) expect(command?.usage, `dgent ${p.cli}`).toContain(sub);
    }
    for (const seed of ["put", "get", "delete", "list", "chain", "upgrade", "backend"]) expect(readme).toContain(`\`self.data.${seed}\``);
  });
});

describe("dgent path", () => {
  it("runs a path as a process, with JSON arguments, and refuses an unknown one naming the nearest", async () => {
    const { spawnSync } = await import("node:child_process");
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const bin = new URL("../../dist/cli/main.js", import.meta.url).pathname;
    const home = mkdtempSync(join(tmpdir(), "dgent-path-"));
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, "-n", "paths", ...args], { env: { ...process.env, XDG_DATA_HOME: home, DGENT_CONFIG: "" }, encoding: "utf8" });
    try {
      const put = run("path", "self.data.put", "hello", '{"id":"p1","metadata":{"role":"user"}}');
      expect(put.stderr).toBe("");
      expect(JSON.parse(put.stdout)).toBe("p1");
      expect(JSON.parse(run("path", "self.data.get[p1]").stdout)).toMatchObject({ id: "p1", content: "hello", metadata: { role: "user" } });
      expect(JSON.parse(run("path", "self.data.count", '{"where":{"role":"user"}}').stdout)).toBe(1);
      const bad = run("path", "self.data.chian", "p1");
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toContain("DGENT_UNKNOWN_PATH");
      expect(bad.stderr).toContain("self.data.chain");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
