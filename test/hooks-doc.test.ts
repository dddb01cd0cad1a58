import { readFileSync } from "node:fs";
import * as tapable from "tapable";
import { describe, expect, it } from "vitest";
import { createStoreHooks, HOOK_NAMES } from "../core/hooks.js";

describe("core/HOOKS.md and core/hooks.ts", () => {
  it("document exactly the declared hooks with their tapable types", () => {
    const doc = readFileSync(new URL("../core/HOOKS.md", import.meta.url), "utf8");
    const rows = new Map<string, string>();
    for (const line of doc.split("\n")) {
      const m = /^\| `(\w+)` \| `(\w+)` \|/.exec(line);
      if (m) rows.set(m[1] as string, m[2] as string);
    }
    const hooks = createStoreHooks();
    expect([...rows.keys()].sort()).toEqual([...HOOK_NAMES].sort());
    for (const name of HOOK_NAMES) expect(rows.get(name), name).toBe(hooks[name].constructor.name);
  });

  it("are tapable's own classes (core/hooks.ts loads them file by file, not through tapable's index)", () => {
    const hooks = createStoreHooks();
    const classes = tapable as unknown as Record<string, unknown>;
    for (const name of HOOK_NAMES) {
      const kind = hooks[name].constructor.name;
      expect(classes[kind], kind).toBeDefined();
      // tapable's hook kinds are factory functions that set `constructor` on what they make.
      expect(hooks[name].constructor, name).toBe(classes[kind]);
    }
  });

  it("the hooks object is frozen", () => {
    const hooks = createStoreHooks() as unknown as Record<string, unknown>;
    expect(Object.isFrozen(hooks)).toBe(true);
    expect(() => {
      hooks.beforePut = null;
    }).toThrow();
  });
});
