import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance } from "../../testing/index.js";
import { jsonlAdapter, type JsonlAdapter } from "./index.js";

// The kit, run exactly as a third party would: each instance is a log in a fresh temp dir.
runConformance(
  {
    name: "jsonl",
    create: () => jsonlAdapter({ path: join(mkdtempSync(join(tmpdir(), "dgent-jsonl-")), "kit.jsonl") }),
    reopen: (previous) => jsonlAdapter({ path: (previous as JsonlAdapter).path }),
    destroy: (instance) => rmSync(dirname((instance as JsonlAdapter).path), { recursive: true, force: true }),
    child: {
      module: new URL("../../test/fixtures/child-jsonl.mjs", import.meta.url),
      args: (instance) => ({ path: (instance as JsonlAdapter).path }),
    },
  },
  { describe, it, beforeAll, afterAll },
);
