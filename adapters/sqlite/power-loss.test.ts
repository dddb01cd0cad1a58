/**
 * Each SQLite `synchronous` mode held to its own contract across simulated power loss (README.md,
 * "Durability", "Migrations"), on the power-loss file system of test/harness/power-loss:
 *
 * - `FULL`: no acknowledged put, batch or delete is lost;
 * - `NORMAL`: the last transactions may be lost, but what is left is the state after a prefix of
 *   them (never corrupt: the tier opens and `PRAGMA integrity_check` says ok), and what a close
 *   made durable (its checkpoint) stays;
 * - ref moves and transactions (puts, a delete, a ref move) follow the same contract, whole or not at all;
 * - migrations are atomic: a crash at any record of the open that migrates leaves a file that
 *   opens at the current schema with the data it had.
 *
 * DGENT_TEST_LONG=1 runs a much larger workload with many more cuts; DGENT_POWER_LOSS_SEED=<n>
 * replays the seed a failure names.
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { mountPowerLossFs, rng, scratchRoot, type PowerLossFs } from "../../test/harness/power-loss/index.js";
import {
  checkCrashStates,
  chooseCuts,
  DATA_DIR,
  EVERY_ACKNOWLEDGED,
  LONG,
  runSeed,
  runWorkload,
  SYNC_POINTS_ONLY,
  type Cut,
  type Recovered,
  type Requirement,
} from "../../test/harness/power-loss/workload.js";
import { sqliteAdapter } from "./index.js";
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from "./migrations.js";

type Synchronous = "FULL" | "NORMAL";

/** Steps per workload (fewer in FULL, where each is a sync and so three cuts), cuts per mode. */
const SIZE = LONG ? { steps: 800, fullSteps: 500, total: 4000, minRandom: 800 } : { steps: 150, fullSteps: 100, total: 380, minRandom: 50 };

let mounted: PowerLossFs | null = null;
afterEach(async () => {
  await mounted?.unmount();
  mounted = null;
});

function integrity(path: string): string {
  const db = new Database(path);
  try {
    return (db.pragma("integrity_check", { simple: true }) as string) ?? "";
  } finally {
    db.close();
  }
}

/**
 * Opens a crash state, checks the schema is current and reads everything; for torn states (and
 * every 8th other one) also writes once and reopens; then runs `PRAGMA integrity_check`.
 */
async function recover(dir: string, cut: Cut, synchronous: Synchronous): Promise<Recovered> {
  const path = join(dir, "store.db");
  const first = sqliteAdapter({ path, synchronous });
  await first.open();
  const stats = await first.stats();
  if (stats.schemaVersion !== SCHEMA_VERSION) throw new Error(`opened at schema version ${String(stats.schemaVersion)}, not ${SCHEMA_VERSION}`);
  const datums: Datum[] = [];
  for await (const d of first.scan()) datums.push(d);
  const refs = await first.listRefs("");
  if (cut.torn !== null || cut.at % 8 === 0) {
    await first.put(makeDatum({ id: "after-recovery", content: "x", createdAt: 1 }));
    await first.close();
    const second = sqliteAdapter({ path, synchronous });
    await second.open();
    const count = (await second.stats()).count;
    await second.close();
    if (count !== datums.length + 1) throw new Error(`after recovery, a new write was not kept across a reopen (count ${count}, expected ${datums.length + 1})`);
  } else {
    await first.close();
  }
  const check = integrity(path);
  if (check !== "ok") throw new Error(`PRAGMA integrity_check: ${check}`);
  return { datums, refs };
}

const MODES: ReadonlyArray<{ synchronous: Synchronous; requirement: Requirement; contract: string }> = [
  { synchronous: "FULL", requirement: EVERY_ACKNOWLEDGED, contract: "loses no acknowledged write" },
  { synchronous: "NORMAL", requirement: SYNC_POINTS_ONLY, contract: "may lose the last transactions, never corrupts" },
];

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

