/**
 * Refs and transactions on the Postgres tiers: the `<table>_refs` and `<table>_reflog` tables
 * (migration 3). A compare-and-set is one statement — one round trip, atomic by itself — whose
 * row count decides: the conditional `UPDATE … WHERE name = $ AND version = $expected` (or
 * `target = $expected`), an insert that only succeeds where the ref does not exist (the unique
 * index decides between two creators). Under READ COMMITTED a writer that finds the row locked
 * waits, then re-checks its condition against the row as the other committed it (Postgres's
 * re-check of updated rows), so of two writers expecting the same version exactly one moves the
 * ref. The same statement records the move in its slot of the ref's reflog ring (replacing the
 * move that falls out of the limit). When nothing moved, a fresh read of the ref says why.
 *
 * A transaction (`commit`) is `BEGIN`, its operations on one pooled connection, then `COMMIT`;
 * any failure rolls it all back. Puts and compare-and-sets (by version or target) of distinct ids
 * and names — the common shape: "append these datums and move the head to the last" — are one
 * statement (`oneStatementTx`): three round trips whatever the number of operations. The commit
 * stays a message of its own, so a writer that dies before sending it leaves nothing. That
 * statement fails whole (SQLSTATE 22012) when any part of it does not check out; the transaction
 * is then run again the general way, one statement per operation, which says why or, if a
 * concurrent writer changed things meanwhile, commits. The general way's puts use the tier's put
 * statement (with its change log row, which exists only if the transaction commits; announced
 * after the commit); both ways lock the row a put compares with, so the answer stays true until
 * the commit.
 */
import type pg from "pg";
import type { Datum } from "../../core/datum.js";
import { dgentError, type DgentError } from "../../core/errors.js";
import { REFLOG_LIMIT, meets, refConflict, type Ref, type RefExpectation, type RefMove, type ReflogEntry, type TxOp, type TxOpResult, type TxResult } from "../../core/refs.js";
import { conflictError } from "../../core/tiers.js";
import { COLUMNS } from "./rows.js";
import { BATCH_PARAMS, BATCH_RECHECK, INSERTED, keptInStep, prefixUpperBound, putStatement, statement, type Identifiers, type Statement, type Statements } from "./sql.js";

/** What the refs need from the adapter. */
export interface PgRefsHost {
  /** The tier's name: the error unit. */
  readonly name: string;
  readonly ids: Identifiers;
  /** The adapter's statements: `put` and `delete` are reused in transactions. */
  readonly sql: Statements;
  readonly notify: boolean;
  pool(): pg.Pool;
  wrap(error: unknown, what: string): DgentError;
  /** The datum's metadata as JSON, refusing what JSONB cannot store. */
  metadataJson(datum: Datum): string;
  /** Announces committed changes (notify.ts). */
  announce(): void;
}

/** How often a statement that lost a race it cannot decide (a concurrent create or delete) is sent again. */
const RACE_ATTEMPTS = 8;
/** How often a transaction that Postgres aborted as a deadlock victim is run again. */
const TX_ATTEMPTS = 4;
const DEADLOCK = "40P01";

/** What a move expects, as the statements are chosen: each kind has its own (see `refStatements`). */
type Kind = "any" | "version" | "target" | "absent";

export interface RefStatements {
  readonly get: Statement;
  readonly listAll: Statement;
  readonly listRange: Statement;
  readonly listFrom: Statement;
  readonly reflog: Statement;
  /** By expectation. Params: name, target, at, by[, the expected version or target]. One row (`moved`, the new version) when it moved. */
  readonly set: Readonly<Record<Kind, Statement>>;
  /**
   * The compare-and-set by version as `set.version` does it, answering with its row count alone
   * (1 when it moved, to the expected version + 1): no row to describe, send and parse. Params:
   * name, target, at, by, the expected version.
   */
  readonly casVersion: Statement;
  /** By expectation (absence needs none: nothing to delete). Params: name, at, by[, the expected version or target]. One row when it deleted. */
  readonly delete: Readonly<Record<Exclude<Kind, "absent">, Statement>>;
  /** Params: id, content, parent, metadata JSON. One row (`same`) when the id exists; the row is locked until the transaction ends. */
  readonly sameAsLocked: Statement;
}

