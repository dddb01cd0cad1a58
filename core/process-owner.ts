import { readFileSync } from "node:fs";
import { hostname } from "node:os";

/**
 * Who holds a file-based claim (a JSONL write lock, a journal segment of pending deletes), and
 * whether that process is still running. Linux's /proc tells a dead pid, a zombie, a reused pid
 * (by start time) and a reboot (by boot id) apart; without /proc only `kill(pid, 0)` is asked.
 */
export interface ProcessOwner {
  readonly pid: number;
  readonly host: string;
  /** Linux boot id: a claim from before a reboot has no live owner. */
  readonly boot: string | null;
  /** Start time of the owner (Linux clock ticks since boot): tells a reused pid apart. */
  readonly start: string | null;
}

/** A file's text, or null when it cannot be read. */
export function readOptional(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

const BOOT_ID = readOptional("/proc/sys/kernel/random/boot_id")?.trim() ?? null;

/** State letter and start time of a process from /proc; null when it does not exist; undefined without /proc. */
function procStat(pid: number): { state: string; start: string } | null | undefined {
  if (BOOT_ID === null) return undefined;
  const text = readOptional(`/proc/${pid}/stat`);
  if (text === null) return null;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", start: fields[19] ?? "" };
}

let self: ProcessOwner | null = null;

/** This process, as a claim records it. */
export function selfOwner(): ProcessOwner {
  return (self ??= { pid: process.pid, host: hostname(), boot: BOOT_ID, start: procStat(process.pid)?.start ?? null });
}

/** True unless the process is provably gone (on this machine). */
export function pidAlive(pid: number, start: string | null = null): boolean {
  const stat = procStat(pid);
  if (stat === null) return false;
  if (stat !== undefined) {
    if (stat.state === "Z" || stat.state === "X") return false; // killed, not yet reaped
    return start === null || start === stat.start;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** True unless the owner is provably gone. Conservative: anything unknown counts as alive. */
export function ownerAlive(owner: ProcessOwner): boolean {
  if (owner.host !== hostname()) return true; // another machine sharing the directory: cannot tell
  if (owner.boot !== null && BOOT_ID !== null && owner.boot !== BOOT_ID) return false;
  return pidAlive(owner.pid, owner.start);
}
