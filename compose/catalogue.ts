/**
 * The catalogue of dgent's built-in tiers and plugins: a registry whose entries load their module
 * on first use, so a store imports only the drivers it uses. Config files, the default store,
 * `dgent migrate` and URL lookup (`DGENT_DATABASE_URL`) resolve names here; third-party modules
 * are layered on top of it (see `compose/config/modules.ts`), never into it.
 */
import { Registry } from "../core/registry.js";

/** The registry with dgent's built-in tiers and plugins. */
export const defaultRegistry = new Registry()
  .registerAdapter({ name: "memory", urlSchemes: ["memory"], load: async () => (await import("../adapters/memory/index.js")).memory })
  .registerAdapter({ name: "jsonl", urlSchemes: ["jsonl"], load: async () => (await import("../adapters/jsonl/index.js")).jsonl })
  .registerAdapter({ name: "sqlite", urlSchemes: ["sqlite"], load: async () => (await import("../adapters/sqlite/index.js")).sqlite })
  .registerAdapter({
    name: "postgres-kind",
    urlSchemes: ["postgres", "postgresql"],
    load: async () => (await import("../adapters/postgres/index.js")).postgresKind,
  })
  .registerAdapter({
    name: "postgres-docker",
    urlSchemes: ["postgres", "postgresql"],
    load: async () => (await import("../adapters/postgres/index.js")).postgresDocker,
  })
  .registerAdapter({ name: "redis", urlSchemes: ["redis", "rediss"], load: async () => (await import("../adapters/redis/index.js")).redis })
  .registerAdapter({ name: "s3", urlSchemes: ["s3"], load: async () => (await import("../adapters/s3/index.js")).s3 })
  .registerAdapter({ name: "http", urlSchemes: ["dgent+http", "dgent+https"], load: async () => (await import("../adapters/http/index.js")).http })
  .registerAdapter({ name: "gcs", urlSchemes: ["gs", "gcs"], load: async () => (await import("../adapters/gcs/index.js")).gcs })
  .registerPlugin({ name: "cache", load: async () => (await import("../plugins/cache/index.js")).cache })
  .registerPlugin({ name: "entropy", load: async () => (await import("../plugins/entropy/index.js")).entropy })
  .registerPlugin({ name: "synergy", load: async () => (await import("../plugins/synergy/index.js")).synergy })
  .registerPlugin({ name: "lens", load: async () => (await import("../plugins/lens/index.js")).lens })
  .registerPlugin({ name: "reactive", load: async () => (await import("../plugins/reactive/index.js")).reactive })
  .registerPlugin({ name: "compression", load: async () => (await import("../plugins/compression/index.js")).compression })
  .registerPlugin({ name: "encryption", load: async () => (await import("../plugins/encryption/index.js")).encryption })
  .registerPlugin({ name: "recall", load: async () => (await import("../plugins/recall/index.js")).recall })
  .registerPlugin({ name: "fulltext", load: async () => (await import("../plugins/fulltext/index.js")).fulltext })
  .registerPlugin({ name: "write-behind", load: async () => (await import("../plugins/write-behind/index.js")).writeBehind })
  .registerPlugin({ name: "metrics", load: async () => (await import("../plugins/metrics/index.js")).metrics });
