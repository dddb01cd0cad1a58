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
