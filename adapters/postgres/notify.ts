import pg from "pg";
import { ORIGIN } from "./origin.js";
import { statement, type Statement } from "./sql.js";

/**
 * Change notifications for one connection URL, built so that writers never wait on each other.
 *
 * A put or delete appends a row to the table's change log (`<table>_changes`, migration 5) in the
 * same statement as the change: the writing transaction's id (`xid8`), the operation, the datum id
 * and the writer. Nothing in that statement takes a lock shared between writers, so concurrent
 * commits do not queue (a `pg_notify` inside the write transaction would: Postgres orders every
 * committing transaction that notified behind one lock).
 *
 * After the write committed, the writer announces it with one `NOTIFY` per table, outside any
 * write transaction, `ANNOUNCE_DELAY_MS` later and at least `ANNOUNCE_INTERVAL_MS` after the
 * previous one; announcements made meanwhile, or while one is in flight, are folded into the
 * next, so 64 concurrent puts (or a loop of puts) cost a handful of NOTIFYs. Every NOTIFY costs
 * more than its own transaction: Postgres wakes every backend that listens in the database, on
 * any channel, and each of them reads the notification queue. The NOTIFY goes over the
 * listening connection when this process listens (it would be woken by its own NOTIFY anyway;
 * so only one backend of this process works for it), else over a connection of its own; both
 * run with `synchronous_commit = off`: a NOTIFY carries no data (the log rows committed with
 * the writes), so its commit need not wait for a WAL flush.
 *
 * A listener (one dedicated client per URL, every channel of the process) does not trust the
 * notification's payload: it reads the log from its cursor. The cursor is the snapshot of its last
 * read: its xmax and the transactions it saw running (xip). Every other transaction below xmax had
 * ended then, so its rows were visible to that read and reported; the next read asks only for the
 * rows of transactions at or above xmax or among those running then, two ranges of the log's xid
 * index. So a change is reported once, whatever order the transactions committed in, and a long
 * transaction (anywhere on the server) costs each read one index probe: with a cursor at the
 * snapshot's xmin, as before, it held the cursor back, and every read scanned the log from there
 * again (a sequential scan of 500,000 rows, 200 ms, per read). A change is also reported when its
 * writer died between its commit and its NOTIFY: a listener also reads the log every `POLL_MS`
 * and after the next NOTIFY from anyone; its own NOTIFYs wake it for nothing (their payload is its
 * origin: ignored). Reads of one table start at least `READ_INTERVAL_MS` apart (NOTIFYs from
 * several processes fold into one read), as a statement prepared once per connection.
 *
 * Each connection runs one statement at a time: LISTEN, the log reads, the NOTIFYs and the prune
 * queue in order on it (pg would queue them too, but that use is deprecated; a NOTIFY waits for a
 * read in flight, a millisecond). The prune deletes the log's rows older than `RETENTION_MS` by a
 * range of the xid index: below the lowest transaction id among the rows it keeps (so only rows
 * older than that go, as `at` orders them), not by a sequential scan of the whole log.
 *
 * A listener that reconnects reads on from its cursor, so it misses nothing; it warns
 * (`listener-reconnected`) only when the log may have lost rows meanwhile: the server restarted
 * (the log is UNLOGGED: a crash empties it) or the listener was away for longer than the log
 * keeps rows (`RETENTION_MS`). Whatever makes the new connection (the retry after a backoff, or a
 * first subscribe to another channel before that retry came due) LISTENs on every channel again,
 * checks for the gap and reads on, before anything else runs on it.
 */

/**
 * Marks the statements this version's listening and announcing connections send, so that the
 * bridge of migration 9 (a backend whose last statement looks like a listener's counts as one)
 * does not count them: they register themselves.
 */
export const LISTENER_MARK = "/* dgent-listens-v9 */";

/**
 * How long a listener that starts waits for the writes already under way on its table (which
 * may not log, see `#register`) before it reads; past that it warns (`listen-gap`) and reads.
 */
export const WRITERS_WAIT_MS = 30_000;

/** SQLSTATEs of a write on a read-only session, and of a write the role has no right to. */
const READ_ONLY = "25006";
const NO_PRIVILEGE = "42501";

