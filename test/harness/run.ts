/**
 * `runProcess`: `spawnSync` without blocking the test worker. A test file runs in a Vitest worker that
 * talks to the main process over RPC with a fixed 60 s timeout; a synchronous spawn that lasts
 * longer (an example program, an apt-get, a restore on a loaded machine) leaves the answer to a
 * call made just before it unread until the timer has fired, and the run fails with
 * "Timeout calling onTaskUpdate" although every test passed. Anything that may run for more than
 * a few seconds goes through here.
 */
import { spawn } from "node:child_process";

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  readonly input?: string | Buffer;
  /** Milliseconds before the child is sent SIGKILL (as spawnSync's `timeout`, but SIGKILL). */
  readonly timeout?: number;
}

export interface RunResult {
  /** The exit code, null when a signal ended the child. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number | undefined;
  /** Set when the child could not be started (e.g. ENOENT). */
  readonly error?: Error;
}

export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = options.timeout === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeout);
    let settled = false;
    const settle = (status: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        pid: child.pid,
        ...(error ? { error } : {}),
      });
    };
    // A child that could not start emits "error" and may never emit "close".
    child.on("error", (e) => settle(null, null, e));
    child.on("close", (status, signal) => settle(status, signal));
    child.stdin.on("error", () => undefined); // a child that exits without reading its input
    child.stdin.end(options.input);
  });
}
