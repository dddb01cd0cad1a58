/**
 * Stopping the harness's owned Postgres the two ways `pg_ctl stop` can: `-m fast` (SIGINT: active
 * transactions roll back, clients get 57P01, a shutdown checkpoint) and `-m immediate` (SIGQUIT:
 * every server process quits at once, no checkpoint; the next start runs crash recovery).
 * `server.start()` starts it again either way.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PostgresServer } from "../harness/postgres.js";

export type StopMode = "fast" | "immediate";

export async function stopPostgres(server: PostgresServer, mode: StopMode): Promise<void> {
  if (!server.owned) throw new Error("stopping Postgres needs a cluster the harness owns (startPostgres({ owned: true }))");
  if (mode === "fast") return server.stop();
  const { rows } = await server.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir");
  const dir = rows[0]?.dir;
  if (!dir) throw new Error("the server did not say where its data directory is");
  // The first line of postmaster.pid is the pid of the postmaster: the process the harness started.
  const pid = Number(readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dir}/postmaster.pid`);
  process.kill(pid, "SIGQUIT"); // what `pg_ctl stop -m immediate` sends
  // In the same tick: the harness still sees its process running, so stop() waits for it to exit
  // (its SIGINT is ignored by a postmaster already in immediate shutdown) and can start it again.
  await server.stop();
}

/**
 * Makes commits durable before they are acknowledged on this cluster (the harness runs it with
 * `synchronous_commit=off` for speed, which loses the last acknowledged commits in an immediate
 * stop). A per-database setting outranks the command line; new sessions get it.
 */
export async function durableCommits(server: PostgresServer): Promise<void> {
  await server.query("ALTER DATABASE postgres SET synchronous_commit = on");
}