describe("sqlite across power loss", () => {
  for (const { synchronous, requirement, contract } of MODES) {
    it(`synchronous=${synchronous} ${contract}`, { timeout: LONG ? 3_600_000 : 120_000 }, async () => {
      const seed = runSeed();
      const label = `sqlite ${synchronous} (DGENT_POWER_LOSS_SEED=${seed})`;
      const fs = (mounted = await mountPowerLossFs());
      const issued = await runWorkload(fs, (dir) => sqliteAdapter({ path: join(dir, "store.db"), synchronous }), {
        steps: synchronous === "FULL" ? SIZE.fullSteps : SIZE.steps,
        seed,
        maxWave: 8,
        compact: false,
      });
      expect(issued.every((i) => i.ack !== null), label).toBe(true);
      const cuts = chooseCuts(fs.journal(), SIZE, seed);
      const summary = await checkCrashStates(fs, { issued, cuts, requirement, recover: (dir, cut) => recover(dir, cut, synchronous), label });
      expect(summary.cuts, label).toBeGreaterThanOrEqual(300);
      for (const kind of ["setRef", "commit"]) expect(issued.some((i) => i.step.kind === kind), `${label}: ${kind}`).toBe(true);
      expect(issued.filter((i) => i.step.kind === "reopen").length, label).toBeGreaterThan(0);
      if (synchronous === "NORMAL") {
        // Power loss is not a killed process: commits not yet synced really go.
        expect(summary.lostUnrequired, label).toBeGreaterThan(0);
      }
    });
  }

  for (const { synchronous } of MODES) {
    it(`every migration step is atomic across power loss (synchronous=${synchronous})`, { timeout: LONG ? 600_000 : 60_000 }, async () => {
      await migrationsAcrossPowerLoss(synchronous, runSeed(), MIGRATIONS);
    });
  }

  // A seed that once tore a new file's first page while its rollback journal was already durable:
  // SQLite rolls such a file back on open, so dgent must not refuse it as a foreign file first.
  it("a new file torn in its first write opens (its rollback journal undoes the write)", { timeout: 60_000 }, async () => {
    await migrationsAcrossPowerLoss("NORMAL", 1825699315, MIGRATIONS.filter((m) => m.version === 1));
  });

  async function migrationsAcrossPowerLoss(synchronous: (typeof MODES)[number]["synchronous"], seed: number, steps: typeof MIGRATIONS): Promise<void> {
    for (const step of steps) {
      const label = `sqlite migration to ${step.version}, ${synchronous} (DGENT_POWER_LOSS_SEED=${seed})`;
      const fs = (mounted = await mountPowerLossFs());
      const dir = join(fs.root, DATA_DIR);
      mkdirSync(dir);
      fsyncPath(fs.root);
      const path = join(dir, "store.db");
      // A file at the version before this step (none before the first step).
      if (step.version > 1) {
        const db = new Database(path);
        db.pragma("journal_mode = WAL");
        db.pragma("synchronous = FULL");
        for (const earlier of MIGRATIONS.filter((m) => m.version < step.version)) db.exec(earlier.up);
        db.pragma(`user_version = ${step.version - 1}`);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.close();
        fsyncPath(dir);
      }
      const start = fs.mark();
      const adapter = sqliteAdapter({ path, synchronous });
      await adapter.open();
      const applied = (await adapter.stats()).migrationsApplied as readonly number[];
      expect(applied, label).toContain(step.version);
      await adapter.close();
      const journal = fs.journal();
      const replay = fs.replay();
      const scratch = mkdtempSync(join(scratchRoot(), "dgent-migrate-"));
      const random = rng(seed + step.version);
      const outcomes = { migratedBefore: 0, migratedOnRecovery: 0 };
      try {
        // Every record of the open, strict and torn.
        for (let at = start; at <= journal.length; at++) {
          replay.advance(at);
          for (const torn of [null, Math.floor(random() * 2 ** 31)]) {
            const crash = join(scratch, `${at}-${torn ?? "strict"}`);
            mkdirSync(crash);
            replay.materialize(crash, { torn: torn === null ? null : rng(torn) });
            const where = `${label}: power lost after journal record ${at} of ${journal.length}${torn === null ? "" : ` (torn seed ${torn})`}`;
            const recovered = sqliteAdapter({ path: join(crash, DATA_DIR, "store.db"), synchronous });
            try {
              await recovered.open();
            } catch (error) {
              throw new Error(`${where}: does not open: ${(error as Error).stack ?? String(error)}`);
            }
            const stats = await recovered.stats();
            expect(stats.schemaVersion, where).toBe(SCHEMA_VERSION);
            expect(stats.count, where).toBe(0);
            if ((stats.migrationsApplied as readonly number[]).includes(step.version)) outcomes.migratedOnRecovery++;
            else outcomes.migratedBefore++;
            await recovered.close();
            expect(integrity(join(crash, DATA_DIR, "store.db")), where).toBe("ok");
            rmSync(crash, { recursive: true, force: true });
          }
        }
      } finally {
        rmSync(scratch, { recursive: true, force: true });
        await fs.unmount();
        mounted = null;
      }
      // The cuts straddle the migration's commit: some crash states had it, some did not.
      expect(outcomes.migratedBefore, label).toBeGreaterThan(0);
      expect(outcomes.migratedOnRecovery, label).toBeGreaterThan(0);
    }
  }
});