function kindOf(expect: RefExpectation | undefined): Kind {
  if (expect === undefined) return "any";
  if ("version" in expect) return "version";
  if ("target" in expect) return "target";
  return "absent";
}

/** The expected value: the last parameter of a version or target statement. */
function expected(expect: RefExpectation | undefined): unknown[] {
  if (expect === undefined || "absent" in expect) return [];
  return "version" in expect ? [expect.version] : [expect.target];
}

/**
 * Every statement of refs. Each kind of expectation has its own statement rather than one taking
 * the kind as a parameter: Postgres then plans each once per connection and reuses the plan (a
 * statement whose conditions fold away for some parameters keeps being planned again).
 *
 * A deleted ref keeps its row with a NULL target (a tombstone; its reflog stays too), so every
 * move of a name — re-creation included — updates one row under its row lock. That row carries
 * the seq of the ref's newest reflog row (`log_seq`): a move numbers its reflog row under the
 * lock that orders the moves. A reflog row holds where a move went (`to_target`); where it came
 * from is where the move before it went, so the reflog keeps `REFLOG_LIMIT + 1` rows, the
 * oldest only to say where the oldest one shown came from: a ring of that many slots per ref
 * (migration 6), move `seq` in slot `seq % (REFLOG_LIMIT + 1)`, each move one upsert that
 * replaces the move that falls out (`ringWrite`), in the same statement as the ref's update.
 */
export function refStatements(ids: Identifiers): RefStatements {
  const { refs: r, reflog: l, table: t } = ids;
  const cols = "name, target, version::float8 AS version, updated_at";
  const live = "target IS NOT NULL";
  // `moved`: at most one row of (version, seq, to_target).
  const record = (at: string, by: string) => `logged AS (${ringWrite(l, "$1::text", `moved`, at, by)})
      SELECT version::float8 AS moved FROM moved`;
  const statementOf = (moved: string, at: string, by: string) => statement(`WITH moved AS (${moved}),\n      ${record(at, by)}`);
  const returning = (to: string) => `RETURNING r.version, r.log_seq AS seq, ${to} AS to_target`;
  // Set: $1 name, $2 target, $3 at, $4 by, $5 the expected version or target.
  const moveTo = `target = $2::text, updated_at = $3::float8, log_seq = r.log_seq + 1`;
  const byVersion = `UPDATE ${r} AS r SET ${moveTo}, version = r.version + 1 WHERE r.name = $1::text AND r.version = $5::bigint AND r.${live} ${returning("r.target")}`;
  // Creation: a new row, or the tombstone of the name (whose reflog goes on).
  const create = (condition: string) => `INSERT INTO ${r} AS r (name, target, version, updated_at, log_seq)
        SELECT $1::text, $2::text, 1, $3::float8, 1${condition}
        ON CONFLICT (name) DO UPDATE SET target = excluded.target, version = 1, updated_at = excluded.updated_at, log_seq = r.log_seq + 1
        WHERE r.target IS NULL
        ${returning("r.target")}`;
  // Delete: $1 name, $2 at, $3 by, $4 the expected version or target.
  const bury = `target = NULL, updated_at = $2::float8, log_seq = r.log_seq + 1`;
  return {
    get: statement(`SELECT ${cols} FROM ${r} WHERE name = $1 AND ${live}`),
    listAll: statement(`SELECT ${cols} FROM ${r} WHERE ${live} ORDER BY name`),
    listRange: statement(`SELECT ${cols} FROM ${r} WHERE name >= $1 AND name < $2 AND ${live} ORDER BY name`),
    listFrom: statement(`SELECT ${cols} FROM ${r} WHERE name >= $1 AND ${live} ORDER BY name`),
    // One row more than asked: the one before the oldest asked says where that one came from.
    reflog: statement(`SELECT seq::float8 AS seq, to_target, version::float8 AS version, at, moved_by FROM ${l} WHERE name = $1 ORDER BY seq DESC LIMIT $2::int + 1`),
    set: {
      version: statementOf(byVersion, "$3", "$4"),
      target: statementOf(`UPDATE ${r} AS r SET ${moveTo}, version = r.version + 1 WHERE r.name = $1::text AND r.target = $5::text ${returning("r.target")}`, "$3", "$4"),
      absent: statementOf(create(""), "$3", "$4"),
      // Unconditional: the row is locked first, so that moves racing with this one cannot starve it.
      any: statement(`WITH cur AS (SELECT name, target FROM ${r} WHERE name = $1::text FOR UPDATE),
      upd AS (
        UPDATE ${r} AS r SET ${moveTo}, version = CASE WHEN cur.target IS NULL THEN 1 ELSE r.version + 1 END
        FROM cur WHERE r.name = cur.name
        ${returning("r.target")}
      ),
      ins AS (${create(" WHERE NOT EXISTS (SELECT 1 FROM cur)")}),
      moved AS (SELECT * FROM upd UNION ALL SELECT * FROM ins),
      ${record("$3", "$4")}`),
    },
    // The reflog's upsert is the statement: its row count is the move's (one row when it moved).
    casVersion: statement(`WITH moved AS (${byVersion})\n      ${ringWrite(l, "$1::text", "moved", "$3", "$4")}`),
    delete: {
      any: statement(`WITH cur AS (SELECT name FROM ${r} WHERE name = $1::text FOR UPDATE),
      moved AS (UPDATE ${r} AS r SET ${bury} FROM cur WHERE r.name = cur.name AND r.${live} ${returning("NULL::text")}),
      ${record("$2", "$3")}`),
      version: statementOf(`UPDATE ${r} AS r SET ${bury} WHERE r.name = $1::text AND r.version = $4::bigint AND r.${live} ${returning("NULL::text")}`, "$2", "$3"),
      target: statementOf(`UPDATE ${r} AS r SET ${bury} WHERE r.name = $1::text AND r.target = $4::text ${returning("NULL::text")}`, "$2", "$3"),
    },
    sameAsLocked: statement(
      `SELECT (cur.content = $2::bytea AND cur.causal_parent IS NOT DISTINCT FROM $3::text AND cur.metadata = $4::jsonb) AS same
       FROM ${t} AS cur WHERE cur.id = $1 FOR SHARE`,
    ),
  };
}

