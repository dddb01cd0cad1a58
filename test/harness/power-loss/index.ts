/**
 * A power-loss model for the local tiers (test/README.md, "Power loss").
 *
 * `mountPowerLossFs()` mounts plfs (plfs.c, a FUSE file system held in memory) on a fresh
 * directory: files written there behave as on any disk, and every change and every sync is
 * journaled. `mark()` tells where in the journal the test is (call it when a write is
 * acknowledged); `replay()` then rebuilds, with model.ts, the disk as a power loss at any
 * journal position would have left it, strict (only synced data) or torn (prefixes of the rest).
 *
 * The first use on a machine builds plfs (provision.sh: installs fuse3 and libfuse3-dev with
 * apt-get when missing and running as root, then compiles with gcc) into
 * node_modules/.cache/dgent-plfs/<hash of the source>/. Without FUSE it throws, saying what to
 * install: these tests fail, they never skip.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runProcess } from "../run.js";
import { PowerLossReplay, readJournal, type JournalOp } from "./model.js";

export { PowerLossReplay, readJournal, rng, syncPoints, type CrashOptions, type JournalOp } from "./model.js";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SOURCE = join(HERE, "plfs.c");
const REPO = join(HERE, "..", "..", "..");

/** Fast scratch space for journals and crash states: /dev/shm when the machine has it. */
export function scratchRoot(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

let built: string | null = null;

/** Path of the plfs binary, building it (and installing FUSE) first when needed. */
export async function ensurePlfs(): Promise<string> {
  if (built !== null) return built;
  const hash = createHash("sha256").update(readFileSync(SOURCE)).digest("hex").slice(0, 16);
  const cache = join(REPO, "node_modules", ".cache", "dgent-plfs");
  const binary = join(cache, hash, "plfs");
  if (!existsSync(binary)) {
    mkdirSync(cache, { recursive: true });
    // Asynchronously: a first build installs FUSE and compiles, and other files wait on the lock.
    const r = await runProcess("flock", ["-w", "600", join(cache, "lock"), "sh", join(HERE, "provision.sh"), SOURCE, binary]);
    if (r.status !== 0) {
      throw new Error(`cannot build the power-loss file system (test/harness/power-loss/provision.sh): ${r.stderr.trim() || r.error?.message || `exit ${r.status ?? r.signal}`}`);
    }
  }
  built = binary;
  return binary;
}

export interface PowerLossFs {
  /** Where the file system is mounted. */
  readonly root: string;
  /** Journal records so far (the journal is flushed first). A cut at or after this index comes after now. */
  mark(): number;
  /** The journal so far. */
  journal(): JournalOp[];
  /** A replay of the journal so far, to materialize crash states from. */
  replay(): PowerLossReplay;
  /** Unmounts and removes the scratch files. */
  unmount(): Promise<void>;
}

/** Mounts a fresh, empty plfs. */
export async function mountPowerLossFs(): Promise<PowerLossFs> {
  const binary = await ensurePlfs();
  const scratch = mkdtempSync(join(scratchRoot(), "dgent-plfs-"));
  const root = join(scratch, "mnt");
  const journalPath = join(scratch, "journal");
  mkdirSync(root);
  const child: ChildProcess = spawn(binary, [journalPath, root], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("plfs did not report ready within 30 s")), 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGTERM");
      rmSync(scratch, { recursive: true, force: true });
      reject(new Error(`cannot mount the power-loss file system on ${root}: ${error.message}${stderr ? `\n${stderr}` : ""}`));
    };
    child.on("error", fail);
    const early = (code: number | null, signal: NodeJS.Signals | null) => fail(new Error(`plfs exited (${code ?? signal}) before it was ready`));
    child.on("exit", early);
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("ready\n")) {
        clearTimeout(timer);
        child.off("exit", early);
        resolve();
      }
    });
  });

  const ctl = openSync(join(root, ".plfs"), "r+");
  const answer = Buffer.alloc(32);
  let mounted = true;
  const mark = (): number => {
    writeSync(ctl, "mark\n");
    const n = readSync(ctl, answer, 0, answer.length, 0);
    return Number(answer.toString("latin1", 0, n).trim());
  };
  return {
    root,
    mark,
    journal: () => {
      mark();
      return readJournal(journalPath);
    },
    replay: () => {
      mark();
      return new PowerLossReplay(readJournal(journalPath));
    },
    unmount: async () => {
      if (!mounted) return;
      mounted = false;
      closeSync(ctl);
      try {
        execFileSync("fusermount3", ["-u", root], { stdio: "ignore" });
      } catch {
        execFileSync("fusermount3", ["-uz", root], { stdio: "ignore" }); // still busy: detach it
      }
      if (child.exitCode === null && child.signalCode === null) await exited;
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
