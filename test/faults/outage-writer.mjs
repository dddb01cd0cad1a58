/**
 * A writer process for the lattice fault tests: opens the store (Postgres over SQLite, the same
 * files and schema as the test), then puts and deletes its own content-addressed datums until it
 * is killed. It imports the BUILT package, as a user's process would.
 *
 * Each operation is announced before it starts and acknowledged after it returns, one line each
 * on stdout, so the test knows exactly which operations were acknowledged when it killed us:
 *   p <n> <id> / P <n> <id>     put started / acknowledged
 *   d <n> <id> / D <n> <id> <a> delete started / acknowledged, a = 1 (true), 0 (false), ? (DGENT_DELETE_UNKNOWN)
 * where n numbers the lines (1, 2, …), so the test can tell it read every one.
 * plus "ready" once open. Any other error: "E <message>" and exit 1.
 *
 * Usage: node outage-writer.mjs '{"url","namespace","sqlitePath","journalPath","prefix","seed"}'
 */
import { writeSync } from "node:fs";
import { createStore, makeDatum } from "dgent";
import { postgresAdapter } from "dgent/adapters/postgres";
import { sqliteAdapter } from "dgent/adapters/sqlite";

const { url, namespace, sqlitePath, journalPath, prefix, seed } = JSON.parse(process.argv[2]);

// mulberry32: the same run for the same seed.
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * Writes a line to stdout before returning, so that it is out before the next operation starts
 * and a SIGKILL cannot lose it: `process.stdout` queues writes to a full pipe, `writeSync` on fd 1
 * does not (it waits while the pipe is full).
 */
const pause = new Int32Array(new SharedArrayBuffer(4));
function say(line) {
  const bytes = Buffer.from(`${line}\n`);
  for (let done = 0; done < bytes.length; ) {
    try {
      done += writeSync(1, bytes, done);
    } catch (error) {
      if (error?.code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, 1); // the pipe is full: let the reader catch up
    }
  }
}
let seq = 0;
/** An operation line, numbered so the test can tell that it read every one. */
function op(tag, id, answer) {
  say(`${tag} ${++seq} ${id}${answer === undefined ? "" : ` ${answer}`}`);
}

const store = createStore({
  tiers: [postgresAdapter({ url, namespace }), sqliteAdapter({ path: sqlitePath })],
  namespace,
  journalPath,
  probeBackoffMs: { min: 50, max: 400 },
});
store.hooks.warning.tap("writer", () => undefined);
await store.open();
say("ready");

const datum = (n) => makeDatum({ content: `${prefix}:${n}`, idStrategy: "content", metadata: { writer: prefix }, createdAt: 1_000 + n });
const live = [];
const dead = [];
let next = 0;
try {
  for (;;) {
    const r = random();
    if (r < 0.55 || live.length === 0) {
      const d = r < 0.4 || dead.length === 0 ? datum(next++) : dead.splice(Math.floor(random() * dead.length), 1)[0];
      op("p", d.id);
      await store.put(d);
      op("P", d.id);
      live.push(d);
    } else {
      const d = live.splice(Math.floor(random() * live.length), 1)[0];
      op("d", d.id);
      let answer;
      try {
        answer = (await store.delete(d.id)) ? "1" : "0";
      } catch (error) {
        if (error?.code !== "DGENT_DELETE_UNKNOWN") throw error;
        answer = "?";
      }
      op("D", d.id, answer);
      dead.push(d);
    }
    // While Postgres is down every call is answered by SQLite without I/O: let timers and
    // sockets have a turn, as any real program's other work would.
    await new Promise((resolve) => setImmediate(resolve));
  }
} catch (error) {
  say(`E ${error?.code ?? ""} ${error?.message ?? error}`);
  process.exit(1);
}
