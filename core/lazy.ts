import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * A package loaded on first use instead of at import time (`yaml`, `ajv`, `semver`: CommonJS
 * packages that cost tens of milliseconds to load, which a command line or a store that never
 * validates or parses YAML should not pay). The returned function loads it once and returns it.
 */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}

/**
 * A CommonJS package loaded now, with `require` rather than `import`: Node then does not scan its
 * source (and what it re-exports) for named exports, as an `import` of a CommonJS module does
 * (`tapable`, `better-sqlite3`, on every store's start-up path).
 */
export function requireNow<T>(id: string): T {
  return require(id) as T;
}

/**
 * `node:crypto`, loaded when first needed (a new id, a content hash, a journal's token): loading it
 * is a good part of a short command line's time, and `dgent get` needs none of it.
 */
export const nodeCrypto = lazyRequire<typeof import("node:crypto")>("node:crypto");
