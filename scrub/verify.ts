import { createHash } from "node:crypto";
import type { Datum } from "../core/datum.js";
import { updateDigest } from "../core/digest.js";
import { isDgentError } from "../core/errors.js";
import type { Adapter } from "../core/protocol.js";
import { structuralCheck } from "./structural.js";
import { Pace, walkIds } from "./walk.js";

/** One thing found wrong: a datum (by id) or the tier's storage as a whole (`id: null`). */
export interface Problem {
  readonly id: string | null;
  readonly code: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly tier: string;
  /** Datums read. */
  readonly checked: number;
  /** Datums read and decoded without a problem. */
  readonly ok: number;
  readonly problems: readonly Problem[];
  /**
   * SHA-256 over the digests (`core/digest.ts`) of the stored datums, in the walk's order (oldest
   * first): equal on two tiers that hold the same datums. `null` when the walk was incomplete.
   */
  readonly digest: string | null;
}

export interface VerifyOptions {
  /** Opens a stored datum the way reads do (the encryption plugin's `open`); a throw is a problem. */
  readonly decode?: (stored: Datum) => unknown;
  /** At most this many datums per second, for a scrub in the background. */
  readonly rate?: number;
  /** After each datum. */
  readonly onProgress?: (checked: number, problems: number) => void;
  /** Injectable clock and sleep of the pacing (tests). */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function problemOf(id: string | null, error: unknown): Problem {
  return {
    id,
    code: isDgentError(error) ? error.code : error instanceof Error ? error.name : "Error",
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * Reads every datum of a tier and reports each one that does not read or decode, by id, without
 * stopping at the first; then runs the tier's own structural check where it has one (SQLite's
 * `PRAGMA integrity_check`). The tier must be open.
 */
export async function verifyTier(tier: Adapter, options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const pace = new Pace(options.rate, options.now, options.sleep);
  const hash = createHash("sha256");
  let checked = 0;
  let ok = 0;
  let complete = true;
  const ids = walkIds(tier);
  if (ids === null) {
    complete = false;
    problems.push({ id: null, code: "DGENT_UNSUPPORTED", message: `tier ${tier.name} has neither query nor scan: its datums cannot be walked` });
  } else {
    try {
      for await (const id of ids) {
        await pace.next();
        checked++;
        try {
          const stored = await tier.get(id);
          if (stored !== null) {
            if (options.decode) options.decode(stored);
            updateDigest(hash, stored);
            ok++;
          }
        } catch (error) {
          problems.push(problemOf(id, error));
        }
        options.onProgress?.(checked, problems.length);
      }
    } catch (error) {
      complete = false;
      problems.push(problemOf(null, error));
    }
  }
  for (const p of await structuralCheck(tier)) problems.push(p);
  return { tier: tier.name, checked, ok, problems, digest: complete && problems.length === 0 ? hash.digest("hex") : null };
}
