import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance, type Target } from "../../testing/index.js";
import { assertBuilt, REDIS_CHILD_FIXTURE, startRedis, type RedisServer } from "../../test/harness/redis.js";
import { redisAdapter, type RedisAdapter } from "./index.js";

// One throwaway server for this file, with an append-only file (so the persistence suite runs);
// each kit instance gets its own namespace, which keeps its keys apart.
let server: RedisServer;
beforeAll(async () => {
  assertBuilt();
  server = await startRedis({ persistence: true });
});
afterAll(async () => {
  await server?.close();
});

const namespaceOf = (target: Target): string => (target as RedisAdapter).namespace;
const fresh = () => `kit-${randomBytes(5).toString("hex")}`;

runConformance(
  {
    name: "redis",
    create: () => redisAdapter({ url: server.url, namespace: fresh() }),
    reopen: (previous) => redisAdapter({ url: server.url, namespace: namespaceOf(previous) }),
    // A port nobody listens on: open() fails with DGENT_UNAVAILABLE, probe() resolves false.
    dead: () => redisAdapter({ url: "redis://127.0.0.1:9", namespace: fresh(), connectTimeoutMs: 1_000, probeTimeoutMs: 500 }),
    child: {
      module: REDIS_CHILD_FIXTURE,
      args: (instance) => ({ url: server.url, namespace: namespaceOf(instance) }),
    },
  },
  { describe, it, beforeAll, afterAll },
  // Three writer processes rather than four: the same checks, a smaller share of the suite's time.
  { processes: 3 },
);

// The same kit's expiry suite with native expiry forced on (the kit's fake clock would leave it
// off under "auto"): the clock starts in 2100, so every key carries a PXAT that Redis keeps until
// then, and the store's view decides what is expired; the PXAT bookkeeping (`x`, `e`) must not
// change any answer, including a put over an expired id and the sweeper's deletes.
runConformance(
  {
    name: "redis (nativeExpiry: true)",
    create: () => redisAdapter({ url: server.url, namespace: fresh(), nativeExpiry: true }),
    reopen: (previous) => redisAdapter({ url: server.url, namespace: namespaceOf(previous), nativeExpiry: true }),
  },
  { describe, it, beforeAll, afterAll },
  { only: ["expiry", "put", "delete", "transactions"] },
);
