import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { ConformanceTarget, Json, Target } from "./types.js";

/**
 * The program a child process runs, passed with `--input-type=module -e` so it works whether the
 * kit runs from TypeScript sources or from the built package. It imports the target's child
 * module, opens what its default export returns, and then:
 * - `stream`: puts datums forever (bounded by `max`), printing `ack <id>` after each put resolves;
 * - `write`: puts `count` datums, then `race` (one put to a shared id), prints `done`, exits 0.
 * Content is derived from the id so the parent can check bytes without being told them.
 */
const CHILD_PROGRAM = String.raw`
const cfg = JSON.parse(process.env.DGENT_KIT_CHILD);
const made = await (await import(cfg.module)).default(cfg.args);
await made.open();
const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));
const content = (id) => Buffer.from((id + "|").repeat(Math.ceil(cfg.size / (id.length + 1))).slice(0, cfg.size));
let parent = null;
if (cfg.mode === "stream") {
  for (let i = 0; i < cfg.max; i++) {
    const id = cfg.prefix + String(i).padStart(7, "0");
    await made.put({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { i: String(i) } });
    parent = id;
    await out("ack " + id);
  }
} else {
  for (let i = 0; i < cfg.count; i++) {
    const id = cfg.prefix + String(i).padStart(7, "0");
    await made.put({ id, content: content(id), createdAt: Date.now(), causalParent: parent, metadata: { i: String(i) } });
    parent = id;
  }
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
  max?: number;
  count?: number;
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
}

export function startChild(target: ConformanceTarget, instance: Target, config: ChildConfig): RunningChild {
  const child = target.child;
  if (!child) throw new Error("the target declares no child module");
  const moduleUrl = child.module instanceof URL ? child.module.href : child.module.startsWith("file:") ? child.module : pathToFileURL(child.module).href;
  const env = { ...process.env, DGENT_KIT_CHILD: JSON.stringify({ module: moduleUrl, args: child.args(instance) as Json, max: 1_000_000, ...config }) };
  const proc = spawn(process.execPath, [...(child.execArgv ?? []), "--input-type=module", "-e", CHILD_PROGRAM], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    proc.on("exit", (code, signal) => {
      resolve(code ?? signal ?? -1);
      for (const w of waiters.splice(0)) w();
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
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
  return { process: proc, lines, stderr, exited, until };
}
