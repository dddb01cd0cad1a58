import { afterAll, beforeAll, describe, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { runConformance } from "../testing/index.js";

runConformance({ name: "memory", create: () => memoryAdapter() }, { describe, it, beforeAll, afterAll });
runConformance({ name: "memory, copy: false", create: () => memoryAdapter({ copy: false }) }, { describe, it, beforeAll, afterAll });
// A bounded tier evicts: the kit checks every datum that disappears is announced, as written.
runConformance({ name: "memory, maxDatums: 500", create: () => memoryAdapter({ maxDatums: 500 }) }, { describe, it, beforeAll, afterAll });
