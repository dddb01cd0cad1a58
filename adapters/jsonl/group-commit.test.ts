import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { runProcess } from "../../test/harness/run.js";
import { jsonlAdapter } from "./index.js";

// A child process of the built package (`npm run build` first) counts the adapter's real
// `fdatasync` calls: node:fs is wrapped before the adapter is imported, so its named imports see
// the counting function (syncBuiltinESMExports). Nothing is faked: every call syncs the real file.
const REPO = fileURLToPath(new URL("../..", import.meta.url));

const CHILD = String.raw`
const fs = (await import("node:fs")).default;
const { syncBuiltinESMExports } = await import("node:module");
let syncs = 0;
const real = fs.fdatasync;
fs.fdatasync = (fd, cb) => { syncs++; return real(fd, cb); };
syncBuiltinESMExports();
const { jsonlAdapter } = await import("dgent/adapters/jsonl");
const cfg = JSON.parse(process.env.JSONL_CHILD);
const a = jsonlAdapter({ path: cfg.path, durability: "group" });
await a.open();
const datum = (id) => ({ id, content: Buffer.alloc(1024, 97), createdAt: Date.now(), causalParent: null, metadata: { role: "agent", step: id } });
const report = {};
// Waves: 16 puts issued together, awaited together, 20 times.
let at = syncs;
for (let w = 0; w < 20; w++) await Promise.all(Array.from({ length: 16 }, (_, k) => a.put(datum("w" + w + "-" + k))));
report.waves = { puts: 320, syncs: syncs - at };
// Callers: 16 loops, each putting and awaiting its put 20 times (as a server's handlers would).
at = syncs;
await Promise.all(Array.from({ length: 16 }, async (_, k) => { for (let i = 0; i < 20; i++) await a.put(datum("c" + k + "-" + i)); }));
report.callers = { puts: 320, syncs: syncs - at };
// One caller: a sync per put.
at = syncs;
for (let i = 0; i < 20; i++) await a.put(datum("one-" + i));
report.one = { puts: 20, syncs: syncs - at };
await a.close();
process.stdout.write(JSON.stringify(report) + "\n");
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('jsonl "group": concurrent puts share fdatasyncs', () => {
  it("16 concurrent callers' puts take far fewer fdatasyncs than puts; a lone caller's one each; all are kept", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dgent-jsonl-group-"));
    dirs.push(dir);
    const path = join(dir, "log.jsonl");
    const r = await runProcess(process.execPath, ["--input-type=module", "-e", CHILD], {
      cwd: REPO,
      env: { ...process.env, JSONL_CHILD: JSON.stringify({ path }) },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Record<"waves" | "callers" | "one", { puts: number; syncs: number }>;
    // Each wave's puts are queued in one job: at most two syncs a wave (one when a sync is slower
    // than 16 puts' work; two when the first half's sync is cut to overlap the second's work).
    expect(report.waves.syncs).toBeGreaterThan(0);
    expect(report.waves.syncs).toBeLessThanOrEqual(2 * 20);
    // 16 callers in closed loops: at least a quarter of them share each sync on average.
    expect(report.callers.syncs).toBeGreaterThan(0);
    expect(report.callers.syncs).toBeLessThanOrEqual(320 / 4);
    expect(report.one.syncs).toBe(20);
    const back = jsonlAdapter({ path, durability: "group" });
    await back.open();
    expect((await back.stats()).count).toBe(660);
    await back.close();
  });
});
