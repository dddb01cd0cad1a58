import type { Adapter } from "../core/protocol.js";
import type { Problem } from "./verify.js";

/** Most lines of `PRAGMA integrity_check` reported. */
const MAX_LINES = 100;

/**
 * The storage-level check a tier has beyond reading its datums: for SQLite, `PRAGMA
 * integrity_check` on a second, read-only connection (b-tree structure, page and index
 * consistency). Other tiers have none here: their datums' checksums are checked by reading them.
 */
export async function structuralCheck(tier: Adapter): Promise<Problem[]> {
  const path = (tier as { readonly path?: unknown }).path;
  if (tier.name !== "sqlite" || typeof path !== "string" || path === ":memory:") return [];
  const { default: Database } = await import("better-sqlite3");
  let db: InstanceType<typeof Database> | null = null;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.prepare(`PRAGMA integrity_check(${MAX_LINES})`).all() as Array<{ integrity_check: string }>;
    return rows
      .map((r) => r.integrity_check)
      .filter((line) => line !== "ok")
      .map((line) => ({ id: null, code: "SQLITE_CORRUPT", message: `integrity_check: ${line}` }));
  } catch (error) {
    return [{ id: null, code: (error as { code?: string }).code ?? "SQLITE_ERROR", message: `integrity_check failed: ${(error as Error).message}` }];
  } finally {
    db?.close();
  }
}
