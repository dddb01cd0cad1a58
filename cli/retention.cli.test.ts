import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStoreFromConfig } from "../compose/config/compose.js";
import { makeDatum } from "../core/datum.js";
import type { RetentionReport } from "../core/retention.js";

// `dgent retention plan|apply` as a user runs it: the built CLI, examples/configs/retention.yaml,
// real files. Ages come from --now, never from waiting.
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const CONFIG = new URL("../examples/configs/retention.yaml", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-retention-cli-"));
const data = join(home, "data");
afterAll(() => rmSync(home, { recursive: true, force: true }));

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 1);
const N = 1_000;

function dgent(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "xdg"), DGENT_DATA_DIR: data },
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function ids(): Promise<string[]> {
  const store = await createStoreFromConfig(CONFIG, { env: { DGENT_DATA_DIR: data } });
  const out: string[] = [];
  for await (const d of store.scan()) out.push(d.id);
  await store.close();
  return out.sort();
}

beforeAll(async () => {
  const store = await createStoreFromConfig(CONFIG, { env: { DGENT_DATA_DIR: data } });
  const prefixes = ["trace/", "session/", "run/", "notes/"];
  await store.putMany(
    Array.from({ length: N }, (_, i) =>
      makeDatum({
        id: `${prefixes[i % 4]}${i}`,
        content: "y".repeat(1 + (i % 17)),
        createdAt: NOW - ((i * 7919) % 500) * DAY,
        metadata: { kind: i % 3 === 0 ? "tool" : "chat", ...(i % 50 === 0 ? { pinned: "1" } : {}) },
      }),
    ),
  );
  await store.close();
});

describe("dgent retention", () => {
  it("plan --json counts and changes nothing; apply does what plan said; a second apply finds nothing", async () => {
    const before = await ids();
    const plan = dgent(["retention", "plan", "--config", CONFIG, "--now", new Date(NOW).toISOString(), "--json"]);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as RetentionReport;
    expect(planned).toMatchObject({ dryRun: true, now: NOW });
    expect(planned.policies.map((p) => p.name)).toEqual(["pinned", "traces", "sessions", "tool-output"]);
    expect(planned.total.delete.count).toBeGreaterThan(0);
    expect(planned.total.move.count).toBeGreaterThan(0);
    expect(await ids()).toEqual(before);

    const text = dgent(["retention", "plan", "--config", CONFIG, "--now", String(NOW)]);
    expect(text.stdout).toMatch(/dry run: nothing was changed/);
    expect(text.stdout).toMatch(/^POLICY\s+ACTION\s+MATCHED\s+WOULD DELETE/m);
    expect(text.stdout).toContain(`would delete ${planned.total.delete.count} datums (${planned.total.delete.bytes} bytes)`);

    const apply = dgent(["retention", "apply", "--config", CONFIG, "--now", String(NOW), "--batch", "50", "--json"]);
    expect(apply.code, apply.stderr).toBe(0);
    const applied = JSON.parse(apply.stdout) as RetentionReport;
    const counts = (r: RetentionReport) => r.policies.map((p) => [p.name, p.matched, p.delete, p.move]);
    expect(counts(applied)).toEqual(counts(planned));
    expect((await ids()).length).toBe(before.length - planned.total.delete.count);

    const again = JSON.parse(dgent(["retention", "apply", "--config", CONFIG, "--now", String(NOW), "--json"]).stdout) as RetentionReport;
    expect([again.total.delete.count, again.total.move.count]).toEqual([0, 0]);
  });

  it("refuses what it cannot do, in one line", () => {
    const usage = (args: string[], pattern: RegExp) => {
      const r = dgent(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
    };
    usage(["retention", "--config", CONFIG], /retention needs a subcommand: plan or apply/);
    usage(["retention", "purge", "--config", CONFIG], /unknown retention subcommand "purge"/);
    usage(["retention", "plan", "--config", CONFIG, "--now", "yesterday"], /--now takes epoch milliseconds or an ISO 8601 time/);
    usage(["retention", "plan", "--config", CONFIG, "--batch", "5"], /--batch applies to retention apply/);
    const bare = join(home, "bare.yaml");
    writeFileSync(bare, `tiers:\n  - adapter: sqlite\n    options: { path: "${join(home, "bare.db")}" }\n`);
    usage(["retention", "apply", "--config", bare], /no retention policies/);
  });
});
