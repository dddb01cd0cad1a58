/**
 * Seed 001's test 3 across processes on the object-store tiers: N processes × M increments of one
 * counter through compare-and-set against the same bucket and namespace; the final value is
 * exactly N×M.
 *
 * Nothing here depends on how the processes are scheduled. The test runs the children in
 * lockstep rounds: every child still counting reads the counter, and only when all have read does
 * the test let them all try to move it, each expecting the version it read. So every round is a
 * real race on one version, and compare-and-set must let exactly one child win it; the losers
 * count again in the next round. Then one free-running phase increments through `refs.update`
 * (read, compute, compare-and-set, retry), and the count must still come out exact.
 *
 * The children import the built package (`npm run build` first), as other programs would.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REFLOG_LIMIT } from "../../core/refs.js";
import { createStore } from "../../core/store.js";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import { gcsAdapter, type GcsOptions } from "../gcs/index.js";
import { s3Adapter, type S3Options } from "../s3/index.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BUCKET = "dgent-counter";
const N = 4;
const M = 5; // lockstep increments per child: N×M rounds' winners, N×M ≤ REFLOG_LIMIT
const FREE = 5; // free-running increments per child through refs.update

const CHILD = String.raw`
const cfg = JSON.parse(process.env.DGENT_COUNTER_CHILD);
const { createStore } = await import("dgent");
const adapter = cfg.tier === "s3" ? (await import("dgent/adapters/s3")).s3Adapter(cfg.options) : (await import("dgent/adapters/gcs")).gcsAdapter(cfg.options);
const store = createStore({ tiers: [adapter], actor: cfg.actor });
await store.open();
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const lines = (await import("node:readline")).createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value;
const datum = (n, parent, tag) => ({ id: cfg.actor + "/" + tag, content: Buffer.from(String(n)), createdAt: Date.now(), causalParent: parent, metadata: {} });
await out("ready");
let wins = 0;
let round = 0;
while (wins < cfg.increments) {
  if ((await next()) !== "read") throw new Error("expected read");
  const ref = await store.refs.get(cfg.name);
  const current = ref === null ? null : await store.get(ref.target);
  const n = current === null ? 0 : Number(Buffer.from(current.content).toString());
  await out("read " + (ref?.version ?? 0));
  if ((await next()) !== "write") throw new Error("expected write");
  const d = datum(n + 1, current?.id ?? null, "r" + round++);
  await store.put(d);
  try {
    await store.refs.set(cfg.name, d.id, { expect: ref === null ? { absent: true } : { version: ref.version } });
    wins++;
    await out("won");
  } catch (error) {
    if (error.code !== "DGENT_REF_CONFLICT") throw error;
    await out("lost");
  }
}
if ((await next()) !== "free") throw new Error("expected free");
let tries = 0;
for (let i = 0; i < cfg.free; i++) {
  await store.refs.update(cfg.name, ({ datum: cur }) => {
    tries++;
    const n = cur === null ? 0 : Number(Buffer.from(cur.content).toString());
    return datum(n + 1, cur?.id ?? null, "f" + i + "/" + tries);
  }, { attempts: 100000, backoffMs: { min: 1, max: 25 } });
}
await store.close();
await out("done " + tries);
process.exit(0);
`;

/** A child and its stdout as a queue of lines. */
class Child {
  readonly proc: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiting: Array<(line: string) => void> = [];
  #failure: Error | null = null;