/** Slots of each ref's reflog ring: the newest `REFLOG_LIMIT` moves and the one before them (migration 6). */
const RING = REFLOG_LIMIT + 1;

/**
 * The reflog row of the move `moved` returns (version, seq, to_target): move `seq` goes to slot
 * `seq % RING` of the ref's ring, replacing the move `RING` before it, in one upsert.
 */
function ringWrite(l: string, name: string, moved: string, at: string, by: string): string {
  return `INSERT INTO ${l} (name, slot, seq, to_target, version, at, moved_by)
        SELECT ${name}, (seq % ${RING})::int, seq, to_target, version, ${at}::float8, ${by}::text FROM ${moved}
        ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, to_target = excluded.to_target, version = excluded.version, at = excluded.at, moved_by = excluded.moved_by`;
}

/** The most operations a one-statement transaction takes (more go the general way). */
const ONE_STATEMENT_MAX = 16;

/** The shape of a one-statement transaction: its puts, then its compare-and-sets by kind. */
interface TxShape {
  readonly puts: number;
  readonly refs: readonly ("version" | "target")[];
}

/**
 * One statement for a transaction of `shape.puts` puts of distinct ids and compare-and-sets of
 * distinct refs. Params: BATCH_PARAMS per put (id, content, createdAt, parent, metadata JSON),
 * then per ref its name, target and the expected version or target, then (with refs) at and by.
 * Every put must insert its row or find one equal to it (locked `FOR SHARE` until the commit, as
 * the general way does), and every ref must move; otherwise the statement divides by zero
 * (SQLSTATE 22012) and nothing of it stays. Returns one row: `v1`, `v2`, … the refs' new versions.
 * Each ref's move writes its reflog slot, as `setRef` does.
 */
