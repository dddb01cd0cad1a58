import { randomBytes } from "node:crypto";
import { closeSync, linkSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dgentError, type DgentError } from "../../core/errors.js";
import { ownerAlive, readOptional, selfOwner, type ProcessOwner } from "../../core/process-owner.js";

/**
 * The write lock of one log: a file `<log>.lock` created with O_EXCL, holding who owns it.
 * A lock whose owner is provably gone (dead pid, a zombie, a reused pid, a reboot) is stale
 * and is taken over; anything else refuses with `DGENT_LOCKED`. See README.md "Locking".
 */
export interface LockInfo extends ProcessOwner {
  /** Random per lock: tells this process's own locks apart from each other. */
  readonly token: string;
}

/** Tokens of the locks held by adapters in this process, shared by every copy of this module. */
const HELD: Set<string> = ((globalThis as { [key: symbol]: unknown })[Symbol.for("dgent.jsonl.heldLocks")] ??=
  new Set<string>()) as Set<string>;

/** A lock whose content cannot be read is treated as live for this long (it may be being written). */
const UNREADABLE_GRACE_MS = 5_000;


function parseInfo(text: string | null): LockInfo | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid !== "number" || typeof v.token !== "string" || typeof v.host !== "string") return null;
    return { pid: v.pid, host: v.host, boot: v.boot ?? null, start: v.start ?? null, token: v.token };
  } catch {
    return null;
  }
}

export interface AcquiredLock {
  readonly path: string;
  readonly token: string;
  /** A stale lock that was taken over, for the caller to report. */
  readonly tookOver: LockInfo | null;
}

/** Creates the lock or throws `DGENT_LOCKED`. */
export function acquireLock(path: string, logPath: string, unit: string): AcquiredLock {
  const info: LockInfo = {
    ...selfOwner(),
    token: randomBytes(12).toString("hex"),
  };
  const text = `${JSON.stringify(info)}\n`;
  let tookOver: LockInfo | null = null;
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const existing = readOptional(path);
      if (existing === null) continue; // released meanwhile: try again
      const owner = parseInfo(existing);
      if (owner === null) {
        if (Date.now() - mtime(path) < UNREADABLE_GRACE_MS) throw locked(path, logPath, null, unit);
      } else if (HELD.has(owner.token)) {
        throw locked(path, logPath, owner, unit);
      } else if (!(owner.pid === process.pid && owner.host === hostname()) && ownerAlive(owner)) {
        // (A lock naming this process but held by no adapter in it was left by a failed release.)
        throw locked(path, logPath, owner, unit);
      }
      if (!removeStale(path, existing)) throw locked(path, logPath, owner, unit);
      tookOver = owner ?? { pid: -1, host: "?", boot: null, start: null, token: "unreadable" };
      continue;
    }
    try {
      writeSync(fd, text);
    } catch (error) {
      unlinkSync(path); // an empty lock would block the next open for the grace period
      throw error;
    } finally {
      closeSync(fd);
    }
    HELD.add(info.token);
    return { path, token: info.token, tookOver };
  }
  throw locked(path, logPath, null, unit);
}

/**
 * Moves a stale lock aside under a name of our own, then checks that what we moved is the lock we
 * judged stale. If another process replaced it meanwhile, puts it back and gives up.
 */
function removeStale(path: string, judged: string): boolean {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch {
    return true; // gone already: just retry the create
  }
  if (readOptional(aside) === judged) {
    unlinkSync(aside);
    return true;
  }
  try {
    linkSync(aside, path); // restore the fresh lock we moved by mistake
  } catch {
    // someone created a lock meanwhile: theirs stands
  }
  unlinkSync(aside);
  return false;
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** True while the lock file still holds our token (another process may, rarely, have raced us). */
export function stillHeld(lock: AcquiredLock): boolean {
  return parseInfo(readOptional(lock.path))?.token === lock.token;
}

/** Removes the lock if it is still ours. Never throws. */
export function releaseLock(lock: AcquiredLock): void {
  HELD.delete(lock.token);
  try {
    if (stillHeld(lock)) unlinkSync(lock.path);
  } catch {
    // a lock left behind is stale (dead pid) and is taken over by the next open
  }
}

function locked(path: string, logPath: string, owner: LockInfo | null, unit: string): DgentError {
  const who =
    owner === null
      ? "a process that is still writing the lock file"
      : owner.pid === process.pid && owner.host === hostname()
        ? "another adapter in this process (close it first)"
        : `process ${owner.pid} on ${owner.host}`;
  return dgentError(
    "DGENT_LOCKED",
    `${logPath} is locked by ${who}; only one writer may open a JSONL log. If no such process is running, delete ${path}`,
    { unit, details: { path: logPath, lock: path, pid: owner?.pid ?? null, host: owner?.host ?? null } },
  );
}
