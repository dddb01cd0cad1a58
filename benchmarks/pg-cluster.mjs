/**
 * A throwaway PostgreSQL cluster for the benchmark scripts, from the installed Debian binaries:
 * `initdb` into a temporary directory (as the `postgres` user when run as root), `postgres` on a
 * free loopback port with fsync and synchronous commit off, password auth. `settings` adds `-c`
 * options. `stop()` shuts it down and removes the directory.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export async function throwawayCluster({ settings = [] } = {}) {
  const root = "/usr/lib/postgresql";
  const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  if (!version) throw new Error("no PostgreSQL binaries under /usr/lib/postgresql; set DGENT_BENCH_POSTGRES_URL");
  const bin = join(root, version, "bin");
  const asRoot = process.getuid?.() === 0;
  const id = asRoot ? { uid: Number(execFileSync("id", ["-u", "postgres"])), gid: Number(execFileSync("id", ["-g", "postgres"])) } : {};
  const dir = mkdtempSync(join(tmpdir(), "dgent-bench-pg-"));
  if (asRoot) chownSync(dir, id.uid, id.gid);
  const password = randomBytes(8).toString("hex");
  writeFileSync(join(dir, "pw"), password);
  if (asRoot) chownSync(join(dir, "pw"), id.uid, id.gid);
  execFileSync(join(bin, "initdb"), ["-D", join(dir, "data"), "-U", "postgres", "--pwfile", join(dir, "pw"), "--auth-host=scram-sha-256", "--no-sync", "--locale=C", "-E", "UTF8"], { ...id, stdio: "ignore" });
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port: p } = s.address();
      s.close(() => resolve(p));
    });
  });
  const options = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off", ...settings];
  const proc = spawn(join(bin, "postgres"), ["-D", join(dir, "data"), "-p", String(port), "-k", dir, ...options.flatMap((s) => ["-c", s])], { ...id, stdio: "ignore" });
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  for (let i = 0; ; i++) {
    const c = new pg.Client(url);
    c.on("error", () => undefined);
    try {
      await c.connect();
      await c.end();
      break;
    } catch (error) {
      if (i > 300) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    bin,
    async stop() {
      const gone = new Promise((r) => proc.on("exit", r));
      proc.kill("SIGINT");
      await gone;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
