import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as Semver from "semver";
import { lazyRequire } from "../../core/lazy.js";

/** Loaded when a config names modules. */
const semverModule = lazyRequire<typeof Semver>("semver");
import { isDgentError } from "../../core/errors.js";
import { Registry, type AdapterDefinition, type PluginDefinition } from "../../core/registry.js";
import { configProblem } from "./problem.js";
import type { ConfigSource } from "./source.js";
import { dgentVersion } from "./version.js";

/** The export a module declares the dgent versions it supports with (a semver range). */
export const RANGE_EXPORT = "dgentVersions";

/** A third-party module a config file loaded. */
export interface LoadedModule {
  /** As written in the config file. */
  readonly specifier: string;
  /** The file that was imported. */
  readonly file: string;
  /** The dgent versions it supports, and where that was declared. */
  readonly range: string;
  readonly rangeFrom: "export" | "package.json";
  readonly adapters: readonly string[];
  readonly plugins: readonly string[];
}

/** Names a config file can use: the base registry's and what its modules add. */
export interface ComposedRegistry {
  readonly registry: Registry;
  readonly modules: readonly LoadedModule[];
  /** Where each name comes from: `"built in"` or the module's specifier. */
  readonly origins: ReadonlyMap<string, string>;
}

/**
 * A fresh registry layered on `base` (every name of `base` is delegated to it, so loading a config
 * twice, or two configs, never collides), then each module's definitions.
 * A module that cannot be found or throws on import is `DGENT_MODULE_LOAD`; one whose declared
 * range excludes this dgent is `DGENT_VERSION_MISMATCH`; a name that is already taken is
 * `DGENT_DUPLICATE_NAME`.
 */
export async function composeRegistry(source: ConfigSource, specifiers: readonly string[], dir: string, base: Registry): Promise<ComposedRegistry> {
  const registry = new Registry();
  const origins = new Map<string, string>();
  for (const name of base.adapterNames()) {
    registry.registerAdapter({ name, load: () => base.adapter(name) });
    origins.set(`adapter:${name}`, "built in");
  }
  for (const name of base.pluginNames()) {
    registry.registerPlugin({ name, load: () => base.plugin(name) });
    origins.set(`plugin:${name}`, "built in");
  }

  const modules: LoadedModule[] = [];
  const seen = new Map<string, number>();
  for (const [index, specifier] of specifiers.entries()) {
    const path = ["modules", index];
    const file = locateModule(specifier, dir);
    if (file === null) {
      throw configProblem("DGENT_MODULE_LOAD", source, path, `cannot find the module "${specifier}": ${isPathSpecifier(specifier) ? `no file at ${resolve(dir, specifier)}` : `no package of that name is installed where the config file is (${dir}) or where dgent is`}`, {
        details: { module: specifier },
      });
    }
    const earlier = seen.get(file);
    if (earlier !== undefined) {
      throw configProblem("DGENT_DUPLICATE_NAME", source, path, `the module "${specifier}" is already listed at modules[${earlier}]`, { details: { module: specifier } });
    }
    seen.set(file, index);

    let namespace: Record<string, unknown>;
    try {
      namespace = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      const reason = error instanceof Error ? `${error.name === "Error" ? "" : `${error.name}: `}${error.message}` : String(error);
      const needsDgent = /Cannot find package 'dgent'/.test(reason)
        ? " (a module imports dgent as its peer dependency: install dgent in the project the module sits in)"
        : "";
      throw configProblem("DGENT_MODULE_LOAD", source, path, `the module "${specifier}" failed to load: ${reason}${needsDgent}`, { cause: error, details: { module: specifier, file } });
    }

    const declared = typeof namespace[RANGE_EXPORT] === "string" ? (namespace[RANGE_EXPORT] as string) : null;
    const peer = declared === null ? peerRange(file) : null;
    const range = declared ?? peer;
    if (range === null) {
      throw configProblem(
        "DGENT_MODULE_LOAD",
        source,
        path,
        `the module "${specifier}" does not declare which dgent versions it supports: export const ${RANGE_EXPORT} = "^0.1.0", or set peerDependencies.dgent in its package.json`,
        { details: { module: specifier, file } },
      );
    }
    const semver = semverModule();
    if (semver.validRange(range) === null) {
      throw configProblem("DGENT_MODULE_LOAD", source, path, `the module "${specifier}" declares ${JSON.stringify(range)} as its dgent versions, which is not a semver range`, {
        details: { module: specifier, range },
      });
    }
    const version = dgentVersion();
    if (!semver.satisfies(version, range, { includePrerelease: true })) {
      throw configProblem("DGENT_VERSION_MISMATCH", source, path, `the module "${specifier}" supports dgent ${range}; this is dgent ${version}. Install a version of the module made for dgent ${version}, or a dgent in ${range}`, {
        details: { module: specifier, range, version },
      });
    }

    const definitions = [...new Set(Object.values(namespace).filter(isDefinition))];
    if (definitions.length === 0) {
      throw configProblem("DGENT_MODULE_LOAD", source, path, `the module "${specifier}" exports no adapter or plugin (export what defineAdapter() or definePlugin() returns)`, {
        details: { module: specifier, file },
      });
    }
    const adapters: string[] = [];
    const plugins: string[] = [];
    for (const def of definitions) {
      const key = `${def.kind}:${def.name}`;
      const owner = origins.get(key);
      if (owner !== undefined) {
        throw configProblem(
          "DGENT_DUPLICATE_NAME",
          source,
          path,
          `the module "${specifier}" exports ${def.kind === "adapter" ? "an adapter" : "a plugin"} named "${def.name}", which ${owner === "built in" ? "dgent already has" : `the module "${owner}" already exports`}; rename one of them`,
          { details: { module: specifier, name: def.name, kind: def.kind } },
        );
      }
      try {
        if (def.kind === "adapter") registry.registerAdapter(def as AdapterDefinition<never>);
        else registry.registerPlugin(def as PluginDefinition<never>);
      } catch (error) {
        if (!isDgentError(error)) throw error;
        throw configProblem(error.code, source, path, `the module "${specifier}": ${error.message}`, { cause: error });
      }
      origins.set(key, specifier);
      (def.kind === "adapter" ? adapters : plugins).push(def.name);
    }
    modules.push({ specifier, file, range, rangeFrom: declared !== null ? "export" : "package.json", adapters, plugins });
  }
  return { registry, modules, origins };
}

