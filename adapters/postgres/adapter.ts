import pg from "pg";
import { cycleError, depthError } from "../../core/causal.js";
import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { Lifecycle } from "../../core/lifecycle.js";
import type { Adapter, AdapterContext, AdapterEvents, AdapterStats, Capabilities, ResolvedListOptions } from "../../core/protocol.js";
import type { DatumHeader, IdPage, ResolvedQuery } from "../../core/query.js";
import type { Ref, RefExpectation, RefMove, ReflogEntry, TxOp, TxResult } from "../../core/refs.js";
import { conflictError } from "../../core/tiers.js";
import { importDatums } from "./bulk.js";
import { passwordsOf, redactUrl, wrapPgError } from "./errors.js";
import { migrate, type MigrationResult } from "./migrations.js";
import { acquirePool, probe, type PoolLease } from "./pool.js";
import { LISTENERS_RECHECK_MS, type ListenersProbe } from "./notify.js";
import type { ResolvedOptions } from "./profiles.js";
import { PgQueries } from "./queries.js";
import { PgRefs } from "./refs.js";
import { bytes, storable, toDatum, type Row } from "./rows.js";
import { BATCH_PARAMS, BATCH_RECHECK, identifiers, prefixUpperBound, putStatement, statements, type Identifiers, type Statement, type Statements } from "./sql.js";

const CAPABILITIES: Capabilities = Object.freeze({
  persistent: true,
  multiProcess: true,
  nativeCausalChain: true,
  batch: true,
  scan: true,
  evicts: false,
  refs: true,
  transactions: true,
  query: true,
  queryCost: "indexed",
});

const NO_EVENTS: AdapterEvents = { evicted: () => undefined, warning: () => undefined, change: () => undefined };

/** Rows per keyset page of `scan()`. */
const SCAN_PAGE = 500;
/**
 * putMany sends at most this many datums (5 parameters each, well under Postgres's 65 535), or
 * about this many content bytes, per statement. A power of two: statements are prepared for
 * power-of-two row counts (a smaller batch is padded with NULL rows), so a connection holds at
 * most 14 of them per table and strictness.
 */
const BATCH_ROWS = 8_192;
const BATCH_BYTES = 32 * 1024 * 1024;
/** A put whose conflicting row vanished (deleted concurrently) is retried this many times. */
const PUT_ATTEMPTS = 5;

