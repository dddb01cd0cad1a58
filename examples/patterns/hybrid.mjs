// Hybrid storage (seed 002, pattern 4): an application keeps typed rows in its own SQL table and
// the semantic content in dgent. The table bridge shows the rows as datums (read-only: dgent never
// writes the app's table), the content lives in a dgent store, and one `self.data.*` path table
// reaches both.
//
//   node examples/patterns/hybrid.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { contentText, createStore, makeDatum } from "dgent";
import { sqliteAdapter } from "dgent/adapters/sqlite";
import { invokePath, tableAdapter } from "dgent/patterns";

const dir = mkdtempSync(join(tmpdir(), "dgent-hybrid-"));
try {
  // The application's table: typed, queryable rows it owns.
  const appDb = new Database(join(dir, "app.db"));
  appDb.exec("CREATE TABLE crystals (id INTEGER PRIMARY KEY, title TEXT NOT NULL, kind TEXT NOT NULL, created_ms INTEGER NOT NULL)");
  const insert = appDb.prepare("INSERT INTO crystals VALUES (?, ?, ?, ?)");
  insert.run(1, "Lisbon trip", "plan", Date.UTC(2026, 0, 5));
  insert.run(2, "Weather tool", "skill", Date.UTC(2026, 0, 6));
  insert.run(3, "Packing list", "plan", Date.UTC(2026, 0, 7));

  // The semantic content in dgent, linked to the rows by a tag.
  const memory = createStore({ tiers: [sqliteAdapter({ path: join(dir, "memory.db") })] });
  for (const [crystal, text] of [[1, "Fly Tuesday, back Sunday."], [1, "Book the tram 28 early."], [3, "Sunscreen, adapter, light jacket."]]) {
    await memory.put(makeDatum({ content: text, metadata: { type: "crystal-note", crystal: String(crystal) } }));
  }

  // The rows as datums: ids from the primary key, provenance in metadata.source.
  const crystals = createStore({ tiers: [tableAdapter({ driver: "sqlite", path: join(dir, "app.db"), table: "crystals", primaryKey: "id", createdAt: "created_ms", tags: ["kind"] })] });
  const plans = await crystals.query({ where: { kind: "plan" }, order: "oldest" });
  for (const row of plans.items) {
    const { id, title } = JSON.parse(contentText(row));
    const notes = await memory.query({ where: { crystal: String(id) }, order: "oldest" });
    console.log(`${row.id} "${title}" (source ${row.metadata.source}): ${notes.items.map(contentText).join(" | ") || "no notes"}`);
  }
  assert.deepEqual(plans.items.map((d) => d.id), ["crystals/1", "crystals/3"]);

  // One path table for both: the store's paths and the bridge's tables.
  const row = await invokePath("self.data.table.crystals.get", ["crystals/2"], { store: memory, tables: { crystals } });
  console.log(`self.data.table.crystals.get[crystals/2] → ${JSON.parse(contentText(row)).title}`);
  console.log(`self.data.count({ type: crystal-note }) → ${await invokePath("self.data.count", [{ where: { type: "crystal-note" } }], { store: memory })}`);

  // Isolation: writing through the bridge is refused, the app's table is untouched.
  await assert.rejects(crystals.delete("crystals/1"), { code: "DGENT_UNSUPPORTED" });
  assert.equal(appDb.prepare("SELECT COUNT(*) AS n FROM crystals").get().n, 3);
  console.log("the bridge refused to delete crystals/1; the app's table still has 3 rows");

  await crystals.close();
  await memory.close();
  appDb.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
