import pg from "pg";
import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { bytes } from "./rows.js";
import { INSERTED, keptInStep, type Identifiers } from "./sql.js";

/**
 * `importDatums` of the Postgres tiers (core/protocol.ts): a bulk `putMany` for `dgent restore`.
 * One transaction on one connection: the datums go into a temporary staging table with one
 * binary `COPY`, then into the table with one `INSERT … SELECT … ON CONFLICT (id) DO NOTHING`,
 * in id order. Against `putMany`'s multi-row `VALUES` of 5 parameters a row this saves the
 * server the parameters' binding and the batch statement's checks (about half of its CPU per
 * datum, backup/README.md#speed). An id the table holds is left as it is: the call answers with
 * how many it stored and the ids held with a different value (the append-only law's comparison:
 * content, parent, metadata); it never overwrites.
 * The insert writes the new rows' tags and (while someone listens) their change-log rows in the
 * same statement, as the batch statement does (`keptInStep`), and the change is announced after
 * the commit when it stored anything (the announcement is sent only while someone listens).
 */

export interface BulkContext {
  readonly name: string;
  readonly ids: Identifiers;
  pool(): pg.Pool;
  wrap(error: unknown, what: string): Error;
  metadataJson(d: Datum): string;
  announce(): void;
}

/** The staging table: one per session, emptied at each commit (`ON COMMIT DELETE ROWS`). */
const STAGE = "pg_temp.dgent_import";
const COLUMNS = "id, content, created_at, causal_parent, metadata";
/** An insert whose conflicting row vanished (deleted concurrently) is run again this many times. */
const ATTEMPTS = 5;

export async function importDatums(ctx: BulkContext, datums: readonly Datum[]): Promise<{ stored: number; conflicts: string[] }> {
  if (datums.length === 0) return { stored: 0, conflicts: [] };
  const data = copyBinary(datums, datums.map((d) => ctx.metadataJson(d)));
  const t = ctx.ids.table;
  const same = `cur.content = s.content AND cur.causal_parent IS NOT DISTINCT FROM s.causal_parent AND cur.metadata = s.metadata`;
  const insert = `WITH ins AS (
       INSERT INTO ${t} AS t (${COLUMNS}) SELECT ${COLUMNS} FROM ${STAGE} ORDER BY id COLLATE "C"
       ON CONFLICT (id) DO NOTHING ${INSERTED}
     ),
     ${keptInStep(ctx.ids)}
     SELECT (SELECT count(*) FROM ins)::int AS inserted`;
  const what = () => `importDatums of ${datums.length} datums into ${ctx.ids.label}`;
  let client: pg.PoolClient;
  try {
    client = await ctx.pool().connect();
  } catch (error) {
    throw ctx.wrap(error, what());
  }
  const swallow = () => undefined;
  client.on("error", swallow);
  let broken: Error | undefined;
  try {
    // The staging table is made (when this session has none) inside the transaction, in the
    // same round trip as BEGIN: with PgBouncer in transaction pooling the next transaction may
    // run in another session. Its "already exists" notice is not sent.
    await client.query(
      `BEGIN; SET LOCAL client_min_messages = warning;
       CREATE TEMPORARY TABLE IF NOT EXISTS ${STAGE.slice("pg_temp.".length)} (
         id TEXT COLLATE "C", content BYTEA, created_at DOUBLE PRECISION, causal_parent TEXT COLLATE "C", metadata JSONB
       ) ON COMMIT DELETE ROWS`,
    );
    await copyIn(client, `COPY ${STAGE} (${COLUMNS}) FROM STDIN (FORMAT binary)`, data);
    let inserted = 0;
    let conflicts: string[] = [];
    for (let attempt = 1; ; attempt++) {
      const r = await client.query<{ inserted: number }>(insert);
      inserted += (r.rows[0] as { inserted: number }).inserted;
      if (inserted === datums.length) break;
      // Some ids were held: which of them differ, and whether any vanished since (deleted by
      // another transaction after the insert saw it).
      const check = await client.query<{ id: string; same: boolean | null }>(
        `SELECT s.id, CASE WHEN cur.id IS NULL THEN NULL ELSE (${same}) END AS same
         FROM ${STAGE} s LEFT JOIN ${t} cur ON cur.id = s.id
         WHERE cur.id IS NULL OR NOT (${same})`,
      );
      conflicts = check.rows.filter((c) => c.same === false).map((c) => c.id);
      if (check.rows.every((c) => c.same !== null)) break;
      if (attempt === ATTEMPTS) {
        throw dgentError("DGENT_UNAVAILABLE", `${ctx.name}: importDatums kept racing with concurrent deletes; retry`, { unit: ctx.name });
      }
    }
    await client.query("COMMIT");
    if (inserted > 0) ctx.announce();
    return { stored: inserted, conflicts };
  } catch (error) {
    await client.query("ROLLBACK").catch((e: Error) => {
      broken = e;
    });
    throw ctx.wrap(error, what());
  } finally {
    client.off("error", swallow);
    client.release(broken);
  }
}

