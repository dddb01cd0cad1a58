import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { OPS } from "../benchmarks/contender.js";
import { TIERS, runBench, type BenchIo } from "../benchmarks/cli.js";
import { CONCURRENCY_TIERS } from "../benchmarks/concurrency.js";
import { RESULTS_SCHEMA, type BenchResults, type TierResult } from "../benchmarks/results.js";

// The benchmark's --quick mode, run as `npm run bench -- --quick` would run it: every tier on its
// real backend (the harness's Postgres cluster, s3rver, the GCS emulator), raw drivers and peers,
// hooks and scaling. Only the shape of what it writes is checked — never a timing.

const root = new URL("..", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "dgent-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function capture(): BenchIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    stdout: (s: string) => void (io.out += s),
    stderr: (s: string) => void (io.err += s),
    env: process.env,
    stderrIsTTY: false,
  };
  return io;
}

function expectStats(value: unknown, where: string): void {
  const s = value as Record<string, number>;
  for (const key of ["p50", "p90", "p99", "mean", "min", "max", "opsPerSec", "samples", "batch"]) {
    expect(typeof s[key], `${where}.${key}`).toBe("number");
    expect(Number.isFinite(s[key]), `${where}.${key}`).toBe(true);
  }
  expect(s.p50, where).toBeGreaterThan(0);
  expect(s.p99, where).toBeGreaterThanOrEqual(s.p50 as number);
  expect(s.samples, where).toBeGreaterThanOrEqual(1);
}

function dgentOf(t: TierResult): string {
  const d = t.contenders.find((c) => c.kind === "dgent");
  expect(d, `${t.tier} has a dgent contender`).toBeDefined();
  return (d as { name: string }).name;
}