/** One implementation behind both Postgres tiers; the profile only changes defaults. */
export class PostgresAdapter implements Adapter {
  readonly name: string;
  readonly rank: number;
  readonly capabilities = CAPABILITIES;
  /** The Postgres schema (the store's namespace) and table this adapter uses. */
  readonly schema: string;
  readonly table: string;
  /** The connection URL with its password replaced by `***`. */
  readonly redactedUrl: string;
  readonly #options: ResolvedOptions;
  readonly #ids: Identifiers;
  readonly #sql: Statements;
  readonly #secrets: readonly string[];
  readonly #life: Lifecycle;
  #lease: PoolLease | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  /** Cancels the wait for the store's first externalChange tap (listening starts then). */
  #notWanted: (() => void) | null = null;
  /** A LISTEN started by that first tap, after open (never rejects), and its retry's wake-up. */
  #subscribing: Promise<void> = Promise.resolve();
  #wakeListen: (() => void) | null = null;
  #events: AdapterEvents = NO_EVENTS;
  #migration: MigrationResult | null = null;
  /** Refs and transactions (refs.ts); queries (queries.ts). */
  readonly #refs: PgRefs;
  readonly #queries: PgQueries;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.name = options.profile.name;
    this.rank = options.profile.rank;
    this.schema = options.schema;
    this.table = options.table;
    // Redacted from the URL as given: a raw `#` in a password moves it out of the parsed userinfo.
    this.redactedUrl = redactUrl(options.givenUrl);
    this.#ids = identifiers(options.schema, options.table);
    this.#sql = statements(this.#ids);
    this.#secrets = [...new Set([...passwordsOf(options.givenUrl), ...passwordsOf(options.url)])];
    this.#refs = new PgRefs({
      name: this.name,
      ids: this.#ids,
      sql: this.#sql,
      notify: options.notify,
      pool: () => this.#pool(),
      wrap: (error, what) => this.#wrap(error, what),
      metadataJson: (d) => this.#metadataJson(d),
      announce: () => this.#announce(),
    });
    this.#queries = new PgQueries({
      name: this.name,
      ids: this.#ids,
      notify: options.notify,
      pool: () => this.#pool(),
      wrap: (e, what) => this.#wrap(e, what),
      announce: () => this.#announce(),
    });
    this.#life = new Lifecycle(this.name);
  }

  /** The LISTEN/NOTIFY channel this adapter's table announces changes on. */
  get channel(): string {
    return this.#ids.channel;
  }

  /** Connects once: a second open() while the first is connecting waits for it (`Lifecycle.open`). */
  open(context?: AdapterContext): Promise<void> {
    return this.#life.open(() => this.#attach(context));
  }

  async #attach(context?: AdapterContext): Promise<void> {
    const o = this.#options;
    const lease = acquirePool(o);
    try {
      this.#migration = await migrate(lease.pool, this.#ids, o.table, o.schema, this.name);
      this.#events = context?.events ?? NO_EVENTS;
      // Listening only makes sense when someone composed us and will hear about changes: a
      // store whose externalChange hook has no tap yet listens from its first tap on.
      if (o.listen && context !== undefined) {
        const interest = context.changeInterest;
        if (interest === undefined || interest.wanted) this.#unlisten = await this.#subscribe(lease);
        else this.#notWanted = interest.onWanted(() => this.#listenLate(lease));
      }
    } catch (error) {
      await lease.release();
      throw this.#wrap(error, `open ${this.#ids.label} at ${this.redactedUrl}`);
    }
    this.#lease = lease;
    const listened = { name: this.#sql.listened.name, text: this.#sql.listened.text };
    const ask = async () => (await lease.pool.query<{ heard: boolean }>(listened)).rows[0]?.heard === true;
    // The announcer asks on its own schedule; a fresh answer the puts asked for serves it too.
    this.#listenersProbe = () => {
      const l = this.#listeners;
      return l.heard !== null && performance.now() - l.at < LISTENERS_RECHECK_MS ? Promise.resolve(l.heard) : this.#askListeners(ask);
    };
    this.#askListenersNow = () => void this.#askListeners(ask);
  }

  #subscribe(lease: PoolLease): Promise<() => Promise<void>> {
    const events = this.#events;
    return lease.notifications.subscribe(this.#ids, {
      change: (m) => events.change({ op: m.op, id: m.id, origin: m.origin }),
      warning: (message, details) => events.warning(message, details),
    });
  }

  /**
   * The first externalChange tap arrived after open: LISTEN now (changes committed from then on
   * are reported). A failure (the server away, no connection slot left) is warned of once
   * (`listen-failed`) and retried, 100 ms doubling to 5 s apart, until it succeeds or we close.
   */
  #listenLate(lease: PoolLease): void {
    this.#notWanted = null;
    const listen = async (): Promise<void> => {
      let backoff = 100;
      let warned = false;
      while (this.#lease === lease) {
        try {
          const unlisten = await this.#subscribe(lease);
          if (this.#lease === lease) this.#unlisten = unlisten;
          else await unlisten(); // closed while subscribing
          return;
        } catch (error) {
          if (this.#lease !== lease) return;
          if (!warned) {
            warned = true;
            const why = this.#wrap(error, `listen on ${this.#ids.label}`).message;
            try {
              this.#events.warning(`could not listen for other processes' changes (retrying until it can): ${why}`, { reason: "listen-failed" });
            } catch {
              // a warning tap that throws must not stop the retries
            }
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, backoff);
            timer.unref();
            this.#wakeListen = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.#wakeListen = null;
          backoff = Math.min(backoff * 2, 5_000);
        }
      }
    };
    this.#subscribing = listen().catch(() => undefined);
  }

  /** Releases the pool lease once; a close() during open() waits for it and then releases (never half-open). */
  close(): Promise<void> {
    return this.#life.close(async () => {
      const lease = this.#lease;
      const unlisten = this.#unlisten;
      this.#lease = null;
      this.#unlisten = null;
      this.#notWanted?.();
      this.#notWanted = null;
      this.#wakeListen?.();
      try {
        await unlisten?.().catch(() => undefined);
        // A late LISTEN in flight (or waiting to retry) ends itself once it sees the lease gone.
        await this.#subscribing;
      } finally {
        await lease?.release();
      }
    });
  }

  /**
   * One statement (the insert, its tag rows and, while someone listens, its change-log row:
   * `keptInStep` in sql.ts), answering with its row count alone. Not async: the promise is the driver's, carried on by one `then`;
   * only a put whose id exists takes the slower path (`#putExisting`).
   */
  put(datum: Datum): Promise<string> {
    try {
      this.#life.check();
      const metadata = this.#metadataJson(datum);
      const content = bytes(datum.content);
      const quiet = this.#nobodyListens();
      const stmt = putStatement(this.#sql, metadata, quiet);
      const values: unknown[] = [datum.id, content, datum.createdAt, datum.causalParent, metadata];
      return this.#pool()
        .query({ name: stmt.name, text: stmt.text, values })
        .then(
          (r) => {
            if (quiet) this.#quietPuts++;
            if (!r.rowCount) return this.#putExisting(datum, content, metadata, values, quiet);
            this.#announce();
            return datum.id;
          },
          (error: unknown) => {
            throw this.#wrap(error, `put ${JSON.stringify(datum.id)} on ${this.#ids.label}`);
          },
        );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Whether a put may use `putQuiet`: the last answer to "does the listeners table have a row?"
   * was no. Once that answer is `LISTENERS_RECHECK_MS` old the writer asks again (in the
   * background, on the pool) and goes by the old answer until the new one comes: being wrong costs
   * a round trip, never a change, since the quiet insert itself inserts nothing while the table
   * has a row (then `#putExisting` sends the logging put). Before the first answer, puts log.
   * (Sending every put loud while the question waited behind the pool's queue made some 5–8 % of
   * the puts at 64 callers pay for the log step.)
   */
  #nobodyListens(): boolean {
    const l = this.#listeners;
    if (performance.now() - l.at >= LISTENERS_RECHECK_MS && l.asking === null) this.#askListenersNow();
    return l.heard === false;
  }

  /** Asks whether the listeners table has a row, one question at a time; a failed one counts as yes. */
  #askListeners(ask: () => Promise<boolean>): Promise<boolean> {
    const pending = this.#listeners.asking;
    if (pending) return pending;
    const at = performance.now();
    const answer = (heard: boolean) => {
      this.#listeners = { heard, at, asking: null };
      return heard;
    };
    const asking = ask().then(answer, () => answer(true));
    this.#listeners = { ...this.#listeners, asking };
    return asking;
  }

  /**
   * The insert of `put` inserted nothing: the id exists (committed, possibly after the insert's
   * snapshot), so compare with it; when it was deleted in between, insert again. After the quiet
   * insert (`putQuiet`, `quiet`) there is a third case, found the same way (no row to compare
   * with): someone listens now. The writer then stops believing nobody listens until it has asked
   * again, and the insert is sent as `put`, which logs the change while someone listens.
   */
  async #putExisting(datum: Datum, content: Buffer, metadata: string, values: unknown[], quiet = false): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const again = await this.#run<{ same: boolean }>(this.#sql.sameAs, [datum.id, content, datum.causalParent, metadata], "put", datum.id);
      const same = again.rows[0]?.same;
      if (same === true) return datum.id;
      if (same === false) throw conflictError(datum.id, this.name);
      if (quiet) this.#listeners = { heard: true, at: performance.now(), asking: this.#listeners.asking };
      // Deleted in between (or, after a quiet insert, heard): try the insert again.
      if (attempt === PUT_ATTEMPTS) break;
      const r = await this.#run(putStatement(this.#sql, metadata, false), values, "put", datum.id);
      if (r.rowCount) {
        if (quiet && attempt === 1) this.#quietFallbacks++;
        this.#announce();
        return datum.id;
      }
    }
    throw dgentError("DGENT_UNAVAILABLE", `${this.name}: put ${JSON.stringify(datum.id)} kept racing with concurrent deletes; retry`, {
      unit: this.name,
    });
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    if (datums.length === 0) return [];
    const metadata = datums.map((d) => this.#metadataJson(d));
    const ends: number[] = [];
    for (let start = 0; start < datums.length; ) {
      let end = start;
      let size = 0;
      while (end < datums.length && end - start < BATCH_ROWS && (end === start || size < BATCH_BYTES)) {
        size += (datums[end] as Datum).content.byteLength;
        end++;
      }
      ends.push(end);
      start = end;
    }
    const ids = datums.map((d) => d.id);
    const what = () => `putMany of ${datums.length} datums into ${this.#ids.label}`;
    if (ends.length === 1) {
      // One statement is atomic by itself: no transaction, no client checkout. It fails (and
      // undoes itself) unless every row was inserted or matches; then the transaction below
      // sorts out why: a conflict, a mismatch inside the batch, or a row another transaction
      // committed meanwhile.
      try {
        await this.#pool().query(this.#batch(datums, metadata, 0, datums.length, true));
        this.#announce();
        return ids;
      } catch (error) {
        if ((error as { code?: unknown }).code !== BATCH_RECHECK) throw this.#wrap(error, what());
      }
    }
    const client = await this.#connect(this.#pool(), "putMany");
    const swallow = () => undefined;
    client.on("error", swallow);
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      let start = 0;
      for (const end of ends) {
        await this.#putChunk(client, datums, metadata, start, end);
        start = end;
      }
      await client.query("COMMIT");
      this.#announce();
      return ids;
    } catch (error) {
      await client.query("ROLLBACK").catch((e: Error) => {
        broken = e;
      });
      throw this.#wrap(error, what());
    } finally {
      client.off("error", swallow);
      client.release(broken);
    }
  }

  /** A bulk `putMany` for restores (bulk.ts): ids held already are left as they are, those that differ named. */
  async importDatums(datums: readonly Datum[]): Promise<{ stored: number; conflicts: string[] }> {
    this.#life.check();
    return importDatums(
      {
        name: this.name,
        ids: this.#ids,
        pool: () => this.#pool(),
        wrap: (e, what) => this.#wrap(e, what),
        metadataJson: (d) => this.#metadataJson(d),
        announce: () => this.#announce(),
      },
      datums,
    );
  }

  /**
   * The batch statement for `datums[start, end)` with its parameters: prepared for the next
   * power of two of rows, the rest padded with NULL rows (which it skips).
   */
  #batch(datums: readonly Datum[], metadata: readonly string[], start: number, end: number, strict: boolean): pg.QueryConfig {
    let rows = 1;
    while (rows < end - start) rows *= 2;
    const stmt = this.#sql.batch(rows, strict);
    const values: unknown[] = new Array(rows * BATCH_PARAMS).fill(null);
    for (let i = start, p = 0; i < end; i++) {
      const d = datums[i] as Datum;
      values[p++] = d.id;
      values[p++] = bytes(d.content);
      values[p++] = d.createdAt;
      values[p++] = d.causalParent;
      values[p++] = metadata[i];
    }
    return { name: stmt.name, text: stmt.text, values };
  }

  async #putChunk(client: pg.PoolClient, datums: readonly Datum[], metadata: readonly string[], start: number, end: number): Promise<void> {
    const r = await client.query<{ ord: number; same: boolean | null }>(this.#batch(datums, metadata, start, end, false));
    const unknown: number[] = [];
    for (const row of r.rows) {
      const i = start + row.ord - 1;
      if (row.same === false) throw conflictError((datums[i] as Datum).id, this.name);
      unknown.push(i);
    }
    if (unknown.length === 0) return;
    // Rows committed by others after this statement's snapshot: compare with a fresh snapshot.
    const pick = <T>(xs: readonly T[]) => unknown.map((i) => xs[i] as T);
    const chosen = pick(datums);
    const check = await client.query<{ ord: string; same: boolean | null }>({
      ...this.#sql.sameAsMany,
      values: [chosen.map((d) => d.id), chosen.map((d) => bytes(d.content)), chosen.map((d) => d.causalParent), pick(metadata)],
    });
    for (const row of check.rows) {
      const d = chosen[Number(row.ord) - 1] as Datum;
      if (row.same === false) throw conflictError(d.id, this.name);
      if (row.same === null) {
        throw dgentError("DGENT_UNAVAILABLE", `${this.name}: putMany raced with a concurrent delete of ${JSON.stringify(d.id)}; retry`, {
          unit: this.name,
        });
      }
    }
  }

  /** Not async, as `put`: the driver's promise carried on by one `then`. */
  get(id: string): Promise<Datum | null> {
    try {
      this.#life.check();
      const stmt = this.#sql.get;
      return this.#pool()
        .query<Row>({ name: stmt.name, text: stmt.text, values: [id] })
        .then(
          (r) => {
            const row = r.rows[0];
            return row === undefined ? null : toDatum(row);
          },
          (error: unknown) => {
            throw this.#wrap(error, `get ${JSON.stringify(id)} on ${this.#ids.label}`);
          },
        );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    const r = await this.#run(this.#sql.delete, [id], "delete", id);
    if (r.rowCount !== 1) return false;
    this.#announce();
    return true;
  }

  /**
   * Deletes many ids in one statement (the router applies journaled deletes and the upgrader
   * removes promoted datums this way); resolves to the ids that existed.
   */
  async deleteIds(ids: readonly string[]): Promise<string[]> {
    this.#life.check();
    if (ids.length === 0) return [];
    const list = [...ids];
    const r = await this.#run<{ id: string }>(this.#sql.deleteIds, [list], "deleteIds", `${list.length} ids`);
    if (r.rows.length > 0) this.#announce();
    return r.rows.map((row) => row.id);
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const { prefix, after, limit } = options;
    if (limit === 0) return [];
    let r: pg.QueryResult<Row>;
    if (prefix === "") {
      r = await this.#run<Row>(this.#sql.listAll, [after, limit], "list", prefix);
    } else {
      const upper = prefixUpperBound(prefix);
      r =
        upper === null
          ? await this.#run<Row>(this.#sql.listFrom, [prefix, after, limit], "list", prefix)
          : await this.#run<Row>(this.#sql.listRange, [prefix, upper, after, limit], "list", prefix);
    }
    return r.rows.map(toDatum);
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    const r = await this.#run<Row & { kind: string; depth: number }>(this.#sql.chain, [id, maxDepth], "causalChain", id);
    const first = r.rows[0];
    if (first?.kind === "cycle") throw cycleError(id, first.id, this.name);
    if (first?.kind === "deep") throw depthError(id, maxDepth, this.name);
    return r.rows.map(toDatum);
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    let last = "";
    for (;;) {
      const r = await this.#run<Row>(this.#sql.scan, [last, SCAN_PAGE], "scan", last);
      for (const row of r.rows) yield toDatum(row);
      if (r.rows.length < SCAN_PAGE) return;
      last = (r.rows[r.rows.length - 1] as Row).id;
    }
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    const r = await this.#run<{ count: number; bytes: number }>(this.#sql.stats, [], "stats", "");
    const row = r.rows[0] ?? { count: 0, bytes: 0 };
    return {
      count: row.count,
      bytes: row.bytes,
      schema: this.schema,
      table: this.table,
      schemaVersion: this.#migration?.version ?? null,
      migrationsApplied: this.#migration?.applied ?? [],
      // Puts sent without the change-log step while nobody listened, and those of them that
      // found no row (someone listens now, or the id was deleted meanwhile) and were sent again
      // with the change-log step (this adapter, since open).
      quietPuts: this.#quietPuts,
      quietFallbacks: this.#quietFallbacks,
    };
  }

  /** `SELECT 1` within `probeTimeoutMs`; true when the server answers. Never throws. */
  async probe(): Promise<boolean> {
    if (this.#life.isClosed) return false;
    // Not open (the router probes before choosing a tier): a one-off connection, no pool.
    const lease = this.#lease;
    return probe(this.#options, lease ? () => lease.pool.query("SELECT 1") : null);
  }

  async getRef(name: string): Promise<Ref | null> {
    this.#life.check();
    return this.#refs.get(name);
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    this.#life.check();
    return this.#refs.list(prefix);
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    this.#life.check();
    return this.#refs.reflog(name, limit);
  }

  /** One statement: the compare-and-set, the reflog row and its pruning (refs.ts). */
  setRef(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    // Not async: the compare-and-set's promise is handed back as refs.ts makes it.
    try {
      this.#life.check();
      return this.#refs.set(name, target, expect, move);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async deleteRef(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    this.#life.check();
    return this.#refs.delete(name, expect, move);
  }

  /** Puts, deletes and ref moves in one database transaction on one pooled connection: all or nothing. */
  async commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    this.#life.check();
    return this.#refs.commit(ops, move);
  }

  /** One statement per call (queries.ts); `deleteMany` is one statement, so all or nothing. */
  async query(q: ResolvedQuery): Promise<Datum[] | DatumHeader[]> {
    this.#life.check();
    return this.#queries.query(q);
  }

  /** An ids page from the tags index where it answers the filters (queries.ts `queryIds`). */
  async queryIds(q: ResolvedQuery): Promise<IdPage> {
    this.#life.check();
    return this.#queries.queryIds(q);
  }

  async count(q: ResolvedQuery): Promise<number> {
    this.#life.check();
    return this.#queries.count(q);
  }

  async getMany(ids: readonly string[]): Promise<Array<Datum | null>> {
    this.#life.check();
    return this.#queries.getMany(ids);
  }

  async deleteMany(q: ResolvedQuery): Promise<string[]> {
    this.#life.check();
    return this.#queries.deleteMany(q);
  }

  async chainTail(id: string, n: number): Promise<Datum[]> {
    this.#life.check();
    return this.#queries.chainTail(id, n);
  }

  /** After a committed change: one NOTIFY for a burst of them, outside the write (notify.ts). */
  #announce(): void {
    if (this.#options.notify) this.#lease?.notifications.announce(this.#ids.channel, this.#ids.changes, this.#listenersProbe);
  }

  /**
   * Whether the table has a listener row (notify.ts `#heard`), on the pool of the lease held when
   * the announcement was made (a close lets the announcements in flight finish before it ends
   * that pool).
   */
  #listenersProbe: ListenersProbe = () => Promise.resolve(true);
  #askListenersNow: () => void = () => undefined;
  /**
   * The last answer to "does the listeners table have a row?" (`heard`, null before the first),
   * when it was asked (`performance.now()`), and the question in flight: what the quiet put
   * (`#nobodyListens`) and the announcer (`#listenersProbe`) both go by.
   */
  #listeners: { heard: boolean | null; at: number; asking: Promise<boolean> | null } = { heard: null, at: Number.NEGATIVE_INFINITY, asking: null };
  #quietPuts = 0;
  #quietFallbacks = 0;

  #pool(): pg.Pool {
    return (this.#lease as PoolLease).pool;
  }

  async #connect(pool: pg.Pool, op: string): Promise<pg.PoolClient> {
    try {
      return await pool.connect();
    } catch (error) {
      throw this.#wrap(error, `${op} on ${this.#ids.label} (connecting to ${this.redactedUrl})`);
    }
  }

  async #run<R extends pg.QueryResultRow>(stmt: Statement, values: unknown[], op: string, subject: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool().query<R>({ name: stmt.name, text: stmt.text, values });
    } catch (error) {
      throw this.#wrap(error, `${op} ${JSON.stringify(subject)} on ${this.#ids.label}`);
    }
  }

  #wrap(error: unknown, what: string) {
    return wrapPgError(error, this.name, what, this.#secrets);
  }

  #metadataJson(d: Datum): string {
    const json = JSON.stringify(d.metadata);
    // JSON.stringify writes U+0000 and lone surrogates as \u escapes (nothing else does): only
    // then look at each key and value, to name the one Postgres would refuse.
    if (!JSON_SUSPECT.test(json)) return json;
    const m = d.metadata;
    for (const key in m) {
      if (!Object.hasOwn(m, key)) continue;
      if (storable(key) && storable(m[key] as string)) continue;
      throw dgentError(
        "DGENT_INVALID_METADATA",
        `${this.name}: metadata ${JSON.stringify(key)} of datum ${JSON.stringify(d.id)} holds U+0000 or a lone surrogate, which Postgres JSONB cannot store`,
        { unit: this.name, details: { id: d.id, key } },
      );
    }
    return json;
  }
}

/** In a JSON text: the escape of U+0000 or of a surrogate (JSON.stringify escapes only lone ones). */
const JSON_SUSPECT = /\\u(?:0000|d[89a-f])/;
