import { afterAll, beforeAll } from "vitest";
import { listCostCases } from "../../test/harness/object-store-cases.js";
import { s3Rig } from "../../test/harness/s3-rig.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";

// 10 000 datums written straight into s3rver's storage; list and causalChain must stay at about
// one request per result, counted at the server.
const BUCKET = "dgent-s3-cost";
let server: S3Server;
beforeAll(async () => {
  server = await startS3();
  await server.createBucket(BUCKET);
});
const rig = s3Rig(() => server, BUCKET);
afterAll(async () => {
  rig.close();
  await server?.stop();
});

listCostCases(rig);