describe("npm run bench -- --quick", () => {
  let results: BenchResults;
  let io: ReturnType<typeof capture>;

  it("runs every tier, hooks and scaling, and writes JSON, Markdown and SVG", async () => {
    io = capture();
    const code = await runBench(["--quick", "--out", out, "--name", "quick-test", "--machine", "test run"], io);
    expect(code, io.err).toBe(0);
    results = JSON.parse(readFileSync(join(out, "quick-test.json"), "utf8")) as BenchResults;
    expect(results.schema).toBe(RESULTS_SCHEMA);
    expect(results.mode).toBe("quick");
    expect(results.machine.note).toBe("test run");
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(readFileSync(join(out, "quick-test.md"), "utf8")).toBe(io.out);
    // Progress went to stderr, a plain line per step (not a terminal here).
    expect(io.err).toMatch(/^\[1\/\d+\] memory/m);
    expect(io.err).not.toContain("\r");
  }, 1_500_000); // a hang guard: the quick run takes about 3 min on a quiet machine and more than 8 at load 25

  it("measured every tier's five operations for dgent and the raw driver", () => {
    expect(results.tiers.map((t) => t.tier)).toEqual([...TIERS]);
    for (const t of results.tiers) {
      expect(t.error, `${t.tier}: ${t.error}`).toBeUndefined();
      const dgent = dgentOf(t);
      const raw = t.contenders.find((c) => c.kind === "raw");
      expect(raw, `${t.tier} has a raw baseline`).toBeDefined();
      expect(t.ops.map((o) => o.op).sort()).toEqual([...OPS].sort());
      for (const o of t.ops) {
        expect(o.error, `${t.tier} ${o.op}: ${o.error}`).toBeUndefined();
        expectStats(o.stats[dgent], `${t.tier}.${o.op}.dgent`);
        expectStats(o.stats[raw?.name as string], `${t.tier}.${o.op}.raw`);
        expect(o.raw).toBe(raw?.name);
        expect(o.ratioRaw).toBeCloseTo((o.stats[dgent]?.p50 as number) / (o.stats[raw?.name as string]?.p50 as number), 6);
      }
    }
  });

  it("compared with Keyv and unstorage where they run, on put, get, putMany and list", () => {
    const peersOf = (tier: string) => (results.tiers.find((t) => t.tier === tier) as TierResult).contenders.filter((c) => c.kind === "peer").map((c) => c.name);
    expect(peersOf("memory")).toEqual(["keyv (Map, JSON)", "unstorage (memory)"]);
    expect(peersOf("memory-zero-copy")).toEqual(["keyv (Map)"]);
    expect(peersOf("jsonl-none")).toEqual(["unstorage (fs)"]);
    expect(peersOf("sqlite")).toEqual(["keyv + @keyv/sqlite", "unstorage + db0 (better-sqlite3)"]);
    expect(peersOf("postgres")).toEqual(["keyv + @keyv/postgres", "unstorage + db0 (pg)"]);
    expect(peersOf("redis")).toEqual(["keyv + @keyv/redis", "unstorage (redis)"]);
    for (const tier of ["memory", "memory-zero-copy", "jsonl-none", "sqlite", "postgres", "redis"]) {
      const t = results.tiers.find((x) => x.tier === tier) as TierResult;
      for (const o of t.ops) {
        if (o.op === "chain") {
          expect(o.bestPeer, "peers have no causal chain").toBeNull();
          continue;
        }
        expect(peersOf(tier)).toContain(o.bestPeer);
        expect(typeof o.ratioBestPeer).toBe("number");
        for (const p of peersOf(tier)) expectStats(o.stats[p], `${tier}.${o.op}.${p}`);
      }
    }
    const pg = results.tiers.find((t) => t.tier === "postgres") as TierResult;
    expect((pg.probe?.roundTrips as Record<string, Record<string, number>>).dgent?.chain).toBeGreaterThanOrEqual(1);
  });

  it("measured hook overhead, scaling and the fsync floor", () => {
    expect(results.hooks.map((h) => h.tier)).toEqual(["hooks-memory", "hooks-sqlite"]);
    for (const h of results.hooks) {
      expect(h.contenders.map((c) => c.name)).toEqual(["0 plugins", "1 plugin", "5 plugins"]);
      expect(h.ops.map((o) => o.op)).toEqual(["get", "list", "put"]);
      for (const o of h.ops) for (const c of h.contenders) expectStats(o.stats[c.name], `${h.tier}.${o.op}.${c.name}`);
    }
    expect(results.scaling.map((s) => s.tier)).toEqual(["memory", "jsonl-none", "sqlite"]);
    for (const s of results.scaling) {
      expect(s.error).toBeUndefined();
      expect(s.sizes).toEqual([1_000, 10_000]);
      for (const op of ["get", "list"] as const) {
        expectStats(s[op].small, `${s.tier}.${op}.small`);
        expectStats(s[op].large, `${s.tier}.${op}.large`);
        expect(s[op].ratio).toBeCloseTo(s[op].large.p50 / s[op].small.p50, 6);
      }
    }
    expectStats(results.fsyncFloor, "fsyncFloor");
  });

  it("measured the concurrency part: every tier at every level, dgent and the raw driver, the peers, writer processes", () => {
    const conc = results.concurrency ?? [];
    expect(conc.map((c) => c.tier)).toEqual([...CONCURRENCY_TIERS]);
    const plan = results.config.concurrency;
    expect(plan?.levels).toEqual([1, 16, 64]);
    for (const c of conc) {
      expect(c.error, `${c.tier}: ${c.error}`).toBeUndefined();
      const levels = (c.tier === "s3" ? plan?.objectLevels : plan?.levels) ?? [];
      const withProcesses = ["sqlite", "postgres", "redis"].includes(c.tier);
      const expected = [...levels.map((n) => `1×${n}`), ...(withProcesses ? [`4×16`] : [])];
      for (const op of ["put", "get"] as const) {
        expect(c.rows.filter((r) => r.op === op).map((r) => `${r.processes}×${r.callers}`), `${c.tier} ${op}`).toEqual(expected);
      }
      for (const r of c.rows) {
        const where = `${c.tier} ${r.op} ${r.processes}×${r.callers}`;
        const dgent = r.cells.find((x) => x.contender === "dgent");
        const raw = r.cells.find((x) => x.kind === "raw");
        for (const cell of [dgent, raw]) {
          expect(cell?.error, `${where}: ${cell?.error}`).toBeUndefined();
          expect(cell?.ops, where).toBeGreaterThan(0);
          expect(cell?.opsPerSec, where).toBeGreaterThan(0);
          expect(cell?.p99, where).toBeGreaterThanOrEqual(cell?.p50 as number);
        }
        expect(r.throughputRaw).toBeCloseTo((dgent?.opsPerSec as number) / (raw?.opsPerSec as number), 6);
      }
      if (!withProcesses) expect(c.notes.join(" "), c.tier).toContain("no process row");
    }
    const peers = (tier: string) => (conc.find((c) => c.tier === tier)?.contenders ?? []).filter((x) => x.kind === "peer").map((x) => x.name);
    expect(peers("memory")).toEqual(["keyv (Map, JSON)", "unstorage (memory)"]);
    expect(peers("sqlite")).toEqual(["keyv + @keyv/sqlite", "unstorage + db0 (better-sqlite3)"]);
    expect(peers("postgres")).toEqual(["keyv + @keyv/postgres", "unstorage + db0 (pg)"]);
    expect(peers("redis")).toEqual(["keyv + @keyv/redis", "unstorage (redis)"]);
    const pg = conc.find((c) => c.tier === "postgres");
    expect(pg?.contenders.map((x) => x.name)).toContain("dgent notify:false");
    expectStats(conc.find((c) => c.tier === "jsonl")?.fsyncFloor, "concurrency jsonl fsyncFloor");
    expect(readFileSync(join(out, "quick-test.md"), "utf8")).toContain("## Concurrency (issue 23)");
  });

  it("has a verdict row for every target, each pass or miss", () => {
    const ids = results.verdict.map((v) => v.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [
      "seed.memory.get",
      "seed.jsonl-fsync.put",
      "seed.postgres.get",
      "goal.memory.put.raw",
      "goal.sqlite.get.raw",
      "goal.postgres.put.raw",
      "goal.memory.get.peers",
      "goal.memory-zero-copy.put.peers",
      "goal.memory-zero-copy.get",
      "goal.sqlite.list.peers",
      "goal.jsonl.put",
      "goal.jsonl-fsync.put.fsync",
      "goal.jsonl-group.put.fsync",
      "goal.sqlite.chain",
      "goal.postgres.chain",
      "goal.memory.get.scaling",
      "goal.sqlite.list.scaling",
      "goal.postgres.put.c16.raw",
      "goal.postgres.put.c64.raw",
      "goal.postgres.put.c1.raw",
      "goal.postgres.get.c1.raw",
      "goal.jsonl-group.put.c16.scale",
      "goal.jsonl-group.put.c1.fsync",
      "goal.sqlite.put.processes.raw",
    ]) {
      expect(ids, id).toContain(id);
    }
    for (const id of ["seed.redis.put", "seed.redis.get", "goal.redis.put.raw", "goal.redis.get.raw", "goal.redis.list"]) expect(ids, id).toContain(id);
    for (const v of results.verdict) {
      expect(typeof v.pass, `${v.id}: ${v.detail}`).toBe("boolean");
      expect(typeof v.value).toBe("number");
      expect(v.limit).toBeGreaterThan(0);
    }
    const s = results.summary;
    expect(s.pass + s.miss + s.notMeasured).toBe(results.verdict.length);
    expect(s.notMeasured).toBe(0);
  });

  it("draws an SVG chart of the verdict and every tier", () => {
    const svg = readFileSync(join(out, "quick-test.svg"), "utf8");
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    for (const t of results.tiers) expect(svg).toContain(`${t.tier} — `);
    expect(svg).toContain("Concurrency — ");
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    for (const v of results.verdict) expect(svg).toContain(esc(v.title));
    // Every element opened is closed (a cheap well-formedness check).
    const opened = (svg.match(/<(text|g|svg)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(text|g|svg)>/g) ?? []).length;
    expect(closed).toBe(opened);
  });
});

