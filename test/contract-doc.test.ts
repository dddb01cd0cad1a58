import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Lifecycle } from "../core/lifecycle.js";
import type { Adapter, AdapterEvents, AdapterStats, Capabilities } from "../core/protocol.js";

// CONTRIBUTING.md writes the adapter contract out member by member; these tests keep it in step
// with the types in core/protocol.ts and with core/HOOKS.md.
const contributing = readFileSync(new URL("../CONTRIBUTING.md", import.meta.url), "utf8");
const protocol = readFileSync(new URL("../core/protocol.ts", import.meta.url), "utf8");
const hooksDoc = readFileSync(new URL("../core/HOOKS.md", import.meta.url), "utf8");

/** The member names of `export interface <name> { … }` in core/protocol.ts, `?` kept for optional ones. */
function members(name: string): string[] {
  const start = protocol.indexOf(`export interface ${name} {`);
  expect(start, name).toBeGreaterThanOrEqual(0);
  const body = protocol.slice(start, protocol.indexOf("\n}", start));
  return [...body.matchAll(/^ {2}(?:readonly )?(\w+)(\?)?[(:]/gm)].map((m) => `${m[1]}${m[2] ?? ""}`);
}

/** The first-column names of the table that follows `heading` in CONTRIBUTING.md. */
function tableAfter(heading: string): string[] {
  const start = contributing.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const rows: string[] = [];
  for (const line of contributing.slice(start).split("\n").slice(1)) {
    if (rows.length > 0 && !line.startsWith("|")) break;
    const m = /^\| `([\w?]+)` \|/.exec(line);
    if (m) rows.push(m[1] as string);
  }
  return rows;
}

describe("the adapter contract in CONTRIBUTING.md", () => {
  it("names every member of Adapter, optional ones with ?", () => {
    expect(tableAfter("**Members of `Adapter`**").sort()).toEqual(members("Adapter").sort());
  });

  it("names every capability", () => {
    expect(tableAfter("**`Capabilities`**").sort()).toEqual(members("Capabilities").map((m) => m.replace("?", "")).sort());
  });

  it("names every adapter event, and HOOKS.md documents the hooks they become", () => {
    expect(tableAfter("**`AdapterContext.events`**").sort()).toEqual(members("AdapterEvents").sort());
    for (const hook of ["evicted", "warning", "externalChange"]) expect(hooksDoc).toMatch(new RegExp(`\\| \`${hook}\` \\| \`SyncHook\``));
  });

  it("documents the resolved list options an adapter receives, as resolveListOptions fills them", async () => {
    const { resolveListOptions } = await import("../core/protocol.js");
    expect(resolveListOptions({})).toEqual({ prefix: "", after: -1, limit: 100 });
    expect(contributing).toMatch(/`prefix` is `""` when the caller gave none/);
    expect(contributing).toMatch(/`after` is `-1`/);
    expect(contributing).toMatch(/`limit` is `100`/);
  });

  it("documents the Lifecycle API that exists", () => {
    const life = new Lifecycle("x") as unknown as Record<string, unknown>;
    for (const method of ["open", "close", "check", "beginOpen", "opened", "beginClose"]) {
      expect(typeof life[method], method).toBe("function");
      expect(contributing, method).toContain(method);
    }
    for (const getter of ["isOpen", "isClosed"]) expect(contributing, getter).toContain(getter);
  });

  it("an adapter written from the tables type-checks as an Adapter (npm run typecheck compiles this)", async () => {
    // Written from the contract alone; `satisfies` makes the compiler hold it to the types.
    const events: AdapterEvents = { evicted: () => undefined, warning: () => undefined, change: () => undefined };
    const capabilities = { persistent: false, multiProcess: false, nativeCausalChain: false, batch: false, scan: false, evicts: false } satisfies Capabilities;
    const stats: AdapterStats = { count: 0, bytes: 0, path: "/tmp/x" };
    const adapter = {
      name: "doc",
      rank: 5,
      capabilities,
      open: async () => undefined,
      close: async () => undefined,
      put: async (d) => d.id,
      get: async () => null,
      delete: async () => false,
      list: async () => [],
      causalChain: async () => [],
      putMany: async (ds) => ds.map((d) => d.id),
      scan: async function* () {},
      stats: async () => stats,
      probe: async () => true,
    } satisfies Adapter;
    expect(await adapter.probe()).toBe(true);
    expect(events.evicted).toBeTypeOf("function");
  });
});
