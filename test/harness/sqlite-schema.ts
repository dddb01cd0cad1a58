import Database from "better-sqlite3";
import { APPLICATION_ID, MIGRATIONS } from "../../adapters/sqlite/migrations.js";

/**
 * A SQLite file as an older dgent left it: WAL, the migrations up to `version` applied, and the
 * file's version and application id set. For the migration tests, which then write rows as that
 * version did and open the file with today's tier. The caller closes the connection.
 */
export function fileAtSchema(path: string, version: number): Database.Database {
  const old = new Database(path);
  old.pragma("journal_mode = WAL");
  for (const step of MIGRATIONS.filter((m) => m.version <= version)) old.exec(step.up);
  old.pragma(`user_version = ${version}`);
  old.pragma(`application_id = ${APPLICATION_ID}`);
  return old;
}
