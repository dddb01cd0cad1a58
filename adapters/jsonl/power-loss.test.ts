/**
 * Each JSONL durability mode held to its own contract across simulated power loss (README.md,
 * "Durability", "Compaction"), on the power-loss file system of test/harness/power-loss:
 *
 * - `fsync`, `group`: no acknowledged put, batch or delete is lost;
 * - `none`: a suffix of the writes may be lost, but what is left is the state after a prefix of
 *   them (never corrupt, never reordered), and whatever a compaction or a close made durable stays;
 * - in every mode, a compaction is atomic: the log after any cut is the old one or the new one.
 *
 * The workload moves refs and commits transactions too (the log records them), so the same
 * contracts hold for ref moves and for transactions, which come back whole or not at all.
 *
 * Every crash state (before and after every sync, random cuts, torn ones) is opened by a fresh
 * adapter, read back whole, written to once and reopened. DGENT_TEST_LONG=1 runs a much larger
 * workload with many more cuts; DGENT_POWER_LOSS_SEED=<n> replays the seed a failure names.
 */
import { afterEach, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import type { AdapterContext } from "../../core/protocol.js";
import { mountPowerLossFs, type PowerLossFs } from "../../test/harness/power-loss/index.js";
import {
  checkCrashStates,
  chooseCuts,
  EVERY_ACKNOWLEDGED,
  LONG,
  runSeed,
  runWorkload,
  SYNC_POINTS_ONLY,
  type Cut,
  type Recovered,
  type Requirement,
} from "../../test/harness/power-loss/workload.js";
import { jsonlAdapter, type Durability } from "./index.js";

/**
 * Steps per workload (fewer in "fsync", where each is a sync and so three cuts; more in "group",
 * where a batch of concurrent writes is one `write`, so fewer places to cut), cuts per mode.
 */
const SIZE = LONG
  ? { steps: 800, fsyncSteps: 500, groupSteps: 1000, total: 4000, minRandom: 800 }
  : { steps: 150, fsyncSteps: 100, groupSteps: 260, total: 380, minRandom: 50 };

let mounted: PowerLossFs | null = null;
afterEach(async () => {
  await mounted?.unmount();
  mounted = null;
});

function collecting(warnings: string[]): AdapterContext {
  return { events: { evicted: () => undefined, change: () => undefined, warning: (message) => warnings.push(message) } };
}

/**
 * Opens a crash state and reads everything; for torn states (and every 8th other one) also checks
 * that the log takes a write after recovery and keeps it across a reopen (a torn tail cut off
 * badly would put the new record after garbage).
 */
async function recover(dir: string, cut: Cut, durability: Durability, warnings: string[]): Promise<Recovered> {
  const path = `${dir}/log.jsonl`;
  const first = jsonlAdapter({ path, durability });
  await first.open(collecting(warnings));
  const datums: Datum[] = [];
  for await (const d of first.scan()) datums.push(d);
  const refs = await first.listRefs("");
  if (cut.torn === null && cut.at % 8 !== 0) {
    await first.close();
    return { datums, refs };
  }
  const after = makeDatum({ id: "after-recovery", content: "x", createdAt: 1 });
  await first.put(after);
  await first.close();
  const second = jsonlAdapter({ path, durability });
  await second.open(collecting(warnings));
  const count = (await second.stats()).count;
  const back = await second.get(after.id);
  await second.close();
  if (back === null || count !== datums.length + 1) {
    throw new Error(`after recovery, a new write was not kept across a reopen (count ${count}, expected ${datums.length + 1})`);
  }
  return { datums, refs };
}

const MODES: ReadonlyArray<{ durability: Durability; requirement: Requirement; contract: string }> = [
  { durability: "fsync", requirement: EVERY_ACKNOWLEDGED, contract: "loses no acknowledged write" },
  { durability: "group", requirement: EVERY_ACKNOWLEDGED, contract: "loses no acknowledged write" },
  { durability: "none", requirement: SYNC_POINTS_ONLY, contract: "may lose a suffix, never corrupts or reorders" },
];

describe("jsonl across power loss", () => {
  for (const { durability, requirement, contract } of MODES) {
    it(`durability "${durability}" ${contract}; compaction is atomic`, { timeout: LONG ? 3_600_000 : 120_000 }, async () => {
      const seed = runSeed();
      const label = `jsonl "${durability}" (DGENT_POWER_LOSS_SEED=${seed})`;
      const fs = (mounted = await mountPowerLossFs());
      const workloadWarnings: string[] = [];
      const issued = await runWorkload(
        fs,
        (dir) => jsonlAdapter({ path: `${dir}/log.jsonl`, durability }),
        { steps: durability === "fsync" ? SIZE.fsyncSteps : durability === "group" ? SIZE.groupSteps : SIZE.steps, seed, maxWave: 8, compact: true },
        collecting(workloadWarnings),
      );
      expect(workloadWarnings, label).toEqual([]);
      expect(issued.every((i) => i.ack !== null), label).toBe(true);
      const journal = fs.journal();
      const cuts = chooseCuts(journal, SIZE, seed);
      const warnings: string[] = [];
      const summary = await checkCrashStates(fs, {
        issued,
        cuts,
        requirement,
        recover: (dir, cut) => recover(dir, cut, durability, warnings),
        label,
      });
      // The run exercised what it claims: hundreds of cuts, torn tails found and cut off, compactions.
      expect(summary.cuts, label).toBeGreaterThanOrEqual(300);
      for (const kind of ["setRef", "commit"]) expect(issued.some((i) => i.step.kind === kind), `${label}: ${kind}`).toBe(true);
      expect(issued.filter((i) => i.step.kind === "compact").length, label).toBeGreaterThan(0);
      expect(warnings.some((w) => w.includes("torn tail")), label).toBe(true);
      if (durability === "none") {
        // Power loss is not a killed process: unsynced acknowledged writes really go.
        expect(summary.lostUnrequired, label).toBeGreaterThan(0);
      }
    });
  }
});
