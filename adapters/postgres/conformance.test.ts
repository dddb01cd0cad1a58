import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance, type ConformanceTarget, type Target } from "../../testing/index.js";
import { assertBuilt, CHILD_FIXTURE, dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { postgresAdapter, PostgresAdapter, POSTGRES_DOCKER, POSTGRES_KIND, type PostgresOptions, type ProfileName } from "./index.js";

// One throwaway cluster for this file; each kit test gets its own schema.
let server: PostgresServer;
beforeAll(async () => {
  assertBuilt();
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});

function target(profile: ProfileName): ConformanceTarget {
  // The kind profile runs over TLS with the certificate checked (the harness's cluster has one).
  const options = (): PostgresOptions => ({
    url: server.url,
    profile,
    ...(profile === POSTGRES_KIND
      ? { tls: server.certificate ? { mode: "verify-full", ca: server.certificate } : server.tls ? "require" : "off" }
      : {}),
  });
  const schemaOf = (instance: Target) => (instance as PostgresAdapter).schema;
  return {
    name: profile,
    create: () => postgresAdapter({ ...options(), namespace: freshSchema(profile.replace("-", "_")) }),
    reopen: (previous) => postgresAdapter({ ...options(), namespace: schemaOf(previous) }),
    destroy: (instance) => dropSchema(server, schemaOf(instance)),
    child: {
      module: CHILD_FIXTURE,
      args: (instance) => ({ ...options(), namespace: schemaOf(instance) }) as never,
    },
  };
}

runConformance(target(POSTGRES_DOCKER), { describe, it, beforeAll, afterAll });
runConformance(target(POSTGRES_KIND), { describe, it, beforeAll, afterAll });
