import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { ConformanceTarget, Json, Target } from "./types.js";

/**
 * The program a child process runs, passed with `--input-type=module -e` so it works whether the
 * kit runs from TypeScript sources or from the built package. It imports the target's child
 * module, opens what its default export returns, and then:
 * - `stream`: puts datums forever (bounded by `max`), printing `ack <id>` after each put resolves;
 * - `write`: prints `ready` and waits for commands on stdin, one a line. On `go` it puts datums
 *   (one causal chain) until `stop`, printing `ack <id> <ns>` after each put resolves, where `ns`
 *   is the machine's monotonic clock (`process.hrtime.bigint()`, one clock for every process on
 *   the machine), then `stopped <n>`. On `race` it puts the contested id `race` once, prints
 *   `race won` or `race <error code>`, closes, prints `done` and exits 0.
 * Content is derived from the id so the parent can check bytes without being told them.
 */
const CHILD_PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_KIT_CHILD);
const made = await (await import(cfg.module)).default(cfg.args);
await made.open();
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const content = (id) => Buffer.from((id + "|").repeat(Math.ceil(cfg.size / (id.length + 1))).slice(0, cfg.size));
const idOf = (i) => cfg.prefix + String(i).padStart(7, "0");
let parent = null;
if (cfg.mode === "stream") {
  for (let i = 0; i < cfg.max; i++) {
    const id = idOf(i);
    await made.put({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { i: String(i) } });
    parent = id;
    await out("ack " + id);
  }
} else {
  const { createInterface } = await import("node:readline");
  const heard = new Set();
  const waiting = new Map();
  const commands = createInterface({ input: process.stdin });
  commands.on("line", (line) => {
    heard.add(line);
    waiting.get(line)?.();
  });
  const command = (name) => (heard.has(name) ? Promise.resolve() : new Promise((resolve) => waiting.set(name, resolve)));
  await out("ready");
  await command("go");
  let i = 0;
  while (!heard.has("stop")) {
    const id = idOf(i);
    await made.put({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { i: String(i) } });
    parent = id;
    i++;
    await out("ack " + id + " " + process.hrtime.bigint());
    await new Promise((resolve) => setImmediate(resolve)); // lets "stop" in: a fast tier resolves puts without I/O
  }
  await out("stopped " + i);
  await command("race");
  commands.close();
  if (cfg.race) {
    try {
      await made.put({ id: cfg.race, content: Buffer.from(cfg.prefix), createdAt: 1, causalParent: null, metadata: {} });
      await out("race won");
    } catch (error) {
      await out("race " + (error.code ?? "failed: " + error.message));
    }
  }
  await made.close();
  await out("done");
}
`;

export interface ChildConfig {
  mode: "stream" | "write";
  prefix: string;
  size: number;
  /** `stream`: most puts before the child stops by itself. */
  max?: number;
  /** `write`: the id every writer puts once after `race`. */
  race?: string;
}

export function childContent(id: string, size: number): Buffer {
  return Buffer.from(`${id}|`.repeat(Math.ceil(size / (id.length + 1))).slice(0, size));
}

export interface RunningChild {
  readonly process: ChildProcess;
  /** Lines printed so far. */
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  /** Resolves once `predicate` holds for the lines printed so far. */
  until(predicate: (lines: readonly string[]) => boolean): Promise<void>;
  /** Writes one command line to the child's stdin (`write` mode); `last` closes stdin after it. */
  send(command: string, last?: boolean): void;
}

export function startChild(target: ConformanceTarget, instance: Target, config: ChildConfig): RunningChild {
  const child = target.child;
  if (!child) throw new Error("the target declares no child module");
  const moduleUrl = child.module instanceof URL ? child.module.href : child.module.startsWith("file:") ? child.module : pathToFileURL(child.module).href;
  const env = { ...process.env, DGENT_KIT_CHILD: JSON.stringify({ module: moduleUrl, args: child.args(instance) as Json, max: 1_000_000, ...config }) };
  const proc = spawn(process.execPath, [...(child.execArgv ?? []), "--input-type=module", "-e", CHILD_PROGRAM], {
    env,
    stdio: [config.mode === "write" ? "pipe" : "ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  // A child that died early must not turn a write to its stdin into an uncaught EPIPE.
  proc.stdin?.on("error", () => undefined);
  // Set before the waiters run on exit, so a waiter whose output never came rejects at once.
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? -1);
      for (const w of waiters.splice(0)) w();
    });
  });
  const until = (predicate: (lines: readonly string[]) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate(lines)) resolve();
        else if (done) reject(new Error(`the child exited before the expected output; stderr:\n${stderr.join("")}`));
        else waiters.push(check);
      };
      check();
    });
  const send = (command: string, last = false) => {
    if (!proc.stdin) throw new Error("only a `write` child takes commands");
    if (last) proc.stdin.end(`${command}\n`);
    else proc.stdin.write(`${command}\n`);
  };
  return { process: proc, lines, stderr, exited, until, send };
}

/** Resolves once `predicate` holds, checked after every line any of `children` prints; rejects if one exits first. */
export function untilAll(children: readonly Pick<RunningChild, "until">[], predicate: () => boolean): Promise<void> {
  return Promise.race(children.map((c) => c.until(() => predicate())));
}

/** The monotonic time (ns) of an `ack <id> <ns>` line, or null for another line. */
function ackTime(line: string): bigint | null {
  return line.startsWith("ack ") ? BigInt(line.slice(line.lastIndexOf(" ") + 1)) : null;
}

/** The monotonic times (ns) of a `write` child's acknowledged puts, in its order. */
export function ackTimes(lines: readonly string[]): bigint[] {
  return lines.map(ackTime).filter((ns): ns is bigint => ns !== null);
}

/** The ack times of each of `children` so far, read incrementally (each line is parsed once). */
export function ackReader(children: readonly Pick<RunningChild, "lines">[]): () => readonly (readonly bigint[])[] {
  const times = children.map((): bigint[] => []);
  const read = children.map(() => 0);
  return () => {
    children.forEach((c, p) => {
      const into = times[p] as bigint[];
      for (let i = read[p] as number; i < c.lines.length; i++) {
        const ns = ackTime(c.lines[i] as string);
        if (ns !== null) into.push(ns);
      }
      read[p] = c.lines.length;
    });
    return times;
  };
}

/**
 * The overlap of several writers: for each, how many of its puts were acknowledged after the
 * moment every writer had had one acknowledged. Writers that ran one after another score 0
 * (all but the last finished before the last began); writers that raced score what they wrote
 * while all the others were writing too.
 */
export function writesWhileAllWrote(times: readonly (readonly bigint[])[]): number[] {
  if (times.some((t) => t.length === 0)) return times.map(() => 0);
  let allStarted = 0n;
  for (const t of times) if ((t[0] as bigint) > allStarted) allStarted = t[0] as bigint;
  // Each writer's times are in its order, and a monotonic clock never goes back: binary search.
  return times.map((t) => {
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((t[mid] as bigint) > allStarted) hi = mid;
      else lo = mid + 1;
    }
    return t.length - lo;
  });
}