/** The table a subscriber hears about: its channel, change log, listeners table and the table itself. */
export interface ChangeSource {
  readonly channel: string;
  /** The quoted, schema-qualified change log table. */
  readonly changes: string;
  /** The quoted, schema-qualified listeners table (migration 9). */
  readonly listeners: string;
  /** The quoted, schema-qualified datum table. */
  readonly table: string;
}

export { ORIGIN } from "./origin.js";

export interface ChangeMessage {
  readonly op: "put" | "delete";
  readonly id: string;
  readonly origin: string;
}

export interface Subscriber {
  /** A change made by another process. */
  change(message: ChangeMessage): void;
  /** Something the subscriber should report: a gap after a reconnect, or an unreadable payload. */
  warning(message: string, details?: Readonly<Record<string, unknown>>): void;
}

const MAX_BACKOFF_MS = 5_000;
/** A listener reads the log this often even without a NOTIFY (a writer may have died before sending it). */
export const POLL_MS = 1_000;
/** Log rows older than this are pruned (by writers, at most once a minute per table). */
export const RETENTION_MS = 10 * 60_000;
const PRUNE_EVERY_MS = 60_000;
/**
 * An announcement waits this long before it is sent, so that the commits of the next few
 * milliseconds fold into it: a single caller putting in a loop then costs one NOTIFY per
 * interval, not one per put (each NOTIFY is a transaction of its own on the server).
 */
export const ANNOUNCE_DELAY_MS = 5;
/**
 * Announcements of one table from one process are at least this far apart: a steady stream of
 * writes costs at most 1000 / ANNOUNCE_INTERVAL_MS NOTIFYs a second per table and process, each
 * waking every listener of the database, while a write after a quiet spell still goes out
 * `ANNOUNCE_DELAY_MS` later.
 */
export const ANNOUNCE_INTERVAL_MS = 20;
/**
 * A listener's reads of one table's log start at least this far apart: NOTIFYs from several
 * writer processes (each up to 1000 / ANNOUNCE_INTERVAL_MS a second) fold into one read instead
 * of one read each.
 */
export const READ_INTERVAL_MS = ANNOUNCE_INTERVAL_MS;

/**
 * On the connections that send NOTIFYs: their commits need not reach the disk (see above). A
 * server or pooler that refuses the setting only costs the NOTIFYs their WAL flush.
 */
async function asyncCommit(client: pg.Client): Promise<void> {
  await client.query(`${LISTENER_MARK} SET synchronous_commit = off`).catch(() => undefined);
}

/** Test-only: holds every announcement of this process until released (a writer "dies" before its NOTIFY). */
let held: Promise<void> | null = null;
export function holdAnnouncementsForTests(): () => void {
  let release = () => undefined as void;
  held = new Promise<void>((resolve) => {
    release = () => {
      held = null;
      resolve();
    };
  });
  return release;
}

/** `pg.Client#ref` / `#unref` (present since pg 8.8, missing from its types): an idle sender must not keep the process alive. */
function refd(client: pg.Client, on: boolean): void {
  const c = client as unknown as { ref?: () => void; unref?: () => void };
  if (on) c.ref?.();
  else c.unref?.();
}

/** Ends a client, first letting its socket hold the process open until the server said goodbye. */
function endClient(client: pg.Client): Promise<void> {
  refd(client, true);
  return client.end();
}

interface Channel {
  readonly name: string;
  /** The quoted, schema-qualified change log table. */
  readonly log: string;
  readonly listeners: string;
  readonly table: string;
  /**
   * The backend pid whose row in `listeners` has covered this channel without a break since its
   * cursor was set (writers logged all along while it stands); null when none does.
   */
  coveredBy: number | null;
  /** Set when the session may not register (read-only, or no right to write the listeners table). */
  unregistered: boolean;
  readonly subscribers: Set<Subscriber>;
  /** The snapshot of the last read (`pg_snapshot` text, `xmin:xmax:xip,…`), parsed. Null until primed. */
  cursor: Cursor | null;
  /** A read in flight; `again` asks for one more after it. */
  reading: Promise<void> | null;
  again: boolean;
  /** When the last read started (`performance.now()`), 0 before the first. */
  lastRead: number;
  /** The read, prepared once per connection. */
  readonly catchUp: Statement;
}

