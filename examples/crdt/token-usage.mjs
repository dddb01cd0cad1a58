// Token usage counted across workers with a CRDT: every worker adds to one counter map per model,
// concurrently, with no lock and no retry; a worker that was offline (its writes on a local tier)
// still counts once it syncs. The same counter by compare-and-set on a ref would make every
// worker retry whenever another one wrote first.
//
//   node examples/crdt/token-usage.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, sqliteAdapter } from "dgent";
import { orMap } from "dgent/patterns";

const dir = mkdtempSync(join(tmpdir(), "dgent-token-usage-"));
const shared = join(dir, "usage.db");

// Three workers, each with its own store on the shared database and its own replica id.
const workers = await Promise.all(
  ["worker-1", "worker-2", "worker-3"].map(async (replica) => {
    const store = createStore({ tiers: [sqliteAdapter({ path: shared })] });
    await store.open();
    return { store, usage: orMap(store, { name: "tokens", values: "counter", replica }) };
  }),
);

// Each worker records the tokens of its model calls as they finish, all at once.
const calls = [
  ["worker-1", "small", 812], ["worker-2", "large", 4_096], ["worker-3", "small", 1_200],
  ["worker-1", "large", 2_048], ["worker-2", "small", 640], ["worker-3", "large", 8_192],
];
await Promise.all(calls.map(([who, model, tokens]) => workers.find((w) => w.usage.replica === who).usage.increment(model, tokens)));

const totals = await workers[0].usage.value();
console.log(`tokens by model: ${JSON.stringify(totals)}`);
assert.deepEqual(totals, { large: 4_096 + 2_048 + 8_192, small: 812 + 1_200 + 640 });

// A worker that ran offline on its own file, merged later: nothing is lost or counted twice.
const offlinePath = join(dir, "offline.db");
const offline = createStore({ tiers: [sqliteAdapter({ path: offlinePath })] });
await offline.open();
const offlineUsage = orMap(offline, { name: "tokens", values: "counter", replica: "worker-4" });
await offlineUsage.increment("small", 300);
await offlineUsage.increment("small", 200);
for await (const datum of offline.scan()) await workers[1].store.put(datum); // the sync: copy its datums
const synced = await workers[2].usage.value();
console.log(`after the offline worker synced: small = ${synced.small}`);
assert.equal(synced.small, 812 + 1_200 + 640 + 500);

// Snapshots keep reads short: one compaction folds every delta into one snapshot.
const compacted = await workers[0].usage.compact();
console.log(`compacted ${compacted.deltas} deltas into one snapshot; totals unchanged: ${JSON.stringify(await workers[1].usage.value()) === JSON.stringify(synced)}`);

for (const w of workers) await w.store.close();
await offline.close();
rmSync(dir, { recursive: true, force: true });