function isDefinition(value: unknown): value is AdapterDefinition<never> | PluginDefinition<never> {
  if (value === null || typeof value !== "object" || !Object.isFrozen(value)) return false;
  const v = value as { kind?: unknown; name?: unknown; create?: unknown; apply?: unknown };
  return typeof v.name === "string" && ((v.kind === "adapter" && typeof v.create === "function") || (v.kind === "plugin" && typeof v.apply === "function"));
}

function isPathSpecifier(specifier: string): boolean {
  return specifier.startsWith("./") || specifier.startsWith("../") || isAbsolute(specifier) || specifier.startsWith("file:");
}

/** A path relative to the config file, or a package installed near it (else near dgent). */
function locateModule(specifier: string, dir: string): string | null {
  if (isPathSpecifier(specifier)) {
    const file = specifier.startsWith("file:") ? new URL(specifier).pathname : resolve(dir, specifier);
    if (existsSync(file) && statSync(file).isFile()) return file;
    if (existsSync(file) && statSync(file).isDirectory()) return packageEntry(file, ".");
    return null;
  }
  const m = /^((?:@[^/]+\/)?[^/]+)(\/.*)?$/.exec(specifier);
  if (!m) return null;
  const [, name, sub] = m as unknown as [string, string, string | undefined];
  for (const start of [dir, dirname(new URL(import.meta.url).pathname)]) {
    for (let at = start; ; at = dirname(at)) {
      const root = join(at, "node_modules", name);
      if (existsSync(join(root, "package.json"))) return packageEntry(root, sub ? `.${sub}` : ".");
      if (dirname(at) === at) break;
    }
  }
  return null;
}

/** A package's entry for a subpath, by its `exports` (conditions `import`, `node`, `default`) or `main`. */
function packageEntry(root: string, subpath: string): string | null {
  let pkg: { exports?: unknown; main?: string };
  try {
    pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as typeof pkg;
  } catch {
    pkg = {};
  }
  const target = (value: unknown): string | null => {
    if (typeof value === "string") return value;
    if (Array.isArray(value)) {
      for (const v of value) {
        const t = target(v);
        if (t) return t;
      }
      return null;
    }
    if (value && typeof value === "object") {
      for (const condition of ["import", "node", "default"]) {
        if (condition in value) {
          const t = target((value as Record<string, unknown>)[condition]);
          if (t) return t;
        }
      }
    }
    return null;
  };
  if (pkg.exports !== undefined) {
    const exports = pkg.exports;
    const isMap = exports !== null && typeof exports === "object" && !Array.isArray(exports) && Object.keys(exports).some((k) => k.startsWith("."));
    const entry = isMap ? (exports as Record<string, unknown>)[subpath] : subpath === "." ? exports : undefined;
    const t = target(entry);
    return t ? join(root, t) : null;
  }
  const file = join(root, subpath === "." ? (pkg.main ?? "index.js") : subpath);
  return existsSync(file) ? file : null;
}

/** `peerDependencies.dgent` of the package.json nearest to a module file. */
function peerRange(file: string): string | null {
  for (let at = dirname(file); ; at = dirname(at)) {
    const pj = join(at, "package.json");
    if (existsSync(pj)) {
      try {
        const pkg = JSON.parse(readFileSync(pj, "utf8")) as { name?: string; peerDependencies?: Record<string, string> };
        if (pkg.name === "dgent") return null; // inside dgent itself: no third-party declaration
        return pkg.peerDependencies?.dgent ?? null;
      } catch {
        return null;
      }
    }
    if (dirname(at) === at) return null;
  }
}
