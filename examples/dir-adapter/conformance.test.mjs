// The whole dgent conformance kit, under node:test, in a few lines.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runConformance } from "dgent/testing";
import { dirAdapter } from "./index.mjs";

const dirs = new WeakMap();

runConformance(
  {
    name: "dir",
    create() {
      const dir = mkdtempSync(join(tmpdir(), "dgent-dir-"));
      const adapter = dirAdapter({ dir });
      dirs.set(adapter, dir);
      return adapter;
    },
    reopen(previous) {
      const adapter = dirAdapter({ dir: dirs.get(previous) });
      dirs.set(adapter, dirs.get(previous));
      return adapter;
    },
    destroy(instance) {
      rmSync(dirs.get(instance), { recursive: true, force: true });
    },
    child: { module: new URL("./child.mjs", import.meta.url), args: (instance) => ({ dir: dirs.get(instance) }) },
  },
  { describe, it, before, after },
);
