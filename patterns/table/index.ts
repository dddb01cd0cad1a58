/**
 * The table bridge (seed 002, pattern 1): the rows of an application's existing SQL table, on
 * SQLite or Postgres through the drivers dgent already uses, as datums. A row becomes a datum whose
 * id is `<idPrefix><primary key>`, whose content is the row as JSON, whose `createdAt` comes from a
 * column you name (else 0), and whose metadata records where it came from (`source`,
 * `table`) plus the columns you choose as tags. It is an `Adapter`, so a store over it answers
 * `get`, `list`, `query`, `count`, `getMany`, `causalChain` like any tier.
 *
 * Laws (patterns/table/README.md): **round trip** — `rowOf(datumOf(row))` is the row, and with
 * writes allowed `put(get(id))` is a no-op and `get(put(d))` is `d`; **isolation** — unless
 * `writable: true`, nothing written through dgent touches the table: `put` and `delete` are
 * refused with `DGENT_UNSUPPORTED` and the table is never written.
 */
import { importOptional } from "../../core/adapter-support.js";
import type { Datum } from "../../core/datum.js";
import { conflictError, dgentError } from "../../core/errors.js";
import { sameValue } from "../../core/datum.js";
import { Lifecycle } from "../../core/lifecycle.js";
import { compareNewestFirst } from "../../core/order.js";
import type { Adapter, AdapterStats, Capabilities, ResolvedListOptions } from "../../core/protocol.js";

/** A value of a row as JSON holds it: bytes as `{ "$bytes": base64 }`, a date as its ISO string. */
export type RowValue = string | number | boolean | null | { readonly $bytes: string };
export type Row = Readonly<Record<string, RowValue>>;

interface Common {
  /** The table (letters, digits and `_`; `schema.table` on Postgres). */
  readonly table: string;
  /** Its primary key column (one column). */
  readonly primaryKey: string;
  /** Prepended to the key to make the datum id (default `"<table>/"`). */
  readonly idPrefix?: string;
  /** A column holding the row's creation time (epoch ms, ISO text or a timestamp); absent: 0. */
  readonly createdAt?: string;
  /** Columns copied into metadata as strings (tags a query can filter on). */
  readonly tags?: readonly string[];
  /** Allow `put` and `delete` to write the table (default false: the isolation law). */
  readonly writable?: boolean;
  /** The adapter's name (default `"table-<table>"`). */
  readonly name?: string;
}

export type TableOptions =
  | (Common & { readonly driver: "sqlite"; /** The database file. */ readonly path: string })
  | (Common & { readonly driver: "postgres"; /** A postgres:// URL. */ readonly url: string });

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function quote(name: string, what: string): string {
  const parts = name.split(".");
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw dgentError("DGENT_INVALID_OPTIONS", `table bridge: ${what} ${JSON.stringify(name)} must be letters, digits and "_" (schema.table for a table)`, { details: { [what]: name } });
  }
  return parts.map((p) => `"${p}"`).join(".");
}

/** The row as stored values become JSON values (bytes as `$bytes`, dates as ISO text, bigints as text). */
function toJsonValue(value: unknown): RowValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
  return JSON.stringify(value); // json/jsonb columns and arrays on Postgres: kept as their JSON text
}

/** A JSON value back to what the driver writes. */
function toDriverValue(value: RowValue): unknown {
  if (value !== null && typeof value === "object") return Buffer.from(value.$bytes, "base64");
  return value;
}

function timeOf(value: unknown, column: string, table: string): number {
  if (value === null || value === undefined) return 0;
  const t = value instanceof Date ? value.getTime() : typeof value === "number" ? value : typeof value === "bigint" ? Number(value) : Date.parse(String(value));
  if (!Number.isFinite(t) || t < 0) {
    throw dgentError("DGENT_INVALID_DATUM", `table bridge: ${table}.${column} holds ${JSON.stringify(String(value))}, not a time`, { details: { table, column } });
  }
  return t;
}