describe("--render", () => {
  it("rewrites the Markdown and the chart from a results JSON", async () => {
    const md = readFileSync(join(out, "quick-test.md"), "utf8");
    const svg = readFileSync(join(out, "quick-test.svg"), "utf8");
    rmSync(join(out, "quick-test.md"));
    rmSync(join(out, "quick-test.svg"));
    const io = capture();
    expect(await runBench(["--render", join(out, "quick-test.json")], io)).toBe(0);
    expect(readFileSync(join(out, "quick-test.md"), "utf8")).toBe(md);
    expect(readFileSync(join(out, "quick-test.svg"), "utf8")).toBe(svg);
    expect(await runBench(["--render", join(out, "missing.json")], capture())).toBe(1);
  });
});

describe("the command line", () => {
  it("prints usage for --help, through the npm script", () => {
    const r = spawnSync("npm", ["run", "--silent", "bench", "--", "--help"], { cwd: root, encoding: "utf8", env: { ...process.env, npm_config_update_notifier: "false" } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("usage: dgent bench");
    expect(r.stdout).toContain("--quick");
  }, 300_000);

  it("runs as `dgent bench` from the build: local tiers measured, harness servers reported as not measured", () => {
    const bin = join(root, "dist/cli/main.js");
    const dir = mkdtempSync(join(out, "cli-"));
    const r = spawnSync(
      process.execPath,
      [bin, "bench", "--quick", "--tier", "memory,s3", "--skip", "peers,hooks,scaling", "--out", dir, "--name", "cli"],
      { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: dir } },
    );
    expect(r.status, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(dir, "cli.json"), "utf8")) as BenchResults;
    const memory = written.tiers.find((t) => t.tier === "memory");
    const get = memory?.ops.find((o) => o.op === "get");
    expect(get?.ratioRaw).toBeGreaterThan(0);
    expect(written.tiers.find((t) => t.tier === "s3")?.error).toContain("from a checkout");
    expect(r.stdout).toContain("run `npm run bench` from a checkout");
    const help = spawnSync(process.execPath, [bin, "--help"], { encoding: "utf8" });
    expect(help.stdout).toMatch(/^\s+bench\s+measure every tier/m);
  }, 300_000);

  it("refuses unknown tiers and options with exit code 2", async () => {
    const a = capture();
    expect(await runBench(["--tier", "mongo"], a)).toBe(2);
    expect(a.err).toContain('unknown tier "mongo"');
    const b = capture();
    expect(await runBench(["--fast"], b)).toBe(2);
    expect(b.err).toContain("usage: dgent bench");
    const c = capture();
    expect(await runBench(["--scaling", "100"], c)).toBe(2);
    const d = capture();
    expect(await runBench(["--only", "hooks"], d)).toBe(2);
    expect(d.err).toContain('unknown part "hooks" for --only');
  });
});