  constructor(config: Record<string, unknown>) {
    this.proc = spawn(process.execPath, ["--input-type=module", "-e", CHILD], {
      cwd: REPO,
      env: { ...process.env, DGENT_COUNTER_CHILD: JSON.stringify(config) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stderr = "";
    this.proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      const waiter = this.#waiting.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    });
    this.proc.on("exit", (code, signal) => {
      if (code === 0) return;
      this.#failure = new Error(`child ${String(config.actor)} exited (${code ?? signal}): ${stderr}`);
      for (const w of this.#waiting.splice(0)) w(`error ${this.#failure.message}`);
    });
  }

  /** The child's next line (an `error …` line when it died). */
  line(): Promise<string> {
    if (this.#failure) return Promise.resolve(`error ${this.#failure.message}`);
    const queued = this.#lines.shift();
    return queued !== undefined ? Promise.resolve(queued) : new Promise((resolve) => this.#waiting.push(resolve));
  }

  async expect(prefix: string): Promise<string> {
    const line = await this.line();
    if (!line.startsWith(prefix)) throw new Error(`expected "${prefix}…" from a child, got: ${line}`);
    return line;
  }

  send(line: string): void {
    this.proc.stdin?.write(`${line}\n`);
  }
}

type Options = S3Options | GcsOptions;

async function counterAcross(tier: "s3" | "gcs", options: Options): Promise<void> {
  expect(existsSync(`${REPO}/dist/adapters/${tier}/index.js`), "build first: npm run build").toBe(true);
  const name = "counters/seed-001";
  const children = Array.from({ length: N }, (_, k) => new Child({ tier, options, name, actor: `child-${k}`, increments: M, free: FREE }));
  const winners: string[] = [];
  let losses = 0;
  try {
    await Promise.all(children.map((c) => c.expect("ready")));
    let counting = children.map((_, k) => k);
    let version = 0;
    while (counting.length > 0) {
      // Everyone still counting reads the same version, then everyone tries to move it.
      for (const k of counting) children[k]!.send("read");
      const seen = await Promise.all(counting.map((k) => children[k]!.expect("read ")));
      expect(seen, "every child read the same version").toEqual(counting.map(() => `read ${version}`));
      for (const k of counting) children[k]!.send("write");
      const results = await Promise.all(counting.map((k) => children[k]!.line()));
      for (const r of results) if (r.startsWith("error")) throw new Error(r);
      const won = counting.filter((_, i) => results[i] === "won");
      expect(won, `round for version ${version + 1}: exactly one of ${counting.length} racing children wins`).toHaveLength(1);
      winners.push(`child-${won[0]}`);
      losses += counting.length - 1;
      version++;
      counting = counting.filter((k) => winners.filter((w) => w === `child-${k}`).length < M);
    }
    // The first rounds raced all N children: N−1 lost each, so there was contention by construction.
    expect(losses).toBeGreaterThanOrEqual(N - 1);
    for (const c of children) c.send("free");
    await Promise.all(children.map((c) => c.expect("done ")));
  } finally {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  }

  const total = N * M + N * FREE;
  const adapter = tier === "s3" ? s3Adapter(options as S3Options) : gcsAdapter(options as GcsOptions);
  const store = createStore({ tiers: [adapter] });
  await store.open();
  const ref = await store.refs.get(name);
  expect(ref?.version).toBe(total);
  const value = await store.get(ref?.target as string);
  expect(new TextDecoder().decode(value?.content)).toBe(String(total));
  expect((await store.causalChain(ref?.target as string)).length).toBe(total); // each value's parent is the one it incremented

  const log = (await store.refs.log(name, REFLOG_LIMIT)).reverse(); // oldest first
  expect(log.map((e) => e.version)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  for (const [i, e] of log.entries()) if (i > 0) expect(e.from, `move ${e.version} started from the value before it`).toBe(log[i - 1]?.to);
  // The reflog names each round's winner, in order; then each child's free increments.
  expect(log.slice(0, N * M).map((e) => e.by)).toEqual(winners);
  const by = log.map((e) => e.by);
  for (let k = 0; k < N; k++) expect(by.filter((b) => b === `child-${k}`)).toHaveLength(M + FREE);
  await store.close();
}

describe("s3: a counter incremented from several processes", () => {
  let server: S3Server;
  beforeAll(async () => {
    server = await startS3();
    await server.createBucket(BUCKET);
  });
  afterAll(() => server?.stop());

  it(`${N} processes × ${M} increments through compare-and-set end at exactly ${N * M}`, { timeout: 300_000 }, async () => {
    await counterAcross("s3", { ...server.clientOptions, bucket: BUCKET, namespace: `c-${randomBytes(4).toString("hex")}`, retryBaseDelayMs: 5 });
  });
});

describe("gcs: a counter incremented from several processes", () => {
  let emulator: GcsEmulator;
  beforeAll(async () => {
    emulator = await startGcsEmulator();
    emulator.createBucket(BUCKET);
  });
  afterAll(() => emulator?.stop());

  it(`${N} processes × ${M} increments through compare-and-set end at exactly ${N * M}`, { timeout: 300_000 }, async () => {
    await counterAcross("gcs", { apiEndpoint: emulator.url, projectId: "test", bucket: BUCKET, namespace: `c-${randomBytes(4).toString("hex")}`, retryBaseDelayMs: 5 });
  });
});
