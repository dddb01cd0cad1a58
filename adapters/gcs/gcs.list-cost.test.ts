import { afterAll, beforeAll } from "vitest";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { gcsRig } from "../../test/harness/gcs-rig.js";
import { listCostCases } from "../../test/harness/object-store-cases.js";

// 10 000 datums written straight into the emulator's storage; list and causalChain must stay at
// about one request per result, counted at the emulator.
const BUCKET = "dgent-gcs-cost";
let emulator: GcsEmulator;
beforeAll(async () => {
  emulator = await startGcsEmulator();
  emulator.createBucket(BUCKET);
});
afterAll(() => emulator?.stop());

listCostCases(gcsRig(() => emulator, BUCKET));
