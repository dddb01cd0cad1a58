/**
 * A child process that speaks in lines on stdout, as the tests' fixtures do ("ready", "ack <n>",
 * …): every line is kept, stderr is kept, and `until(predicate)` resolves once the output so far
 * satisfies it — or rejects, naming the child's stderr and last lines, if the child exits first.
 * Nothing waits on time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface LineChild {
  readonly process: ChildProcess;
  /** Every line printed so far. */
  readonly lines: string[];
  readonly stderr: string[];
  /** The exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Resolves once `predicate` holds for the output so far (rejects if the child exits first). */
  until(predicate: () => boolean): Promise<void>;
}

/** Starts `node <script>` with `env` added; `onLine` sees each line as it arrives. */
export function lineChild(script: string, env: Record<string, string>, onLine: (line: string) => void = () => undefined, what = "the child"): LineChild {
  const proc = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  let exitedFlag = false;
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    lines.push(line);
    onLine(line);
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  proc.stdin!.on("error", () => undefined);
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => {
      exitedFlag = true;
      resolve(code ?? signal ?? -1);
      for (const w of waiters.splice(0)) w();
    }),
  );
  const until = (predicate: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (predicate()) resolve();
        else if (exitedFlag) reject(new Error(`${what} exited first; stderr:\n${stderr.join("")}\nlast lines: ${lines.slice(-3).join(" | ")}`));
        else waiters.push(check);
      };
      check();
    });
  return { process: proc, lines, stderr, exited, until };
}
