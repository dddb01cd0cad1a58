/** Which storage a store's vectors go to (README "Indexes and storage, per tier"). */
import { dgentError, isDgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";
import type { Metric } from "./exact.js";
import { PgvectorStorage } from "./pgvector.js";
import { SqliteVecStorage } from "./sqlite-vec.js";
import { DatumStorage, type StorageContext, type StorageKind, type VectorStorage } from "./storage.js";

const UNIT = "recall";

export interface StorageChoice {
  readonly storage: "auto" | StorageKind;
  readonly metric: Metric;
  readonly postgresUrl: string | null;
}

/**
 * Opens the storage `choice` asks for, or with `auto` the native one the store's single tier
 * allows (sqlite-vec on a SQLite file, pgvector on a Postgres server that has it), else datums.
 * `note` says why a native storage was not used. With `rebuild`, everything stored is dropped.
 */
export async function openStorage(store: Store, ctx: StorageContext, choice: StorageChoice, rebuild: boolean): Promise<{ storage: VectorStorage; note: string | null }> {
  const { storage: wanted, metric, postgresUrl } = choice;
  const tiers = store.tiers;
  const only = tiers.length === 1 ? (tiers[0] as { name: string; path?: unknown; schema?: unknown }) : null;
  const sqlitePath = only?.name === "sqlite" && typeof only.path === "string" && only.path !== ":memory:" ? only.path : null;
  const pgSchema = only && only.name.startsWith("postgres") && typeof only.schema === "string" ? only.schema : null;
  let note: string | null = null;

  if (wanted === "sqlite-vec" || (wanted === "auto" && sqlitePath !== null)) {
    if (sqlitePath === null) throw dgentError("DGENT_UNSUPPORTED", 'storage "sqlite-vec" needs a store whose one tier is SQLite with a file (not :memory:)', { unit: UNIT });
    try {
      return { storage: await SqliteVecStorage.open(ctx, sqlitePath, metric, 5000, rebuild), note };
    } catch (error) {
      if (wanted === "sqlite-vec" || !isDgentError(error, "DGENT_MISSING_DEPENDENCY")) throw error;
      note = "sqlite-vec is not installed (npm install sqlite-vec): vectors are kept as datums";
    }
  }
  let storage: VectorStorage | null = null;
  if (wanted === "pgvector" || (wanted === "auto" && pgSchema !== null && postgresUrl !== null)) {
    if (pgSchema === null || postgresUrl === null) throw dgentError("DGENT_UNSUPPORTED", 'storage "pgvector" needs a store whose one tier is Postgres, and the postgresUrl option', { unit: UNIT });
    const opened = await PgvectorStorage.open(ctx, postgresUrl, pgSchema, metric);
    if ("reason" in opened) {
      if (wanted === "pgvector") throw dgentError("DGENT_UNSUPPORTED", opened.reason, { unit: UNIT });
      note = `${opened.reason}: vectors are kept as datums and searched in process`;
    } else storage = opened;
  } else if (wanted === "auto" && pgSchema !== null) {
    note = "pgvector is not tried without the postgresUrl option: vectors are kept as datums and searched in process";
  }
  storage ??= new DatumStorage(ctx);
  if (rebuild) await storage.drop();
  return { storage, note };
}
