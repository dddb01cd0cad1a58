import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Datum } from "../../core/datum.js";
import { jsonlAdapter, type JsonlAdapter } from "./index.js";

// These tests run other node processes that import the built package (`npm run build` first),
// exactly as a second program on the machine would.
const REPO = fileURLToPath(new URL("../..", import.meta.url));

const CHILD = String.raw`
const { jsonlAdapter } = await import("dgent/adapters/jsonl");
const cfg = JSON.parse(process.env.JSONL_CHILD);
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const a = jsonlAdapter({ path: cfg.path, durability: cfg.durability ?? "group" });
try {
  await a.open();
} catch (error) {
  await out("error " + error.code);
  process.exit(0);
}
await out("open");
const put = (id) => a.put({ id, content: Buffer.from("c:" + id), createdAt: Date.now(), causalParent: null, metadata: { m: id } });
if (cfg.mode === "hold") {
  setInterval(() => undefined, 1000);
} else if (cfg.mode === "stream") {
  for (let i = 0; ; i += cfg.concurrency) {
    const ids = Array.from({ length: cfg.concurrency }, (_, k) => "s/" + String(i + k).padStart(7, "0"));
    await Promise.all(ids.map(async (id) => { await put(id); await out("ack " + id); }));
  }
} else if (cfg.mode === "compact") {
  for (let i = 0; i < cfg.count; i++) await put("base/" + i);
  for (let i = 1; i < cfg.count; i += 2) await a.delete("base/" + i);
  await out("written");
  for (let i = 0; ; i++) {
    await put("extra/" + i);
    await out("ack extra/" + i);
    await a.compact();
  }
}
`;

interface Child {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | string>;
  until(predicate: (lines: string[]) => boolean): Promise<void>;
}

function start(config: Record<string, unknown>): Child {
  const proc = spawn(process.execPath, ["--input-type=module", "-e", CHILD], {
    cwd: REPO,
    env: { ...process.env, JSONL_CHILD: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  proc.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? -1);
      for (const w of waiters.splice(0)) w();
    }),
  );
  const until = (predicate: (lines: string[]) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(lines)) resolve();
        else if (done) reject(new Error(`child exited early; output: ${lines.slice(-3).join(" | ")}; stderr: ${stderr.join("")}`));
        else waiters.push(check);
      };
      check();
    });
  return { proc, lines, exited, until };
}

async function kill(child: Child): Promise<void> {
  child.proc.kill("SIGKILL");
  expect(await child.exited).toBe("SIGKILL");
}

let root: string;
let n = 0;
const freshPath = () => join(root, `p${n++}`, "log.jsonl");
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "dgent-jsonl-proc-"));
  expect(existsSync(join(REPO, "dist/adapters/jsonl/index.js")), "build first: npx tsc -p tsconfig.json").toBe(true);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function openWithWarnings(path: string): Promise<{ adapter: JsonlAdapter; warnings: string[] }> {
  const warnings: string[] = [];
  const adapter = jsonlAdapter({ path });
  await adapter.open({ events: { evicted: () => undefined, change: () => undefined, warning: (m) => warnings.push(m) } });
  return { adapter, warnings };
}

function procStart(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
}

function bootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