/** The two drivers behind one small interface. */
interface Driver {
  open(): Promise<void>;
  close(): Promise<void>;
  one(sql: string, params: readonly unknown[]): Promise<Record<string, unknown> | undefined>;
  all(sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  run(sql: string, params: readonly unknown[]): Promise<number>;
  /** `$1`, `$2`… on Postgres, `?` on SQLite. */
  param(i: number): string;
}

interface SqliteDb {
  prepare(sql: string): { get(...p: unknown[]): unknown; all(...p: unknown[]): unknown[]; run(...p: unknown[]): { changes: number } };
  close(): void;
}

function sqliteDriver(path: string, writable: boolean): Driver {
  let db: SqliteDb | null = null;
  const ready = () => db as SqliteDb;
  return {
    async open() {
      const mod = await importOptional<{ default: new (p: string, o: object) => SqliteDb }>("better-sqlite3", "table");
      db = new mod.default(path, { readonly: !writable, fileMustExist: true });
    },
    async close() {
      db?.close();
      db = null;
    },
    one: async (sql, p) => ready().prepare(sql).get(...p) as Record<string, unknown> | undefined,
    all: async (sql, p) => ready().prepare(sql).all(...p) as Array<Record<string, unknown>>,
    run: async (sql, p) => ready().prepare(sql).run(...p).changes,
    param: () => "?",
  };
}

interface PgPool {
  query(sql: string, params: readonly unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
  end(): Promise<void>;
}

function postgresDriver(url: string, writable: boolean): Driver {
  let pool: PgPool | null = null;
  const ready = () => pool as PgPool;
  return {
    async open() {
      const mod = await importOptional<{ default: { Pool: new (o: object) => PgPool } }>("pg", "table");
      const options = writable ? "" : "-c default_transaction_read_only=on";
      pool = new mod.default.Pool({ connectionString: url, max: 4, ...(options ? { options } : {}) });
      await pool.query("SELECT 1", []);
    },
    async close() {
      await pool?.end();
      pool = null;
    },
    one: async (sql, p) => (await ready().query(sql, p)).rows[0],
    all: async (sql, p) => (await ready().query(sql, p)).rows,
    run: async (sql, p) => (await ready().query(sql, p)).rowCount ?? 0,
    param: (i) => `$${i}`,
  };
}

/** A table's rows as datums. */
export class TableAdapter implements Adapter {
  readonly name: string;
  /** A projection of someone else's data: local, below the tiers that own their datums. */
  readonly rank = 15;
  readonly capabilities: Capabilities;
  readonly table: string;
  readonly idPrefix: string;
  readonly #options: TableOptions;
  readonly #driver: Driver;
  readonly #life: Lifecycle;
  readonly #sql: { table: string; key: string; created: string | null };

  constructor(options: TableOptions) {
    if (options === null || typeof options !== "object") throw dgentError("DGENT_INVALID_OPTIONS", "table bridge: options must be an object");
    this.#options = options;
    this.table = options.table;
    this.#sql = {
      table: quote(options.table, "table"),
      key: quote(options.primaryKey, "primaryKey"),
      created: options.createdAt === undefined ? null : quote(options.createdAt, "createdAt"),
    };
    for (const tag of options.tags ?? []) quote(tag, "tags");
    this.idPrefix = options.idPrefix ?? `${options.table}/`;
    this.name = options.name ?? `table-${options.table.replace(/\./g, "-")}`;
    this.#life = new Lifecycle(this.name);
    const writable = options.writable === true;
    this.#driver = options.driver === "sqlite" ? sqliteDriver(options.path, writable) : postgresDriver(options.url, writable);
    this.capabilities = Object.freeze({ persistent: true, multiProcess: true, nativeCausalChain: false, batch: false, scan: true, evicts: false, projection: true });
  }

  open(): Promise<void> {
    return this.#life.open(() => this.#driver.open());
  }

  close(): Promise<void> {
    return this.#life.close(() => this.#driver.close());
  }

  /** The datum of a row (the round trip's first half). */
  datumOf(row: Readonly<Record<string, unknown>>): Datum {
    const o = this.#options;
    const json: Record<string, RowValue> = {};
    for (const [k, v] of Object.entries(row)) json[k] = toJsonValue(v);
    const metadata: Record<string, string> = { source: `table:${o.table}`, table: o.table };
    for (const tag of o.tags ?? []) {
      const v = json[tag];
      if (v !== null && v !== undefined) metadata[tag] = typeof v === "object" ? v.$bytes : String(v);
    }
    return {
      id: `${this.idPrefix}${String(json[o.primaryKey])}`,
      content: new TextEncoder().encode(JSON.stringify(json)),
      createdAt: o.createdAt === undefined ? 0 : timeOf(row[o.createdAt], o.createdAt, o.table),
      causalParent: null,
      metadata,
    };
  }