export function oneStatementTx(ids: Identifiers, shape: TxShape): Statement {
  const { table: t, refs: r, reflog: l } = ids;
  const p = (n: number) => `$${n}`;
  const rows: string[] = [];
  for (let i = 0; i < shape.puts; i++) {
    const b = i * BATCH_PARAMS;
    rows.push(`(${p(b + 1)}::text, ${p(b + 2)}::bytea, ${p(b + 3)}::float8, ${p(b + 4)}::text, ${p(b + 5)}::jsonb)`);
  }
  const base = shape.puts * BATCH_PARAMS;
  // at and by only when there are refs to move.
  const at = p(base + shape.refs.length * 3 + 1);
  const by = p(base + shape.refs.length * 3 + 2);
  const ctes: string[] = [];
  const checks: string[] = [];
  if (shape.puts > 0) {
    ctes.push(`input(${COLUMNS}) AS (VALUES ${rows.join(", ")})`);
    ctes.push(`ins AS (
        INSERT INTO ${t} AS t (${COLUMNS}) SELECT ${COLUMNS} FROM input ORDER BY id COLLATE "C"
        ON CONFLICT (id) DO NOTHING ${INSERTED}
      )`);
    ctes.push(keptInStep(ids));
    // The rows that were there before: equal to the input, and held until the commit.
    ctes.push(`held AS (
        SELECT cur.id FROM ${t} AS cur JOIN input i ON i.id = cur.id
        WHERE cur.content = i.content AND cur.causal_parent IS NOT DISTINCT FROM i.causal_parent AND cur.metadata = i.metadata
        FOR SHARE OF cur
      )`);
    checks.push(`(SELECT count(*) FROM ins) + (SELECT count(*) FROM held) = ${shape.puts}`);
  }
  const versions: string[] = [];
  shape.refs.forEach((kind, k) => {
    const name = `${p(base + k * 3 + 1)}::text`;
    const target = `${p(base + k * 3 + 2)}::text`;
    const condition = kind === "version" ? `r.version = ${p(base + k * 3 + 3)}::bigint AND r.target IS NOT NULL` : `r.target = ${p(base + k * 3 + 3)}::text`;
    ctes.push(`m${k} AS (
        UPDATE ${r} AS r SET target = ${target}, updated_at = ${at}::float8, log_seq = r.log_seq + 1, version = r.version + 1
        WHERE r.name = ${name} AND ${condition}
        RETURNING r.version, r.log_seq AS seq, r.target AS to_target
      )`);
    ctes.push(`l${k} AS (${ringWrite(l, name, `m${k}`, at, by)})`);
    checks.push(`EXISTS (SELECT 1 FROM m${k})`);
    versions.push(`(SELECT version FROM m${k})::float8 AS v${k + 1}`);
  });
  const ok = `1 / (CASE WHEN ${checks.join(" AND ")} THEN 1 ELSE 0 END) AS ok`;
  return statement(`WITH ${ctes.join(",\n      ")}\n      SELECT ${[ok, ...versions].join(", ")}`);
}

/** The shape of `ops` if one statement can commit them: puts of distinct ids, compare-and-sets of distinct refs. */
function shapeOf(ops: readonly TxOp[]): TxShape | null {
  if (ops.length === 0 || ops.length > ONE_STATEMENT_MAX) return null;
  let puts = 0;
  const refs: ("version" | "target")[] = [];
  const ids = new Set<string>();
  const names = new Set<string>();
  for (const op of ops) {
    if (op.op === "put") {
      // Puts first: the results keep the order of the operations, the statement its own.
      if (refs.length > 0 || ids.has(op.datum.id)) return null;
      ids.add(op.datum.id);
      puts++;
    } else if (op.op === "setRef" && op.expect !== undefined && !("absent" in op.expect) && !names.has(op.name)) {
      names.add(op.name);
      refs.push("version" in op.expect ? "version" : "target");
    } else {
      return null;
    }
  }
  return { puts, refs };
}

interface RefRow {
  name: string;
  target: string;
  version: number;
  updated_at: number;
}

