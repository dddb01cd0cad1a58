import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { resolveConfig } from "../compose/config/index.js";
import { createStore, definePlugin, DgentError, ConflictError, isDgentError } from "../core/index.js";

const root = resolve(new URL("..", import.meta.url).pathname);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !/\.test\./.test(name)) out.push(path);
  }
  return out;
}

/** Every module specifier a file imports or re-exports, statically or with a literal `import()`. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*["']([^"']+)["']/g)) found.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) found.push(m[1] as string);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) found.push(m[1] as string);
  return found;
}

/** The top-level folder a relative import from `file` lands in. */
function folderOf(file: string, specifier: string): string | null {
  if (!specifier.startsWith(".")) return null;
  return relative(root, resolve(file, "..", specifier)).split("/")[0] ?? null;
}

describe("the kernel (core/) knows nothing above it", () => {
  const files = sources(join(root, "core"));

  it("imports nothing from adapters/, plugins/, compose/, cli/, testing/ or benchmarks/", () => {
    const upward: string[] = [];
    for (const file of files) {
      for (const spec of imports(file)) {
        const folder = folderOf(file, spec);
        if (folder !== null && folder !== "core") upward.push(`${relative(root, file)} → ${spec}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("names no built-in tier or plugin in code (ranks are numbers; the catalogue is in compose/)", () => {
    const names = /["'](memory|jsonl|sqlite|postgres-docker|postgres-kind|s3|gcs|cache|entropy|synergy|lens|reactive|compression|write-behind)["']/;
    const hits = files.filter((f) => names.test(readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ""))).map((f) => relative(root, f));
    expect(hits).toEqual([]);
  });

  it("has no file over 420 lines", () => {
    const long = files.map((f) => [relative(root, f), readFileSync(f, "utf8").split("\n").length] as const).filter(([, n]) => n > 420);
    expect(long).toEqual([]);
  });

  it("the import graph of the whole package has no circle", () => {
    const all = ["core", "compose", "adapters", "plugins", "testing", "cli"].flatMap((d) => sources(join(root, d)));
    const edges = new Map<string, string[]>();
    for (const file of all) {
      const to: string[] = [];
      for (const spec of imports(file)) {
        if (!spec.startsWith(".")) continue;
        const target = resolve(file, "..", spec).replace(/\.js$/, ".ts");
        if (all.includes(target)) to.push(target);
      }
      edges.set(file, to);
    }
    // Tarjan's strongly connected components: any component of more than one file is a circle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const circles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of edges.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          on.delete(w);
          scc.push(relative(root, w));
        } while (w !== v);
        if (scc.length > 1) circles.push(scc.sort());
      }
    };
    for (const v of edges.keys()) if (!idx.has(v)) visit(v);
    expect(circles).toEqual([]);
  });

  it("layers: compose/ may use adapters and plugins; adapters and plugins never use compose/ or cli/; cli/ never uses benchmarks/", () => {
    const wrong: string[] = [];
    const rules: Record<string, readonly string[]> = {
      adapters: ["compose", "cli", "plugins", "benchmarks", "testing"],
      plugins: ["compose", "cli", "adapters", "benchmarks", "testing"],
      compose: ["cli", "benchmarks", "testing"],
      cli: ["benchmarks"],
      testing: ["compose", "cli", "benchmarks"],
    };
    for (const [dir, banned] of Object.entries(rules)) {
      for (const file of sources(join(root, dir))) {
        for (const spec of imports(file)) {
          const folder = folderOf(file, spec);
          if (folder !== null && banned.includes(folder)) wrong.push(`${relative(root, file)} → ${spec}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe("one composition path", () => {
  it("createStore and config files order tiers the same way: by rank, most durable first", async () => {
    const store = createStore({ tiers: [memoryAdapter(), sqliteAdapter({ path: ":memory:" })] });
    expect(store.tiers.map((t) => t.name)).toEqual(["sqlite", "memory"]);
    const resolved = await resolveConfig({ version: 1, tiers: ["memory", { adapter: "sqlite", options: { path: ":memory:" } }] });
    expect(resolved.tiers.map((t) => t.adapter)).toEqual(["sqlite", "memory"]);
    expect(resolved.landing).toBe("sqlite");
  });

  it("createStore and config files refuse a missing dependency and a cycle with the same code", async () => {
    const a = definePlugin({ name: "a", dependsOn: ["b"], apply: () => undefined });
    const b = definePlugin({ name: "b", dependsOn: ["a"], apply: () => undefined });
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [a] })).toThrow(expect.objectContaining({ code: "DGENT_PLUGIN_DEPENDENCY", details: expect.objectContaining({ index: 0, missing: "b" }) }));
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [a, b] })).toThrow(expect.objectContaining({ code: "DGENT_PLUGIN_DEPENDENCY", details: expect.objectContaining({ cycle: ["a", "b", "a"] }) }));
    expect(() => createStore({ tiers: [memoryAdapter()], plugins: [a, a] })).toThrow(expect.objectContaining({ code: "DGENT_DUPLICATE_NAME" }));
  });

  it("plugins apply dependencies first, otherwise in the order given", async () => {
    const order: string[] = [];
    const make = (name: string, dependsOn: string[] = []) => definePlugin({ name, dependsOn, apply: () => void order.push(name) });
    const store = createStore({ tiers: [memoryAdapter()], plugins: [make("x", ["z"]), make("y"), make("z")] });
    await store.open();
    expect(order).toEqual(["z", "x", "y"]);
    await store.close();
  });
});

describe("error identity across two copies of dgent", () => {
  it("instanceof recognises a DgentError made by another copy, by brand and kind", () => {
    // What a second copy of the module makes: an Error with the registry brand and a kind.
    const foreign = Object.assign(new Error("x"), { [Symbol.for("dgent.error")]: true, code: "DGENT_CONFLICT", kind: "conflict", unit: "dir", retryable: false, details: {} });
    expect(foreign instanceof DgentError).toBe(true);
    expect(foreign instanceof ConflictError).toBe(true);
    expect(isDgentError(foreign)).toBe(true);
    expect(new Error("plain") instanceof DgentError).toBe(false);
    expect(Object.assign(new Error("y"), { [Symbol.for("dgent.error")]: true, kind: "validation" }) instanceof ConflictError).toBe(false);
  });
});

describe("Lifecycle", () => {
  it("a second concurrent open() waits for the first instead of connecting again; a failed connect can be retried", async () => {
    const { Lifecycle } = await import("../core/lifecycle.js");
    const life = new Lifecycle("t");
    let connects = 0;
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const connect = async () => {
      connects++;
      await gate;
    };
    const a = life.open(connect);
    const b = life.open(connect);
    expect(life.isOpen).toBe(false);
    finish();
    await Promise.all([a, b]);
    expect(connects).toBe(1);
    expect(life.isOpen).toBe(true);
    expect(() => life.check()).not.toThrow();

    const failing = new Lifecycle("f");
    await expect(failing.open(() => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(() => failing.check()).toThrow(expect.objectContaining({ code: "DGENT_NOT_OPEN" }));
    await failing.open(() => undefined);
    expect(failing.isOpen).toBe(true);
  });

  it("close() during open waits for it, releases once, and later calls fail with DGENT_CLOSED", async () => {
    const { Lifecycle } = await import("../core/lifecycle.js");
    const life = new Lifecycle("t");
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    let released = 0;
    const opening = life.open(() => gate);
    const closing = Promise.all([life.close(() => void released++), life.close(() => void released++)]);
    finish();
    await opening;
    await closing;
    expect(released).toBe(1);
    expect(life.isOpen).toBe(false);
    expect(() => life.check()).toThrow(expect.objectContaining({ code: "DGENT_CLOSED" }));
    await expect(life.open(() => undefined)).rejects.toMatchObject({ code: "DGENT_CLOSED" });
    // Closing what never opened releases nothing.
    const never = new Lifecycle("n");
    await never.close(() => void released++);
    expect(released).toBe(1);
  });
});

describe("the two doors", () => {
  // Every name `dgent` exported before `dgent/extend` existed: code written against them keeps working.
  const BEFORE = "BackendError BudgetError CONFIG_FILE_NAMES ConfigError ConflictError DEFAULT_LIST_LIMIT DEFAULT_MAX_CHAIN_DEPTH DEFAULT_NAMESPACE DgentError ERROR_CODES HOOK_NAMES Lifecycle LifecycleError MAX_ID_BYTES MAX_LIST_LIMIT OrderedIndex RANKS Registry SILENT_EVENTS Store UnavailableError ValidationError adapterForUrl assertDatum assertId assertMetadata assertNamespace byDurability checkOptions cloneDatum cloneDatums compareIds compareNewestFirst configSchema conflictError contentId contentText copyBytes createStore createStoreFromConfig datumHash defaultDataDir defaultRegistry defaultStoreOptions defaultTiers defineAdapter definePlugin dgentError dgentVersion ensureWritableDir findConfig formatAjvErrors instantiateAdapter isDgentError isOutage isStore loadConfig makeDatum migrate nearest openDefaultStore postgresProfileFor rankLabel redactConfig redactPassword resolveConfig resolveEnvironment resolveListOptions sameBytes sameMetadata sameValue sqlitePathFromUrl uuidv7 uuidv7Time walkCausalChain walkCausalChainSync wrapError".split(" ");

  it("dgent still exports every value it exported before", async () => {
    const app = (await import("../compose/index.js")) as Record<string, unknown>;
    expect(BEFORE.filter((name) => !(name in app))).toEqual([]);
  });

  it("dgent/extend holds the authors' API and nothing of the composition layer", async () => {
    const extend = (await import("../core/index.js")) as Record<string, unknown>;
    for (const name of ["defineAdapter", "definePlugin", "Lifecycle", "sameValue", "wrapError", "conflictError", "cycleError", "depthError", "importOptional", "isNetworkErrorCode", "localPathFromUrl", "createStore", "Registry", "DgentError"]) {
      expect(extend, name).toHaveProperty(name);
    }
    for (const name of ["defaultRegistry", "openDefaultStore", "createStoreFromConfig", "migrate", "RANKS", "memoryAdapter", "sqliteAdapter"]) {
      expect(extend, name).not.toHaveProperty(name);
    }
  });

  it("the package exports map has both doors", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, { import?: string }> };
    expect(pkg.exports["."]?.import).toBe("./dist/compose/index.js");
    expect(pkg.exports["./extend"]?.import).toBe("./dist/core/index.js");
  });
});
