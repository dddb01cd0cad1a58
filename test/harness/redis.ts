/**
 * A real Redis server for tests (DESIGN.md §8). `startRedis()` runs a throwaway `redis-server`
 * (`/usr/bin/redis-server`, or `DGENT_TEST_REDIS_SERVER`) on a free port of 127.0.0.1 with its
 * own temporary directory, and can stop and restart it on the same port and data. Without
 * persistence (the default) it keeps nothing on disk (`save ""`, `appendonly no`); with
 * `persistence: true` it writes an append-only file fsynced every second, as a production Redis
 * that is meant to keep data would. `tls: true` serves TLS only, with a throwaway self-signed
 * certificate. If the server cannot be started, it throws saying why: Redis tests fail, they
 * never skip. The machine's own Redis (127.0.0.1:6379) is never touched.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` (`rediss://` with `tls`). */
  readonly url: string;
  readonly port: number;
  /** The server's working directory (its append-only file lives here with `persistence`). */
  readonly dir: string;
  /** True when the server writes an append-only file (`appendonly yes`, `appendfsync everysec`). */
  readonly persistence: boolean;
  /** The self-signed certificate (PEM; its own CA) when the server speaks TLS, else null. */
  readonly certificate: string | null;
  /** Stops the server (SIGTERM: it saves what its persistence settings say, then exits); the port refuses connections. */
  stop(): Promise<void>;
  /** Kills the server (SIGKILL), as in a crash. */
  kill(): Promise<void>;
  /** Starts the stopped server again on the same port and directory. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
}

export interface StartRedisOptions {
  /** Append-only file, fsynced every second (default false: nothing on disk). */
  readonly persistence?: boolean;
  /** TLS only (no plain port), with a throwaway self-signed certificate for 127.0.0.1. */
  readonly tls?: boolean;
}

function findServer(): string {
  const explicit = process.env.DGENT_TEST_REDIS_SERVER;
  const path = explicit ?? "/usr/bin/redis-server";
  if (!existsSync(path)) {
    throw new Error(
      `cannot start Redis for the tests: ${path} does not exist. Install it (apt-get install redis-server) ` +
        "or set DGENT_TEST_REDIS_SERVER to the redis-server binary.",
    );
  }
  return path;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port` and answers PING (or, for TLS, accepts). */
async function waitReady(port: number, child: ChildProcess, tls: boolean, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} while starting:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.once("error", () => resolve(false));
      socket.once("connect", () => {
        if (tls) {
          socket.destroy();
          resolve(true);
          return;
        }
        socket.write("PING\r\n");
        socket.once("data", (chunk: Buffer) => {
          socket.destroy();
          resolve(chunk.toString().startsWith("+PONG"));
        });
      });
    });
    if (ok) return;
    // Polling a process we started: the server is starting, and there is nothing else to wait on.
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis-server did not answer on port ${port}:\n${log()}`);
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findServer();
  const dir = mkdtempSync(join(tmpdir(), "dgent-redis-"));
  const port = await freePort();
  const persistence = options.persistence === true;
  let certificate: string | null = null;
  const args = [
    "--bind", "127.0.0.1",
    "--protected-mode", "no",
    "--dir", dir,
    "--daemonize", "no",
    "--logfile", "",
    "--loglevel", "warning",
    "--save", "",
    "--appendonly", persistence ? "yes" : "no",
    "--appendfsync", "everysec",
    "--databases", "1",
  ];
  if (options.tls) {
    const cert = join(dir, "server.crt");
    const key = join(dir, "server.key");
    try {
      execFileSync(
        "openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
          "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
        { stdio: "ignore" },
      );
    } catch (error) {
      throw new Error(`cannot make a TLS certificate for the Redis test server (openssl failed): ${(error as Error).message}`);
    }
    certificate = readFileSync(cert, "utf8");
    args.push("--port", "0", "--tls-port", String(port), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "no");
  } else {
    args.push("--port", String(port));
  }

  let child: ChildProcess | null = null;
  let output = "";
  const launch = async () => {
    output = "";
    const c = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    c.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    c.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child = c;
    await waitReady(port, c, options.tls === true, () => output);
  };
  const halt = async (signal: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill(signal);
    await exited;
  };
  await launch();
  const onExit = () => (child as ChildProcess | null)?.kill("SIGKILL");
  process.once("exit", onExit);
  return {
    url: `${options.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    port,
    dir,
    persistence,
    certificate,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    start: async () => {
      if (child) throw new Error("the Redis test server is already running");
      await launch();
    },
    close: async () => {
      await halt("SIGKILL");
      process.off("exit", onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The child fixture (imports the built package). */
export const REDIS_CHILD_FIXTURE = new URL("../fixtures/child-redis.mjs", import.meta.url);

/** Throws unless the package is built: child processes import `dgent/adapters/redis` from dist/. */
export function assertBuilt(): void {
  const dist = new URL("../../dist/adapters/redis/index.js", import.meta.url);
  if (!existsSync(dist)) {
    throw new Error("dist/adapters/redis is missing: child processes import the built package; run `npm run build` first");
  }
}