/** Rows of transactions at or above `xmax` or in `xip` may still appear; all others were read. */
interface Cursor {
  readonly xmax: string;
  readonly xip: readonly string[];
}

/** A `pg_snapshot` as text (`xmin:xmax:xip1,xip2,…`) as a cursor. */
export function cursorOf(snapshot: string): Cursor {
  const [, xmax, xip] = snapshot.split(":");
  return { xmax: xmax as string, xip: xip ? xip.split(",") : [] };
}

interface Announcer {
  sending: boolean;
  again: boolean;
  /** When the last NOTIFY went out (`performance.now()`), 0 before the first. */
  lastSent: number;
  lastPrune: number;
  /** Whether the table had a listener row when last asked (`heardAt`, `performance.now()`). */
  heard: boolean;
  heardAt: number;
}

/** Answers whether some connection listens for a table (a row in its listeners table). */
export type ListenersProbe = () => Promise<boolean>;

/**
 * A writer that does not listen itself asks whether anyone does at most this often, and sends no
 * NOTIFY while nobody does: a listener that registers meanwhile finds those changes in the log
 * (written by every write statement from its registration on) at its next poll (`POLL_MS`), or at the
 * next NOTIFY once the writers ask again.
 */
export const LISTENERS_RECHECK_MS = 250;

export class NotifyHub {
  readonly #config: pg.ClientConfig;
  readonly #channels = new Map<string, Channel>();
  /** The LISTEN of each channel, once sent (awaited by every subscriber). */
  readonly #listening = new Map<string, Promise<void>>();
  #client: pg.Client | null = null;
  /** Serialises connect / LISTEN / UNLISTEN so they never interleave. */
  #queue: Promise<unknown> = Promise.resolve();
  #retry: NodeJS.Timeout | null = null;
  #poll: NodeJS.Timeout | null = null;
  #backoff = 100;
  #closed = false;
  /** When the listener lost its connection (for the gap check on reconnect). */
  #lostAt = 0;
  /** The backend pid of the listening connection (the last one, while it reconnects); null before the first. */
  #pid: number | null = null;
  /** The server's start time, as seen by the listener's first connection. */
  #serverStart: string | null = null;
  /** The connection that sends NOTIFYs and prunes the log; unref'd while idle. */
  #sender: Promise<pg.Client> | null = null;
  readonly #announcers = new Map<string, Announcer>();
  /** Announcements in flight; close() lets them finish, so a process's last writes are announced. */
  readonly #sending = new Set<Promise<void>>();
  /** What runs on each connection of the hub now (`#one`). */
  readonly #busy = new WeakMap<pg.Client, Promise<unknown>>();

  constructor(config: pg.ClientConfig) {
    this.#config = { ...config, keepAlive: true };
  }

