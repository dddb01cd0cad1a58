import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/**
 * A real S3 HTTP server for the tests: s3rver@3.7.1 in a child process under
 * `node --openssl-legacy-provider`, with the middleware of `s3rver-process.cjs` in front (fixed
 * conditional writes and aws-chunked bodies, per-key serialisation, request counting, faults).
 * If it cannot start, `startS3` rejects with the reason: the test fails, it never skips.
 */

export const S3RVER_CREDENTIALS = Object.freeze({ accessKeyId: "S3RVER", secretAccessKey: "S3RVER" });

export interface S3Stats {
  readonly total: number;
  /** Requests by S3 operation, e.g. `{ ListObjects: 1, GetObject: 50 }`. */
  readonly byOp: Readonly<Record<string, number>>;
}

export interface S3Fault {
  /** HTTP status to answer with; 0 resets the connection instead, -1 never answers. */
  status: number;
  /** S3 error code in the XML body, e.g. "SlowDown". */
  code?: string;
  /** How many matching requests fail (default 1). */
  count?: number;
  /** Only this operation (e.g. "PutObject"); default any. */
  op?: string;
}

export interface S3Server {
  readonly endpoint: string;
  readonly port: number;
  /** Where s3rver keeps its files. */
  readonly directory: string;
  /** Options for `s3Adapter` / `S3Client` that reach this server. */
  readonly clientOptions: {
    endpoint: string;
    region: string;
    forcePathStyle: true;
    credentials: { accessKeyId: string; secretAccessKey: string };
  };
  createBucket(name: string): Promise<void>;
  stats(): Promise<S3Stats>;
  /** Zeroes the counts, clears pending faults and turns the precondition checks back on. */
  resetStats(): Promise<void>;
  fault(fault: S3Fault): Promise<void>;
  /** False: ignore If-None-Match/If-Match like plain s3rver (until `resetStats` or true). */
  conditionals(enabled: boolean): Promise<void>;
  /** Writes objects straight into s3rver's store (no HTTP per object, not counted). */
  bulk(bucket: string, objects: Iterable<{ key: string; body: Uint8Array }>): Promise<number>;
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL("./s3rver-process.cjs", import.meta.url));

/** s3rver keeps objects as files: on tmpfs where there is one, which makes bulk loads fast. */
function scratchRoot(): string {
  try {
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

export async function startS3(options: { timeoutMs?: number } = {}): Promise<S3Server> {
  const directory = mkdtempSync(join(scratchRoot(), "dgent-s3rver-"));
  const child: ChildProcess = spawn(process.execPath, ["--openssl-legacy-provider", SCRIPT, directory, "0"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`s3rver did not start within ${options.timeoutMs ?? 20_000} ms; stderr:\n${stderr.join("")}`));
    }, options.timeoutMs ?? 20_000);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`could not spawn s3rver: ${error.message}`));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr.join("")}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { port: number }).port);
      } catch {
        reject(new Error(`s3rver printed an unexpected line: ${line}`));
      }
    });
  }).catch((error: unknown) => {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  });
  child.removeAllListeners("exit");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;

  const control = async (route: string, init?: RequestInit): Promise<Response> => {
    const res = await fetch(`${endpoint}/__harness/${route}`, init);
    if (!res.ok) throw new Error(`s3rver harness ${route} answered ${res.status}: ${await res.text()}`);
    return res;
  };

  return {
    endpoint,
    port,
    directory,
    // A getter: the SDK writes into the credentials object it is given.
    get clientOptions() {
      return { endpoint, region: "us-east-1", forcePathStyle: true as const, credentials: { ...S3RVER_CREDENTIALS } };
    },
    async createBucket(name) {
      await control(`bucket?name=${encodeURIComponent(name)}`, { method: "POST" });
    },
    async stats() {
      return (await (await control("stats")).json()) as S3Stats;
    },
    async resetStats() {
      await control("reset", { method: "POST" });
    },
    async conditionals(enabled) {
      await control(`conditionals?enabled=${enabled}`, { method: "POST" });
    },
    async fault(fault) {
      await control("fault", { method: "POST", body: JSON.stringify(fault) });
    },
    async bulk(bucket, objects) {
      const lines: string[] = [];
      for (const o of objects) lines.push(JSON.stringify({ key: o.key, body: Buffer.from(o.body).toString("base64") }));
      const res = await control(`bulk?bucket=${encodeURIComponent(bucket)}`, { method: "POST", body: lines.join("\n") });
      return ((await res.json()) as { written: number }).written;
    },
    async stop() {
      child.stdin?.end();
      child.kill("SIGTERM");
      await exited;
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
