/**
 * Imports a peer library from benchmarks/peers/node_modules: a dynamic import resolves from the
 * module that makes it, so this file is what benchmarks/peers.ts and benchmarks/redis.mjs call.
 * The peers live here rather than in the root manifest (see package.json), and not in
 * benchmarks/node_modules, where their own copy of `pg` would shadow the root one for every
 * benchmark file.
 */
export const load = (specifier) => import(specifier);