  /** The row of a datum (the round trip's second half): its content as JSON. */
  rowOf(datum: Datum): Row {
    let row: unknown;
    try {
      row = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(datum.content));
    } catch {
      throw dgentError("DGENT_INVALID_CONTENT", `table bridge: datum ${JSON.stringify(datum.id)} does not hold a row as JSON`, { unit: this.name, details: { id: datum.id } });
    }
    if (row === null || typeof row !== "object" || Array.isArray(row)) {
      throw dgentError("DGENT_INVALID_CONTENT", `table bridge: datum ${JSON.stringify(datum.id)} does not hold a row object`, { unit: this.name, details: { id: datum.id } });
    }
    return row as Row;
  }

  /**
   * `statement WHERE key = <key>` on the primary key's index. The key arrives as text: SQLite
   * applies the column's affinity to it, Postgres casts it to the column's type — and a key that
   * cannot be that type (`"abc"` for an integer key) matches no row (`null`).
   */
  async #byKey<T>(statement: string, key: string, run: (sql: string, params: readonly unknown[]) => Promise<T>): Promise<T | null> {
    try {
      return await run(`${statement} WHERE ${this.#sql.key} = ${this.#driver.param(1)}`, [key]);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "22P02" || code === "22003") return null; // invalid_text_representation, numeric_value_out_of_range
      throw error;
    }
  }

  #key(id: string): string | null {
    return id.startsWith(this.idPrefix) ? id.slice(this.idPrefix.length) : null;
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    const key = this.#key(id);
    if (key === null) return null;
    const row = await this.#byKey(`SELECT * FROM ${this.#sql.table}`, key, (sql, p) => this.#driver.one(sql, p));
    return row === undefined || row === null ? null : this.datumOf(row);
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    for (const row of await this.#driver.all(`SELECT * FROM ${this.#sql.table}`, [])) yield this.datumOf(row);
  }

  /** The protocol's order needs ids compared by code point, which SQL's key order is not: rows are read and sorted (O(table)). */
  async list(options: ResolvedListOptions): Promise<Datum[]> {
    const out: Datum[] = [];
    for await (const d of this.scan()) if (d.id.startsWith(options.prefix) && d.createdAt > options.after) out.push(d);
    return out.sort(compareNewestFirst).slice(0, options.limit);
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    const row = await this.#driver.one(`SELECT COUNT(*) AS n FROM ${this.#sql.table}`, []);
    return { count: Number(row?.n ?? 0), location: `${this.#options.driver} table ${this.#options.table}` };
  }

  #refuseWrite(op: string): never {
    throw dgentError("DGENT_UNSUPPORTED", `table bridge ${this.name}: ${op} would write the table ${this.table}, which is read-only here; pass writable: true to allow it`, {
      unit: this.name,
      details: { tier: this.name, capability: "writable" },
    });
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    if (this.#options.writable !== true) this.#refuseWrite("put");
    const key = this.#key(datum.id);
    if (key === null) {
      throw dgentError("DGENT_INVALID_ID", `table bridge ${this.name}: id ${JSON.stringify(datum.id)} does not start with ${JSON.stringify(this.idPrefix)}`, { unit: this.name });
    }
    const row = this.rowOf(datum);
    if (String(row[this.#options.primaryKey]) !== key) {
      throw dgentError("DGENT_INVALID_DATUM", `table bridge ${this.name}: the row's ${this.#options.primaryKey} is not the id's key ${JSON.stringify(key)}`, { unit: this.name });
    }
    const existing = await this.get(datum.id);
    if (existing) {
      if (sameValue(existing, { ...datum, metadata: existing.metadata })) return datum.id;
      throw conflictError(datum.id, this.name);
    }
    const columns = Object.keys(row);
    const names = columns.map((c) => quote(c, "column")).join(", ");
    const params = columns.map((_, i) => this.#driver.param(i + 1)).join(", ");
    await this.#driver.run(`INSERT INTO ${this.#sql.table} (${names}) VALUES (${params})`, columns.map((c) => toDriverValue(row[c] as RowValue)));
    return datum.id;
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    if (this.#options.writable !== true) this.#refuseWrite("delete");
    const key = this.#key(id);
    if (key === null) return false;
    return ((await this.#byKey(`DELETE FROM ${this.#sql.table}`, key, (sql, p) => this.#driver.run(sql, p))) ?? 0) > 0;
  }
}

/** A table's rows as datums (see `TableAdapter`). */
export function tableAdapter(options: TableOptions): TableAdapter {
  return new TableAdapter(options);
}
