/**
 * A real PostgreSQL server for tests (DESIGN.md §8). `startPostgres()` runs a throwaway cluster
 * from the installed binaries (`/usr/lib/postgresql/<v>/bin`, or `DGENT_TEST_PG_BIN`), as the
 * `postgres` user when the tests run as root, on a free port, with its socket in a private temp
 * dir; or, when `DGENT_TEST_POSTGRES_URL` is set and `owned` is not required, it uses that
 * server. Test files isolate themselves by schema (`freshSchema`). Fault tests ask for an owned
 * cluster and `stop()` / `start()` it. If no server can be had, it throws with a message saying
 * why and what to do: Postgres tests fail, they never skip.
 *
 * Owned clusters run with `fsync=off`, `synchronous_commit=off` and `full_page_writes=off` (fast,
 * and a test server has nothing to keep), unless `durable: true` asks for a cluster with all three
 * on, as in production, for tests of what survives a crash (`crash()`, then `start()`).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export interface PostgresServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` (password auth over TCP). */
  readonly url: string;
  readonly password: string;
  readonly port: number;
  /** True when this harness started the cluster (it can then stop and restart it). */
  readonly owned: boolean;
  /** True when the cluster runs with fsync, synchronous_commit and full_page_writes on (`durable: true`). */
  readonly durable: boolean;
  /** True when the server accepts TLS (owned clusters do, with a throwaway self-signed certificate). */
  readonly tls: boolean;
  /** The server's self-signed certificate (PEM; it is its own CA), when the harness made one. */
  readonly certificate: string | null;
  /** A URL for another database of the same server. */
  urlFor(database: string): string;
  /** Runs SQL as the superuser on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<pg.QueryResult<R>>;
  /** Fast shutdown (active connections get 57P01), then the port refuses connections. Owned only. */
  stop(): Promise<void>;
  /**
   * Immediate shutdown (`pg_ctl stop -m immediate`: every server process quits at once, no
   * checkpoint, as in a crash); the next `start()` recovers by replaying the WAL. Owned only.
   */
  crash(): Promise<void>;
  /** Starts the stopped cluster again on the same port and data. Owned only. */
  start(): Promise<void>;
  /** Stops the server and removes its files (owned), or does nothing (external). */
  close(): Promise<void>;
}

/** A random schema name for one test or file, e.g. `t_conformance_3f9a1c2b7d`. */
export function freshSchema(label = "t"): string {
  return `${label.replace(/[^a-z0-9_]/gi, "_").slice(0, 30)}_${randomBytes(5).toString("hex")}`;
}

export interface StartOptions {
  /** A cluster of its own, even when DGENT_TEST_POSTGRES_URL names a server (needed to stop or crash it). */
  readonly owned?: boolean;
  /** fsync, synchronous_commit and full_page_writes on (implies `owned`). */
  readonly durable?: boolean;
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
  const external = process.env.DGENT_TEST_POSTGRES_URL;
  if (external && !options.owned && !options.durable) return externalServer(external);
  return ownedServer(options.durable === true);
}

async function externalServer(url: string): Promise<PostgresServer> {
  try {
    await queryOnce(url, "SELECT 1");
  } catch (error) {
    throw new Error(`DGENT_TEST_POSTGRES_URL is set but the server does not answer: ${(error as Error).message}`);
  }
  const u = new URL(url);
  const notOwned = async () => {
    throw new Error("this test needs to stop and restart the server; it cannot do that to DGENT_TEST_POSTGRES_URL");
  };
  return {
    url,
    password: decodeURIComponent(u.password),
    port: Number(u.port || 5432),
    owned: false,
    durable: false,
    tls: process.env.DGENT_TEST_POSTGRES_TLS === "1",
    certificate: null,
    urlFor: (database) => withDatabase(url, database),
    query: (sql, params, database) => queryOnce(database ? withDatabase(url, database) : url, sql, params),
    stop: notOwned,
    crash: notOwned,
    start: notOwned,
    close: async () => undefined,
  };
}