  /**
   * Subscribes to the changes of `log` announced on `channel`; resolves once the LISTEN is in
   * place and the cursor is set (changes committed after that are reported). Returns the unsubscribe.
   */
  async subscribe(source: ChangeSource, subscriber: Subscriber): Promise<() => Promise<void>> {
    const channel = source.channel;
    let entry = this.#channels.get(channel);
    const first = entry === undefined;
    if (!entry) {
      const log = source.changes;
      entry = {
        name: channel,
        log,
        listeners: source.listeners,
        table: source.table,
        coveredBy: null,
        unregistered: false,
        subscribers: new Set(),
        cursor: null,
        reading: null,
        again: false,
        lastRead: 0,
        catchUp: statement(catchUpSql(log)),
      };
      this.#channels.set(channel, entry);
    }
    entry.subscribers.add(subscriber);
    if (first) {
      const ch = entry;
      this.#listening.set(
        channel,
        this.#serial(async () => {
          const client = await this.#connected();
          await this.#one(client, () => client.query(`${LISTENER_MARK} LISTEN ${pg.escapeIdentifier(channel)}`));
          const status = await this.#register(client, ch, null);
          await this.#prime(client, ch);
          if (status !== "unregistered") ch.coveredBy = this.#pid;
        }),
      );
      this.#startPolling();
    }
    try {
      // A later subscriber to the same channel also waits until the LISTEN is in place.
      await this.#listening.get(channel);
    } catch (error) {
      entry.subscribers.delete(subscriber);
      if (entry.subscribers.size === 0) {
        this.#channels.delete(channel);
        this.#listening.delete(channel);
      }
      throw error;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const current = this.#channels.get(channel);
      if (!current) return;
      current.subscribers.delete(subscriber);
      if (current.subscribers.size > 0) return;
      this.#channels.delete(channel);
      this.#listening.delete(channel);
      await this.#serial(async () => {
        const client = this.#client;
        if (client && !this.#channels.has(channel)) await this.#unregister(client, current);
        if (this.#channels.size === 0) await this.#disconnect();
        else if (client && this.#client === client && !this.#channels.has(channel)) {
          await this.#one(client, () => client.query(`${LISTENER_MARK} UNLISTEN ${pg.escapeIdentifier(channel)}`)).catch(() => undefined);
        }
      });
    };
  }

  /**
   * Tells other processes that changes to `log` committed: one NOTIFY on `channel`, sent after
   * the one in flight (if any) so that a burst of commits costs few. Never throws; a lost
   * announcement is made up for by the listeners' polling.
   */
  announce(channel: string, log: string, probe: ListenersProbe): void {
    if (this.#closed) return;
    let a = this.#announcers.get(channel);
    if (!a) {
      a = { sending: false, again: false, lastSent: 0, lastPrune: 0, heard: false, heardAt: Number.NEGATIVE_INFINITY };
      this.#announcers.set(channel, a);
    }
    if (a.sending) {
      a.again = true;
      return;
    }
    a.sending = true;
    const sending = this.#send(channel, log, a, probe);
    this.#sending.add(sending);
    void sending.finally(() => this.#sending.delete(sending));
  }

  async #send(channel: string, log: string, a: Announcer, probe: ListenersProbe): Promise<void> {
    const notify = `${LISTENER_MARK} NOTIFY ${pg.escapeIdentifier(channel)}, ${pg.escapeLiteral(ORIGIN)}`;
    try {
      do {
        const wait = Math.max(ANNOUNCE_DELAY_MS, a.lastSent + ANNOUNCE_INTERVAL_MS - performance.now());
        await new Promise((resolve) => setTimeout(resolve, wait));
        a.again = false;
        if (held) await held;
        if (!(await this.#heard(channel, a, probe))) continue;
        await this.#notify(notify, log, a);
        a.lastSent = performance.now();
      } while (a.again);
    } finally {
      a.sending = false;
    }
  }

  /**
   * Whether anyone may listen for `channel`'s table: this process does, or its listeners table
   * had a row when last asked (at most `LISTENERS_RECHECK_MS` ago; a failed probe counts as yes).
   */
  async #heard(channel: string, a: Announcer, probe: ListenersProbe): Promise<boolean> {
    if (this.#channels.has(channel)) return true;
    const now = performance.now();
    if (now - a.heardAt < LISTENERS_RECHECK_MS) return a.heard;
    a.heard = await probe().catch(() => true);
    a.heardAt = performance.now();
    return a.heard;
  }

  /**
   * Sends one NOTIFY (a simple-protocol statement: nothing to parse and plan twice) and, once a
   * minute, prunes the log: over the listening connection when there is one, else (or when that
   * fails: it may just have been closed) over the sender's. Never throws: a failed sender is
   * dropped (the next announcement reconnects; the listener's own handlers reconnect it), and
   * listeners find the change in the log when they poll.
   */
  async #notify(notify: string, log: string, a: Announcer): Promise<void> {
    const listener = this.#client;
    if (listener !== null && (await this.#notifyOn(listener, notify, log, a))) return;
    let sender: pg.Client;
    try {
      sender = await this.#senderClient();
    } catch {
      return;
    }
    refd(sender, true);
    const sent = await this.#notifyOn(sender, notify, log, a);
    refd(sender, false);
    if (!sent && this.#sender !== null) {
      const dropped = this.#sender;
      this.#sender = null;
      void dropped.then(endClient).catch(() => undefined);
    }
  }

  async #notifyOn(client: pg.Client, notify: string, log: string, a: Announcer): Promise<boolean> {
    try {
      await this.#one(client, () => client.query(notify));
    } catch {
      return false;
    }
    const now = Date.now();
    if (now - a.lastPrune >= PRUNE_EVERY_MS) {
      a.lastPrune = now;
      // The NOTIFY went out: a failed prune is retried a minute later.
      await this.#one(client, () => client.query(pruneSql(log), [RETENTION_MS / 1000])).catch(() => undefined);
    }
    return true;
  }

  /**
   * Runs `run` (statements on `client`) after whatever runs on that connection now: one statement
   * at a time per connection, in the order asked.
   */
  #one<T>(client: pg.Client, run: () => Promise<T>): Promise<T> {
    const previous = this.#busy.get(client) ?? Promise.resolve();
    const next = previous.then(run, run);
    this.#busy.set(client, next.catch(() => undefined));
    return next;
  }

  #senderClient(): Promise<pg.Client> {
    if (this.#sender) return this.#sender;
    const client = new pg.Client(this.#config);
    client.on("error", () => {
      if (this.#sender === connecting) this.#sender = null;
    });
    const connecting = client
      .connect()
      .then(() => asyncCommit(client))
      .then(
        () => {
          refd(client, false);
          return client;
        },
        async (error: unknown) => {
          if (this.#sender === connecting) this.#sender = null;
          await client.end().catch(() => undefined);
          throw error;
        },
      );
    this.#sender = connecting;
    return connecting;
  }

  /** Channels listened on now (for tests and reports). */
  get channels(): readonly string[] {
    return [...this.#channels.keys()];
  }

  /** The backend pid of the listening connection, while it is connected (for tests and reports). */
  get listenerPid(): number | null {
    return this.#client ? this.#pid : null;
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  /** The channels the listening connection LISTENs on, as the server reports them (for tests and reports). */
  async listeningChannels(): Promise<string[]> {
    const client = this.#client;
    if (!client) return [];
    const r = await this.#one(client, () => client.query<{ c: string }>(`${LISTENER_MARK} SELECT pg_listening_channels() AS c`));
    return r.rows.map((row) => row.c).sort();
  }

  async close(): Promise<void> {
    // First: an announcement made while the last ones finish must not start a send (and perhaps
    // open a sender connection) that nobody ends.
    this.#closed = true;
    await Promise.all(this.#sending);
    this.#channels.clear();
    this.#listening.clear();
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    const sender = this.#sender;
    this.#sender = null;
    await sender?.then(endClient).catch(() => undefined);
    await this.#serial(() => this.#disconnect());
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #startPolling(): void {
    if (this.#poll || this.#closed) return;
    this.#poll = setInterval(() => {
      if (!this.#client) return;
      for (const ch of this.#channels.values()) this.#read(ch);
    }, POLL_MS);
    this.#poll.unref();
  }

  /** Sets the cursor of `ch` to now: what is visible now counts as seen. */
  async #prime(client: pg.Client, ch: Channel): Promise<void> {
    const r = await this.#one(client, () => client.query<{ snapshot: string }>(`${LISTENER_MARK} SELECT pg_current_snapshot()::text AS snapshot`));
    ch.cursor = cursorOf((r.rows[0] as { snapshot: string }).snapshot);
  }

  /** Reads the log of `ch` from its cursor (one read at a time; a request meanwhile reads once more). */
  #read(ch: Channel): void {
    if (ch.reading) {
      ch.again = true;
      return;
    }
    const run = async (): Promise<void> => {
      do {
        const wait = ch.lastRead + READ_INTERVAL_MS - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        ch.again = false;
        const client = this.#client;
        if (!client || ch.cursor === null || this.#channels.get(ch.name) !== ch) return;
        ch.lastRead = performance.now();
        await this.#catchUp(client, ch);
      } while (ch.again);
    };
    ch.reading = run()
      .catch(() => undefined) // a lost connection: the reconnect reads on from the cursor
      .finally(() => {
        ch.reading = null;
        // Asked for meanwhile (by the reconnect, when this read failed with the old connection).
        if (ch.again) this.#read(ch);
      });
  }

  async #catchUp(client: pg.Client, ch: Channel): Promise<void> {
    const cursor = ch.cursor as Cursor;
    const r = await this.#one(client, () =>
      client.query<{ snapshot: string; op: string | null; id: string | null; origin: string | null }>({ ...ch.catchUp, values: [cursor.xmax, cursor.xip, ORIGIN] }),
    );
    const first = r.rows[0];
    if (first === undefined) return;
    for (const row of r.rows) {
      if ((row.op !== "put" && row.op !== "delete") || row.id === null) continue;
      const message: ChangeMessage = { op: row.op, id: row.id, origin: row.origin ?? "" };
      for (const s of ch.subscribers) s.change(message);
    }
    ch.cursor = cursorOf(first.snapshot);
    this.reads++;
    this.rowsRead += r.rows.length - (first.id === null ? 1 : 0);
  }

  /** Log rows the reads of this hub returned (other processes' changes), for tests and reports. */
  rowsRead = 0;
  /** Reads of the log this hub made. */
  reads = 0;

  /**
   * The listening connection; a new one (run inside `#serial`, as every caller is) first resumes
   * every channel already read from: LISTEN, the gap check and the read from its cursor. So a
   * first subscribe to another channel that connects while a retry is pending leaves no channel
   * behind (the retry then finds the connection and does nothing).
   */
  async #connected(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client(this.#config);
    // An error on an idle listener (server restart) must not crash the process: reconnect instead.
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    client.on("notification", (msg) => this.#dispatch(msg));
    try {
      await client.connect();
      await asyncCommit(client);
      const r = await client.query<{ started: string; pid: number }>(
        `${LISTENER_MARK} SELECT pg_postmaster_start_time()::text AS started, pg_backend_pid() AS pid`,
      );
      const { started, pid } = r.rows[0] as { started: string; pid: number };
      this.#pid = pid;
      if (this.#serverStart === null) this.#serverStart = started;
      else if (this.#serverStart !== started) {
        this.#serverStart = started;
        this.#restarted = true;
      }
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      if (this.#primed().length > 0) this.#scheduleReconnect();
      throw error;
    }
    this.#client = client;
    try {
      await this.#resume(client);
    } catch (error) {
      // Lost again (then #lost already scheduled a retry) or a LISTEN refused: drop it, retry later.
      if (this.#client === client) await this.#disconnect();
      this.#scheduleReconnect();
      throw error;
    }
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#backoff = 100;
    return client;
  }

  /** Channels whose cursor is set (a channel still subscribing sets its own, after its LISTEN). */
  #primed(): Channel[] {
    return [...this.#channels.values()].filter((ch) => ch.cursor !== null);
  }

  /**
   * On a new listening connection: LISTEN on every primed channel and register (the previous
   * connection's row, kept, means writers logged all along), then read on, or warn of a gap: the
   * server restarted, the listener was away longer than the log keeps rows, or its row was
   * deleted meanwhile (another listener starting found its backend gone) so writers may have
   * stopped logging.
   */
  async #resume(client: pg.Client): Promise<void> {
    const channels = this.#primed();
    for (const ch of channels) await this.#one(client, () => client.query(`${LISTENER_MARK} LISTEN ${pg.escapeIdentifier(ch.name)}`));
    const lost = this.#restarted || (this.#lostAt !== 0 && Date.now() - this.#lostAt >= RETENTION_MS);
    for (const ch of channels) {
      if (this.#channels.get(ch.name) !== ch) continue; // unsubscribed meanwhile
      // Continuity is the channel's own: the row that covered it since its cursor was set (a
      // connection lost while it registered, before its prime, never covered it).
      const wasUnregistered = ch.unregistered;
      const covered = ch.coveredBy;
      ch.coveredBy = null;
      const status = await this.#register(client, ch, wasUnregistered ? null : covered);
      // A session that cannot register never relied on a row of its own: as before migration 9.
      const gap = lost || (status === "fresh" && !wasUnregistered);
      if (gap) {
        await this.#prime(client, ch);
        for (const s of ch.subscribers) {
          s.warning("the change listener reconnected; changes made by other processes while it was disconnected were not reported", {
            reason: "listener-reconnected",
          });
        }
      } else {
        // Nothing was lost: the log kept every change since the cursor.
        this.#read(ch);
      }
      // Covered from here on (after the prime, when there was one).
      if (status !== "unregistered") ch.coveredBy = this.#pid;
    }
    // Reported (or nobody was listening then): a later reconnect does not warn of it again.
    this.#restarted = false;
    this.#lostAt = 0;
  }

  /** Set when a reconnect found a server that started since the listener's first connection. */
  #restarted = false;

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client) {
      // Writers stop logging for us at once (else at the next listener's start, which finds us gone).
      for (const listeners of this.#registered) {
        await this.#one(client, () => client.query(`DELETE FROM ${listeners} WHERE pid = pg_backend_pid()`)).catch(() => undefined);
      }
      this.#registered.clear();
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
    }
  }

  /** The listeners tables the listening connection has a row in. */
  readonly #registered = new Set<string>();

  /**
   * Registers the listening connection for `ch`'s table: deletes the rows of backends that are
   * gone (or whose pid a later backend took), adds ours, and answers `kept` when `coveredBy`'s row
   * was still there (then writers never stopped logging for the channel). Otherwise (`fresh`)
   * waits for the writes under way on the table, which may have begun before our row committed
   * and so not log: under READ COMMITTED (every session of the pool, profiles.ts) a write
   * statement takes its table lock before its snapshot and holds it until its transaction ends,
   * and every write that takes the lock after our look at `pg_locks` sees our row. So once they
   * end, every change the cursor set next does not count as seen is logged. A session that may
   * not write the row (read-only; no right on the table) is `unregistered`: warned of once.
   */
  async #register(client: pg.Client, ch: Channel, coveredBy: number | null): Promise<"kept" | "fresh" | "unregistered"> {
    let kept = false;
    try {
      const r = await this.#one(client, () =>
        client.query<{ kept: boolean }>(
          `WITH gone AS (
             DELETE FROM ${ch.listeners} l WHERE NOT EXISTS (
               SELECT FROM pg_stat_activity a WHERE a.pid = l.pid AND (a.backend_start IS NULL OR a.backend_start <= l.since))
           ),
           mine AS (INSERT INTO ${ch.listeners} (pid, origin) VALUES (pg_backend_pid(), $1))
           SELECT EXISTS (SELECT FROM ${ch.listeners} WHERE pid = $2::int) AS kept`,
          [ORIGIN, coveredBy],
        ),
      );
      this.#registered.add(ch.listeners);
      ch.unregistered = false;
      kept = coveredBy !== null && (r.rows[0] as { kept: boolean }).kept;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== READ_ONLY && code !== NO_PRIVILEGE) throw error;
      if (!ch.unregistered) {
        ch.unregistered = true;
        const why = code === READ_ONLY ? "a read-only session" : "this role (no INSERT and DELETE on the listeners table)";
        for (const s of ch.subscribers) {
          s.warning(`${why} cannot register as a listener; other processes' changes are reported only while another listener of the table is registered`, {
            reason: "listener-unregistered",
            code,
          });
        }
      }
      return "unregistered";
    }
    if (kept) return "kept";
    const writers = await this.#one(client, () =>
      client.query<{ v: string[] | null }>(
        `SELECT array_agg(DISTINCT virtualtransaction) AS v FROM pg_locks
         WHERE locktype = 'relation' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND relation = $1::text::regclass AND mode = 'RowExclusiveLock' AND granted AND pid IS DISTINCT FROM pg_backend_pid()`,
        [ch.table],
      ),
    );
    let pending = writers.rows[0]?.v ?? [];
    const deadline = performance.now() + WRITERS_WAIT_MS;
    while (pending.length > 0 && this.#client === client && !this.#closed) {
      if (performance.now() > deadline) {
        for (const s of ch.subscribers) {
          s.warning(`${pending.length} transaction(s) writing to the table since before this listener started are still running; their changes may not be reported`, {
            reason: "listen-gap",
          });
        }
        break;
      }
      this.waits++;
      await new Promise((resolve) => setTimeout(resolve, 2));
      const again = await this.#one(client, () =>
        client.query<{ v: string[] | null }>("SELECT array_agg(virtualxid) AS v FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY ($1::text[])", [pending]),
      );
      pending = again.rows[0]?.v ?? [];
    }
    return "fresh";
  }

  /** Polls of `#register` for writes under way (for tests: a barrier, not a timing). */
  waits = 0;

  /** Deletes the listening connection's row for `ch`'s table (best effort: a row left behind is deleted by the next listener). */
  async #unregister(client: pg.Client, ch: Channel): Promise<void> {
    if (!this.#registered.delete(ch.listeners)) return;
    await this.#one(client, () => client.query(`DELETE FROM ${ch.listeners} WHERE pid = pg_backend_pid()`)).catch(() => undefined);
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.#registered.clear();
    // Since the first loss not yet resumed: a reconnect that fails again does not shorten the gap.
    if (this.#lostAt === 0) this.#lostAt = Date.now();
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry || this.#channels.size === 0) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#serial(async () => {
        // A subscribe meanwhile may have connected (and resumed every channel) already.
        if (this.#closed || this.#channels.size === 0 || this.#client) return;
        await this.#connected();
      }).catch(() => {
        // #connected dropped what it connected; try again later.
        this.#scheduleReconnect();
      });
    }, delay);
    this.#retry.unref();
  }

  #dispatch(msg: pg.Notification): void {
    const ch = this.#channels.get(msg.channel);
    if (!ch || ch.subscribers.size === 0) return;
    const payload = msg.payload ?? "";
    if (payload === ORIGIN) return; // our own announcement
    if (payload.startsWith("{")) {
      // A per-row notification sent inside the write by an older dgent: report it as it says.
      let parsed: Partial<ChangeMessage> | null = null;
      try {
        parsed = JSON.parse(payload) as Partial<ChangeMessage>;
      } catch {
        parsed = null;
      }
      if (!parsed || (parsed.op !== "put" && parsed.op !== "delete") || typeof parsed.id !== "string") {
        for (const s of ch.subscribers) s.warning("ignored an unreadable change notification", { channel: msg.channel });
        return;
      }
      const origin = typeof parsed.origin === "string" ? parsed.origin : "";
      if (origin === ORIGIN) return;
      const message: ChangeMessage = { op: parsed.op, id: parsed.id, origin };
      for (const s of ch.subscribers) s.change(message);
      return;
    }
    this.#read(ch);
  }
}