/** Something that runs a statement: the pool (autocommit) or a transaction's client. */
type Runner = Pick<pg.Pool, "query">;

const toRef = (row: RefRow): Ref => ({ name: row.name, target: row.target, version: row.version, updatedAt: row.updated_at });

/** A datum's content as a Buffer over the same bytes (pg sends a Buffer as a binary parameter). */
function toBuffer(content: Uint8Array): Buffer {
  return Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
}

/** The SQLSTATE under a wrapped driver error. */
function sqlState(error: unknown): unknown {
  return (error as { cause?: { code?: unknown } }).cause?.code;
}

/** The id range of a prefix that ends in the high half of a surrogate pair; null when no id can start with it. */
function surrogateRange(prefix: string): [string, string | null] | null {
  const high = prefix.charCodeAt(prefix.length - 1);
  const head = prefix.slice(0, -1);
  if (high < 0xd800 || high > 0xdbff || !head.isWellFormed()) return null;
  const first = 0x10000 + ((high - 0xd800) << 10);
  return [head + String.fromCodePoint(first), prefixUpperBound(head + String.fromCodePoint(first + 0x3ff))];
}

export class PgRefs {
  readonly #host: PgRefsHost;
  readonly #s: RefStatements;
  /** One-statement transactions by shape (`shapeOf`). */
  readonly #oneStatement = new Map<string, Statement>();

  constructor(host: PgRefsHost) {
    this.#host = host;
    this.#s = refStatements(host.ids);
  }

  async get(name: string): Promise<Ref | null> {
    return this.#get(this.#host.pool(), name);
  }