const COPY_MESSAGE = 2 ** 20;

/** `text` (a `COPY … FROM STDIN`) with `data` as its whole input. */
function copyIn(client: pg.PoolClient, text: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const query = new CopyIn(text, data, (error) => (error ? reject(error) : resolve()));
    void client.query(query as unknown as pg.QueryConfig);
  });
}

interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * A `pg.Query` (a submittable, node-postgres's documented extension point for `client.query`)
 * that answers the server's CopyInResponse with the data and CopyDone, using the connection's
 * copy messages (the ones `pg-copy-streams` uses); the rest — errors, completion, the
 * callback — is the driver's own handling of a simple query.
 */
class CopyIn extends pg.Query {
  readonly #data: Buffer;
  constructor(text: string, data: Buffer, callback: (error: Error | null) => void) {
    super(text, undefined, callback as never);
    this.#data = data;
  }
  handleCopyInResponse(connection: CopyConnection): void {
    // In messages of at most 1 MiB (a CopyData message may not exceed 1 GB).
    for (let at = 0; at < this.#data.length; at += COPY_MESSAGE) connection.sendCopyFromChunk(this.#data.subarray(at, at + COPY_MESSAGE));
    connection.endCopyFrom();
  }
}

const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

/**
 * The rows in `COPY`'s binary format: the signature, flags and header extension; per row the
 * field count and each field as its length and bytes (text as UTF-8, bytea raw, float8 big
 * endian, jsonb as version 1 and its text; -1 for NULL); -1 at the end.
 */
export function copyBinary(datums: readonly Datum[], metadata: readonly string[]): Buffer {
  let size = SIGNATURE.length + 8 + 2;
  const idBytes = new Array<number>(datums.length);
  const parentBytes = new Array<number>(datums.length);
  const metaBytes = new Array<number>(datums.length);
  for (let i = 0; i < datums.length; i++) {
    const d = datums[i] as Datum;
    idBytes[i] = Buffer.byteLength(d.id);
    parentBytes[i] = d.causalParent === null ? -1 : Buffer.byteLength(d.causalParent);
    metaBytes[i] = Buffer.byteLength(metadata[i] as string);
    size += 2 + 4 * 5 + (idBytes[i] as number) + d.content.byteLength + 8 + Math.max(0, parentBytes[i] as number) + 1 + (metaBytes[i] as number);
  }
  const out = Buffer.allocUnsafe(size);
  let at = SIGNATURE.copy(out, 0);
  at = out.writeInt32BE(0, at);
  at = out.writeInt32BE(0, at);
  for (let i = 0; i < datums.length; i++) {
    const d = datums[i] as Datum;
    at = out.writeInt16BE(5, at);
    at = out.writeInt32BE(idBytes[i] as number, at);
    at += out.write(d.id, at, "utf8");
    at = out.writeInt32BE(d.content.byteLength, at);
    at += bytes(d.content).copy(out, at);
    at = out.writeInt32BE(8, at);
    at = out.writeDoubleBE(d.createdAt, at);
    const p = parentBytes[i] as number;
    at = out.writeInt32BE(p, at);
    if (p >= 0) at += out.write(d.causalParent as string, at, "utf8");
    at = out.writeInt32BE((metaBytes[i] as number) + 1, at);
    out[at++] = 1;
    at += out.write(metadata[i] as string, at, "utf8");
  }
  at = out.writeInt16BE(-1, at);
  return out.subarray(0, at);
}
