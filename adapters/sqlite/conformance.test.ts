import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import { runConformance, type Target } from "../../testing/index.js";
import { sqliteAdapter, type SqliteAdapter } from "./index.js";

const pathOf = (target: Target): string => (target as SqliteAdapter).path;

runConformance(
  {
    name: "sqlite",
    create: () => sqliteAdapter({ path: join(mkdtempSync(join(tmpdir(), "dgent-sqlite-kit-")), "kit.db") }),
    reopen: (previous) => sqliteAdapter({ path: pathOf(previous) }),
    destroy: (instance) => rmSync(dirname(pathOf(instance)), { recursive: true, force: true }),
    child: {
      module: new URL("../../test/fixtures/child-sqlite.mjs", import.meta.url),
      args: (instance) => ({ path: pathOf(instance) }),
    },
  },
  { describe, it, beforeAll, afterAll },
);