describe("jsonl: the lock across processes", () => {
  it("a second process is refused with DGENT_LOCKED while the first holds the log, and gets it after", async () => {
    const path = freshPath();
    const holder = start({ mode: "hold", path });
    await holder.until((l) => l.includes("open"));
    const rival = start({ mode: "try", path });
    await rival.until((l) => l.length > 0);
    expect(rival.lines[0]).toBe("error DGENT_LOCKED");
    const here = jsonlAdapter({ path });
    let caught: { code?: string; message: string } | null = null;
    await here.open().catch((e: { code?: string; message: string }) => (caught = e));
    expect(caught!.code).toBe("DGENT_LOCKED");
    expect(caught!.message).toContain(`process ${holder.proc.pid}`);
    await kill(holder);
    const { adapter, warnings } = await openWithWarnings(path);
    expect(warnings.some((w) => w.includes("stale lock") && w.includes(String(holder.proc.pid)))).toBe(true);
    await adapter.close();
  });

  it("a lock naming a dead pid, or a live pid that started at another time (reused), is stale and taken over", async () => {
    const path = freshPath();
    const first = jsonlAdapter({ path });
    await first.open();
    await first.put({ id: "a", content: Buffer.from("A"), createdAt: 1, causalParent: null, metadata: {} });
    await first.close();
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    const sleeper = spawn("sleep", ["3600"]); // alive for the whole test however slow the machine; killed below
    try {
      const cases = [
        { pid: dead, start: null, stale: true },
        { pid: sleeper.pid!, start: "1", stale: true },
        { pid: sleeper.pid!, start: procStart(sleeper.pid!), stale: false },
      ];
      for (const c of cases) {
        const info = { pid: c.pid, host: hostname(), boot: bootId(), start: c.start, token: `t${c.pid}${c.start}` };
        writeFileSync(`${path}.lock`, `${JSON.stringify(info)}\n`);
        if (c.stale) {
          const { adapter, warnings } = await openWithWarnings(path);
          expect(warnings.some((w) => w.includes("stale lock"))).toBe(true);
          expect(Buffer.from((await adapter.get("a"))!.content).toString()).toBe("A");
          expect(JSON.parse(readFileSync(`${path}.lock`, "utf8")).pid).toBe(process.pid);
          await adapter.close();
          expect(existsSync(`${path}.lock`)).toBe(false);
        } else {
          const err = await jsonlAdapter({ path }).open().catch((e: { code?: string }) => e);
          expect((err as { code?: string }).code).toBe("DGENT_LOCKED");
          expect(JSON.parse(readFileSync(`${path}.lock`, "utf8")).token).toBe(info.token);
        }
      }
    } finally {
      sleeper.kill("SIGKILL");
    }
  });
});

describe("jsonl: a writer killed with SIGKILL loses no acknowledged put", () => {
  for (const durability of ["fsync", "group", "none"] as const) {
    it(`durability "${durability}"`, async () => {
      const path = freshPath();
      const concurrency = durability === "group" ? 16 : 4;
      const child = start({ mode: "stream", path, durability, concurrency });
      await child.until((l) => l.filter((x) => x.startsWith("ack ")).length >= 400);
      await kill(child);
      const acked = child.lines.filter((l) => l.startsWith("ack ")).map((l) => l.slice(4));
      expect(acked.length).toBeGreaterThanOrEqual(400);
      const { adapter } = await openWithWarnings(path);
      for (const id of acked) {
        const d: Datum | null = await adapter.get(id);
        expect(d, `acknowledged ${id}`).not.toBeNull();
        expect(Buffer.from(d!.content).toString()).toBe(`c:${id}`);
      }
      const stats = await adapter.stats();
      expect(stats.count).toBeGreaterThanOrEqual(acked.length);
      expect(stats.count).toBeLessThanOrEqual(acked.length + concurrency * 2);
      await adapter.close();
    });
  }

  it("killed while compacting in a loop: the log is whole (old or new), acked extras present, deletes kept", async () => {
    const path = freshPath();
    const child = start({ mode: "compact", path, count: 400, durability: "none" });
    await child.until((l) => l.filter((x) => x.startsWith("ack ")).length >= 15);
    await kill(child);
    const acked = child.lines.filter((l) => l.startsWith("ack ")).map((l) => l.slice(4));
    const { adapter } = await openWithWarnings(path);
    for (let i = 0; i < 400; i++) expect(await adapter.get(`base/${i}`), `base/${i}`).toEqual(i % 2 === 1 ? null : expect.anything());
    for (const id of acked) expect(await adapter.get(id), id).not.toBeNull();
    expect(readdirSync(join(path, "..")).sort()).toEqual(["log.jsonl", "log.jsonl.lock"]); // no temp file left
    await adapter.close();
  });
});