  async list(prefix: string): Promise<Ref[]> {
    const what = `listRefs ${JSON.stringify(prefix)}`;
    const pool = this.#host.pool();
    let range: [string, string | null] | null;
    if (prefix === "") range = null;
    else if (prefix.isWellFormed()) range = [prefix, prefixUpperBound(prefix)];
    else {
      range = surrogateRange(prefix);
      if (range === null) return [];
    }
    const r =
      range === null
        ? await this.#run<RefRow>(pool, this.#s.listAll, [], what)
        : range[1] === null
          ? await this.#run<RefRow>(pool, this.#s.listFrom, [range[0]], what)
          : await this.#run<RefRow>(pool, this.#s.listRange, range, what);
    return r.rows.map(toRef);
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    const r = await this.#run<{ seq: number; to_target: string | null; version: number; at: number; moved_by: string }>(
      this.#host.pool(),
      this.#s.reflog,
      [name, limit],
      `reflog ${JSON.stringify(name)}`,
    );
    const rows = r.rows;
    const out: ReflogEntry[] = [];
    for (let i = 0; i < rows.length && i < limit; i++) {
      const row = rows[i] as (typeof rows)[number];
      const before = rows[i + 1];
      // Where the move before this one went; the first move of a name came from nowhere.
      const from = before !== undefined && before.seq === row.seq - 1 ? before.to_target : null;
      out.push({ name, from, to: row.to_target, version: row.version, at: row.at, by: row.moved_by });
    }
    return out;
  }

  /**
   * One statement, autocommit. By version (the hot path) the statement answers with its row count
   * and the promise is the driver's own, carried on once: no async frames in between.
   */
  set(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    const pool = this.#host.pool();
    if (expect === undefined || !("version" in expect)) return this.#set(pool, name, target, expect, move, false);
    const stmt = this.#s.casVersion;
    const version = expect.version;
    return pool.query({ name: stmt.name, text: stmt.text, values: [name, target, move.at, move.by, version] }).then(
      (r) => (r.rowCount === 1 ? { name, target, version: version + 1, updatedAt: move.at } : this.#set(pool, name, target, expect, move, true)),
      (error: unknown) => {
        throw this.#host.wrap(error, `setRef ${JSON.stringify(name)} on ${this.#host.ids.label}`);
      },
    );
  }

  /** One statement, autocommit. */
  async delete(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    return this.#delete(this.#host.pool(), name, expect, move);
  }

  /** `BEGIN`, the operations in order, `COMMIT`; all or nothing. A deadlock victim is run again. */
  async commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    // Refuse what Postgres cannot store before taking a connection.
    const metadata = ops.map((op) => (op.op === "put" ? this.#host.metadataJson(op.datum) : null));
    const shape = shapeOf(ops);
    if (shape !== null) {
      try {
        return await this.#commitOnce(ops, metadata, move, shape);
      } catch (error) {
        // Something did not check out, or a deadlock: nothing was changed; go the general way.
        if (sqlState(error) !== BATCH_RECHECK && sqlState(error) !== DEADLOCK) throw error;
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#commitOnce(ops, metadata, move, null);
      } catch (error) {
        if (sqlState(error) !== DEADLOCK || attempt >= TX_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * The operations as one statement (`oneStatementTx`) on the transaction's client. It fails
   * with SQLSTATE 22012 when some part did not check out: nothing of it stays.
   */
  async #inOne(client: pg.PoolClient, ops: readonly TxOp[], shape: TxShape, metadata: readonly (string | null)[], move: RefMove): Promise<TxOpResult[]> {
    const host = this.#host;
    const key = `${shape.puts}:${shape.refs.join(",")}`;
    let stmt = this.#oneStatement.get(key);
    if (stmt === undefined) {
      stmt = oneStatementTx(host.ids, shape);
      if (this.#oneStatement.size < 256) this.#oneStatement.set(key, stmt);
    }
    const params: unknown[] = [];
    for (const [i, op] of ops.entries()) {
      if (op.op === "put") params.push(op.datum.id, toBuffer(op.datum.content), op.datum.createdAt, op.datum.causalParent, metadata[i]);
      else if (op.op === "setRef") params.push(op.name, op.target, ...expected(op.expect));
    }
    if (shape.refs.length > 0) params.push(move.at, move.by);
    const r = await this.#run<Record<string, number>>(client, stmt, params, `commit of ${ops.length} operations`);
    const row = r.rows[0] as Record<string, number>;
    const results: TxOpResult[] = [];
    let k = 0;
    for (const op of ops) {
      if (op.op === "put") results.push({ op: "put", id: op.datum.id });
      else if (op.op === "setRef") results.push({ op: "setRef", ref: { name: op.name, target: op.target, version: row[`v${++k}`] as number, updatedAt: move.at } });
    }
    return results;
  }

  /** One try: `BEGIN`, the operations (as one statement when `shape` says they can be), `COMMIT`. */
  async #commitOnce(ops: readonly TxOp[], metadata: readonly (string | null)[], move: RefMove, shape: TxShape | null): Promise<TxResult> {
    const host = this.#host;
    let client: pg.PoolClient;
    try {
      client = await host.pool().connect();
    } catch (error) {
      throw host.wrap(error, `commit on ${host.ids.label} (connecting)`);
    }
    const swallow = () => undefined;
    client.on("error", swallow);
    let broken: Error | undefined;
    try {
      await this.#run(client, { name: "", text: "BEGIN" }, null, "commit (BEGIN)");
      const results: TxOpResult[] = shape === null ? [] : await this.#inOne(client, ops, shape, metadata, move);
      for (const [i, op] of (shape === null ? ops : []).entries()) {
        switch (op.op) {
          case "put":
            await this.#put(client, op.datum, metadata[i] as string);
            results.push({ op: "put", id: op.datum.id });
            break;
          case "delete": {
            const r = await this.#run(client, host.sql.delete, [op.id], `commit: delete ${JSON.stringify(op.id)}`);
            results.push({ op: "delete", id: op.id, existed: r.rowCount === 1 });
            break;
          }
          case "setRef":
            results.push({ op: "setRef", ref: await this.#set(client, op.name, op.target, op.expect, move, false) });
            break;
          case "deleteRef":
            results.push({ op: "deleteRef", name: op.name, existed: await this.#delete(client, op.name, op.expect, move) });
            break;
        }
      }
      await this.#run(client, { name: "", text: "COMMIT" }, null, "commit (COMMIT)");
      if (ops.some((op) => op.op === "put" || op.op === "delete")) host.announce();
      return { results };
    } catch (error) {
      await client.query("ROLLBACK").catch((e: Error) => {
        broken = e;
      });
      throw host.wrap(error, `commit of ${ops.length} operations on ${host.ids.label}`);
    } finally {
      client.off("error", swallow);
      client.release(broken);
    }
  }

  /** Inserts the datum, or compares it with the stored one, which stays locked until the commit. */
  async #put(client: pg.PoolClient, datum: Datum, metadata: string): Promise<void> {
    const host = this.#host;
    const content = toBuffer(datum.content);
    const params: unknown[] = [datum.id, content, datum.createdAt, datum.causalParent, metadata];
    const what = `commit: put ${JSON.stringify(datum.id)}`;
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      const r = await this.#run(client, putStatement(host.sql, metadata, false), params, what);
      if (r.rowCount) return;
      const again = await this.#run<{ same: boolean }>(client, this.#s.sameAsLocked, [datum.id, content, datum.causalParent, metadata], what);
      const same = again.rows[0]?.same;
      if (same === true) return;
      if (same === false) throw conflictError(datum.id, host.name);
      // Deleted since the insert looked: insert again.
    }
    throw this.#raced(what);
  }

  async #get(runner: Runner, name: string): Promise<Ref | null> {
    const r = await this.#run<RefRow>(runner, this.#s.get, [name], `getRef ${JSON.stringify(name)}`);
    const row = r.rows[0];
    return row === undefined ? null : toRef(row);
  }

  /**
   * Sends the statement; when it moved nothing, reads the ref to say why. A ref that meets the
   * expectation by then (it was created, deleted or moved back meanwhile) is asked again.
   * `tried`: the first try was sent already and moved nothing (`set` by version).
   */
  async #set(runner: Runner, name: string, target: string, expect: RefExpectation | undefined, move: RefMove, tried: boolean): Promise<Ref> {
    const what = `setRef ${JSON.stringify(name)}`;
    const stmt = this.#s.set[kindOf(expect)];
    const params = [name, target, move.at, move.by, ...expected(expect)];
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      const moved = tried && attempt === 0 ? null : await this.#move(runner, stmt, params, what);
      if (moved !== null) return { name, target, version: moved, updatedAt: move.at };
      const current = await this.#get(runner, name);
      if (!meets(current, expect)) throw refConflict(name, expect, current, this.#host.name);
    }
    throw this.#raced(what);
  }

  async #delete(runner: Runner, name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    const what = `deleteRef ${JSON.stringify(name)}`;
    const kind = kindOf(expect);
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      if (kind !== "absent") {
        const moved = await this.#move(runner, this.#s.delete[kind], [name, move.at, move.by, ...expected(expect)], what);
        if (moved !== null) return true;
      }
      const current = await this.#get(runner, name);
      if (current === null && (kind === "any" || kind === "absent")) return false;
      if (!meets(current, expect)) throw refConflict(name, expect, current, this.#host.name);
    }
    throw this.#raced(what);
  }

  /** One move statement: the version it moved to (set) or deleted (delete), or null when its condition did not hold. */
  async #move(runner: Runner, stmt: Statement, params: unknown[], what: string): Promise<number | null> {
    const r = await this.#run<{ moved: number }>(runner, stmt, params, what);
    return r.rows[0]?.moved ?? null;
  }

  #raced(what: string): DgentError {
    const unit = this.#host.name;
    return dgentError("DGENT_UNAVAILABLE", `${unit}: ${what} kept racing with concurrent moves of the ref; retry`, { unit, retryable: true });
  }

  /** Runs a prepared statement, or with `values` null a plain one (BEGIN, COMMIT: the simple protocol, one message). */
  async #run<R extends pg.QueryResultRow>(runner: Runner, stmt: Statement, values: unknown[] | null, what: string): Promise<pg.QueryResult<R>> {
    try {
      return await (values === null ? runner.query<R>(stmt.text) : runner.query<R>({ name: stmt.name, text: stmt.text, values }));
    } catch (error) {
      throw this.#host.wrap(error, `${what} on ${this.#host.ids.label}`);
    }
  }
}