function findBinaries(): string {
  const explicit = process.env.DGENT_TEST_PG_BIN;
  if (explicit) {
    if (!existsSync(join(explicit, "postgres"))) throw new Error(`DGENT_TEST_PG_BIN=${explicit} holds no postgres binary`);
    return explicit;
  }
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")) && existsSync(join(root, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      "cannot start PostgreSQL for the tests: no initdb/postgres under /usr/lib/postgresql/*/bin. " +
        "Install the server (apt-get install postgresql), set DGENT_TEST_PG_BIN to its bin directory, " +
        "or set DGENT_TEST_POSTGRES_URL to a server the tests may use.",
    );
  }
  return join(root, versions[0] as string, "bin");
}

/** uid/gid to run the server as: the `postgres` user when we are root (initdb refuses root). */
function identity(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error("cannot start PostgreSQL for the tests: running as root and there is no 'postgres' user to run the server as");
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], id: { uid: number; gid: number } | null, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...(id ?? {}), cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout?.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr?.on("data", (c: Buffer) => (out += c.toString()));
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}:\n${out}`))));
  });
}

const live = new Set<ChildProcess>();
let exitHook = false;

async function ownedServer(durable: boolean): Promise<PostgresServer> {
  const bin = findBinaries();
  const id = identity();
  const root = mkdtempSync(join(tmpdir(), "dgent-pg-"));
  const own = (path: string) => {
    if (id) chownSync(path, id.uid, id.gid);
  };
  own(root);
  const data = join(root, "data");
  const password = randomBytes(12).toString("hex");
  const pwfile = join(root, "pw");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  own(pwfile);
  await run(
    join(bin, "initdb"),
    ["-D", data, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", ...(durable ? [] : ["--no-sync"]), "-E", "UTF8", "--locale=C"],
    id,
    root,
  );
  rmSync(pwfile);
  const tls = makeCertificate(root, own);
  const logPath = join(root, "postgres.log");
  let port = await freePort();
  let proc: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    const log = openSync(logPath, "a");
    const args = [
      "-D", data, "-p", String(port), "-k", root,
      "-c", "listen_addresses=127.0.0.1",
      ...(durable
        ? ["-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on"]
        : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
      "-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning",
      ...(tls ? ["-c", "ssl=on", "-c", `ssl_cert_file=${tls.cert}`, "-c", `ssl_key_file=${tls.key}`] : []),
    ];
    const p = spawn(join(bin, "postgres"), args, { ...(id ?? {}), cwd: root, stdio: ["ignore", log, log] });
    closeSync(log);
    live.add(p);
    p.on("exit", () => live.delete(p));
    if (!exitHook) {
      exitHook = true;
      process.on("exit", () => {
        for (const child of live) child.kill("SIGQUIT");
      });
    }
    let exited = false;
    p.on("exit", () => (exited = true));
    proc = p;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await queryOnce(urlOf(port), "SELECT 1");
        return;
      } catch (error) {
        if (exited || Date.now() > deadline) {
          const tail = readFileSync(logPath, "utf8").split("\n").slice(-15).join("\n");
          throw new Error(`PostgreSQL did not start on port ${port} (${(error as Error).message}); log:\n${tail}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  const urlOf = (p: number, database = "postgres") => `postgres://postgres:${password}@127.0.0.1:${p}/${database}`;

  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      const text = (error as Error).message;
      if (attempt < 2 && /could not bind|Address already in use/i.test(readFileSync(logPath, "utf8"))) {
        port = await freePort();
        continue;
      }
      rmSync(root, { recursive: true, force: true });
      throw new Error(`cannot start PostgreSQL for the tests: ${text}`);
    }
  }

  const stop = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => p.on("exit", () => resolve()));
    p.kill("SIGINT"); // fast shutdown: roll back active transactions, checkpoint, exit
    await gone;
    proc = null;
  };

  const crash = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => p.on("exit", () => resolve()));
    await run(join(bin, "pg_ctl"), ["stop", "-D", data, "-m", "immediate", "-w"], id, root);
    await gone;
    proc = null;
  };

  return {
    get url() {
      return urlOf(port);
    },
    password,
    get port() {
      return port;
    },
    owned: true,
    durable,
    tls: tls !== null,
    certificate: tls ? readFileSync(tls.cert, "utf8") : null,
    urlFor: (database) => urlOf(port, database),
    query: (sql, params, database) => queryOnce(urlOf(port, database), sql, params),
    stop,
    crash,
    start: async () => {
      if (proc) return;
      await launch();
    },
    close: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A self-signed certificate for 127.0.0.1, so the TLS modes are tested for real; null without openssl. */
function makeCertificate(root: string, own: (path: string) => void): { cert: string; key: string } | null {
  const cert = join(root, "server.crt");
  const key = join(root, "server.key");
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
      { stdio: "ignore" },
    );
  } catch {
    return null;
  }
  chmodSync(key, 0o600);
  own(key);
  own(cert);
  return { cert, key };
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function queryOnce<R extends pg.QueryResultRow>(url: string, sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The child fixture (imports the built package). */
export const CHILD_FIXTURE = new URL("../fixtures/child-postgres.mjs", import.meta.url);

/** Throws unless the package is built: the child processes import `dgent/adapters/postgres` from dist/. */
export function assertBuilt(): void {
  const dist = new URL("../../dist/adapters/postgres/index.js", import.meta.url);
  if (!existsSync(dist)) {
    throw new Error("dist/adapters/postgres is missing: child processes import the built package; run `npx tsc -p tsconfig.json` (npm run build) first");
  }
}

export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node child-postgres.mjs <task> <json>` and collects its output. */
export function runChild(task: string, args: Record<string, unknown>): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD_FIXTURE.pathname, task, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("error", reject);
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Starts one child per task with `barrier: true`, waits until every child has printed "ready",
 * then tells them all "go" at once: a real start line, whatever the machine's load.
 */
export async function runTogether(tasks: ReadonlyArray<{ task: string; args: Record<string, unknown> }>): Promise<ChildResult[]> {
  const children = tasks.map(({ task, args }) => {
    const p = spawn(process.execPath, [CHILD_FIXTURE.pathname, task, JSON.stringify({ ...args, barrier: true })], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const state = { stdout: "", stderr: "", ready: false };
    const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
    return { p, state, exited };
  });
  let readyCount = 0;
  await new Promise<void>((resolve, reject) => {
    for (const c of children) {
      c.p.stderr?.on("data", (chunk: Buffer) => (c.state.stderr += chunk.toString()));
      c.p.stdout?.on("data", (chunk: Buffer) => {
        c.state.stdout += chunk.toString();
        if (!c.state.ready && c.state.stdout.startsWith("ready\n")) {
          c.state.ready = true;
          c.state.stdout = c.state.stdout.slice("ready\n".length);
          if (++readyCount === children.length) resolve();
        }
      });
      void c.exited.then(() => {
        if (!c.state.ready) reject(new Error(`a child exited before it was ready: ${c.state.stderr}`));
      });
    }
  });
  for (const c of children) c.p.stdin?.end("go\n");
  const codes = await Promise.all(children.map((c) => c.exited));
  return children.map((c, i) => ({ code: codes[i] ?? null, stdout: c.state.stdout, stderr: c.state.stderr }));
}

/** Drops a schema and everything in it (the kit's `destroy`). */
export async function dropSchema(server: PostgresServer, schema: string): Promise<void> {
  await server.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
}