/**
 * The rows of another process in `log` that may have committed since the read whose snapshot
 * gave the cursor (params: its xmax, its xip, our origin): those of transactions at or above its
 * xmax, or running then. With this read's snapshot (one row with nulls when there is none).
 */
export function catchUpSql(log: string): string {
  return `${LISTENER_MARK} SELECT h.s::text AS snapshot, c.op, c.id, c.origin
    FROM (SELECT pg_current_snapshot() AS s) h
    LEFT JOIN LATERAL (
      SELECT xid, seq, op, id, origin FROM ${log}
      WHERE (xid >= $1::text::xid8 OR xid = ANY ($2::text[]::xid8[])) AND origin <> $3
      ORDER BY xid, seq
    ) c ON true`;
}

/**
 * Deletes the rows of `log` older than `$1` seconds: those below the lowest transaction id among
 * the rows it keeps (all rows, when it keeps none), a range of the xid index. A row written by a
 * transaction that began long ago but took its id late may outlive the cut a little; no kept row
 * is ever deleted.
 */
export function pruneSql(log: string): string {
  return `${LISTENER_MARK} DELETE FROM ${log}
    WHERE xid < coalesce(
      (SELECT xid FROM ${log} WHERE at >= now() - make_interval(secs => $1) ORDER BY xid LIMIT 1),
      pg_snapshot_xmax(pg_current_snapshot()))`;
}
