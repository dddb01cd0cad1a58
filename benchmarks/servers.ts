/**
 * The servers of the networked tiers. From the repository's sources (`npm run bench`, the test
 * suite) they are the test harness's: a throwaway PostgreSQL cluster (`test/harness/postgres.ts`),
 * s3rver with the harness middleware (`test/harness/s3.ts`) and the GCS JSON-API emulator
 * (`test/harness/gcs-emulator.ts`). The harness is loaded by path at run time, never imported
 * statically, so a build of the CLI does not carry test code; from a build (`dgent bench`) only
 * `DGENT_BENCH_POSTGRES_URL` can provide a server, and the other tiers are reported as skipped.
 */
import { fileURLToPath } from "node:url";

/** True when running from the TypeScript sources (vite-node, vitest), where the harness exists. */
export const FROM_SOURCES = import.meta.url.endsWith(".ts");

async function harness(file: string): Promise<Record<string, unknown>> {
  if (!FROM_SOURCES) {
    throw new Error("the local test servers live in the repository's test harness: run `npm run bench` from a checkout");
  }
  const path = fileURLToPath(new URL(`../test/harness/${file}.ts`, import.meta.url));
  return (await import(/* @vite-ignore */ path)) as Record<string, unknown>;
}

export interface PostgresServer {
  readonly url: string;
  /** How the server was had, for the report. */
  readonly origin: string;
  close(): Promise<void>;
}

export async function postgresServer(env: NodeJS.ProcessEnv): Promise<PostgresServer> {
  const given = env.DGENT_BENCH_POSTGRES_URL;
  if (given) return { url: given, origin: "DGENT_BENCH_POSTGRES_URL", close: async () => undefined };
  let h: Record<string, unknown>;
  try {
    h = await harness("postgres");
  } catch (error) {
    throw new Error(`set DGENT_BENCH_POSTGRES_URL=postgres://… to measure a server of yours (${(error as Error).message})`);
  }
  const start = h.startPostgres as () => Promise<{ url: string; owned: boolean; close(): Promise<void> }>;
  const server = await start();
  return {
    url: server.url,
    origin: server.owned
      ? "throwaway cluster of test/harness/postgres.ts (loopback TCP; fsync=off, synchronous_commit=off, full_page_writes=off)"
      : "DGENT_TEST_POSTGRES_URL",
    close: () => server.close(),
  };
}

/**
 * One Postgres server for a whole run, started on first use: the Postgres tier and the queries
 * part share it (a throwaway cluster is an initdb each). The handles `get` gives out do not stop
 * it; `close` does, once, at the end of the run.
 */
export function sharedPostgres(env: NodeJS.ProcessEnv): Shared<PostgresServer> {
  return shared(() => postgresServer(env));
}

/** A server started on first use and shared by a run; `get`'s handles do not stop it, `close` does. */
export interface Shared<T extends { url: string; origin: string; close(): Promise<void> }> {
  get(): Promise<T>;
  close(): Promise<void>;
}

function shared<T extends { url: string; origin: string; close(): Promise<void> }>(start: () => Promise<T>): Shared<T> {
  let started: Promise<T> | null = null;
  return {
    async get() {
      started ??= start();
      const s = await started;
      return { ...s, close: async () => undefined };
    },
    async close() {
      const s = started === null ? null : await started.catch(() => null);
      started = null;
      await s?.close();
    },
  };
}

export interface S3Server {
  readonly clientOptions: {
    endpoint: string;
    region: string;
    forcePathStyle: true;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  createBucket(name: string): Promise<void>;
  stats(): Promise<{ total: number; byOp: Readonly<Record<string, number>> }>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

export async function s3Server(): Promise<S3Server> {
  const h = await harness("s3");
  return (h.startS3 as () => Promise<S3Server>)();
}

export interface GcsServer {
  readonly url: string;
  createBucket(name: string): void;
  stats(): { total: number; byOp: Readonly<Record<string, number>> };
  resetStats(): void;
  stop(): Promise<void>;
}

export async function gcsServer(): Promise<GcsServer> {
  const h = await harness("gcs-emulator");
  return (h.startGcsEmulator as () => Promise<GcsServer>)();
}

export interface RedisServerHandle {
  readonly url: string;
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * One Redis server for a whole run, started on first use: `DGENT_BENCH_REDIS_URL`, else a
 * throwaway redis-server of the test harness (no persistence). The handles `get` gives out do not
 * stop it; `close` does, at the end of the run.
 */
export function sharedRedis(env: NodeJS.ProcessEnv): Shared<RedisServerHandle> {
  return shared(async () => {
    const given = env.DGENT_BENCH_REDIS_URL;
    if (given) return { url: given, origin: "DGENT_BENCH_REDIS_URL", close: async () => undefined };
    const h = await harness("redis");
    const server = await (h.startRedis as () => Promise<{ url: string; stop(): Promise<void> }>)();
    return { url: server.url, origin: "throwaway redis-server of test/harness/redis.ts, no persistence", close: () => server.stop() };
  });
}
