import { createHash } from "node:crypto";
import { sameValue, type Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import type { Adapter } from "../core/protocol.js";
import type { RefMove } from "../core/refs.js";
import type { EncryptionHandle } from "../plugins/encryption/index.js";
import { problemOf, type Problem } from "./verify.js";
import { Pace, walkIds } from "./walk.js";

/**
 * Ids of journal datums: a tier without transactions gets one before a datum is rewritten and
 * loses it after, so a rekey killed between the delete and the put finishes on the next run.
 */
export const JOURNAL_PREFIX = "dgent-rekey/";
/** Metadata of a journal datum: the id it rewrites. */
const JOURNAL_KEY = "dgent.rekey";

export interface RekeyReport {
  readonly tier: string;
  /** Datums looked at. */
  readonly scanned: number;
  /** Datums rewritten under the active key (including ones stored in the clear before). */
  readonly resealed: number;
  /** Datums already under the active key: skipped, which is what makes a rerun resume. */
  readonly current: number;
  /** Rewrites a journal left by an interrupted run, finished first. */
  readonly recovered: number;
  /** `"transaction"` (delete + put in one commit) or `"journal"`. */
  readonly mode: "transaction" | "journal";
  readonly problems: readonly Problem[];
}

export type RekeyStep = "journaled" | "deleted" | "put";

export interface RekeyOptions {
  /** At most this many datums per second. */
  readonly rate?: number;
  /** Force the journaled path even on a tier with transactions. */
  readonly mode?: "transaction" | "journal";
  /** Recorded as the actor of the commits (default `dgent-rekey`). */
  readonly by?: string;
  /** After each datum; the walk waits for a returned promise. */
  readonly onProgress?: (report: RekeyReport) => void | Promise<void>;
  /** Called after each step of a journaled rewrite (tests stop a run there). */
  readonly afterStep?: (step: RekeyStep, id: string) => void | Promise<void>;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

function journalId(id: string): string {
  return `${JOURNAL_PREFIX}${createHash("sha256").update(id).digest("hex").slice(0, 40)}`;
}

function encodeJournal(next: Datum, createdAt: number): Datum {
  const body = JSON.stringify({
    id: next.id,
    createdAt: next.createdAt,
    causalParent: next.causalParent,
    metadata: next.metadata,
    content: Buffer.from(next.content.buffer, next.content.byteOffset, next.content.byteLength).toString("base64"),
  });
  return { id: journalId(next.id), content: Buffer.from(body), createdAt, causalParent: null, metadata: { [JOURNAL_KEY]: next.id } };
}

function decodeJournal(j: Datum): Datum {
  const r = JSON.parse(Buffer.from(j.content).toString("utf8")) as Omit<Datum, "content"> & { content: string };
  return { ...r, content: new Uint8Array(Buffer.from(r.content, "base64")) };
}

/**
 * Re-encrypts every datum of a tier that is not under the encryption plugin's active key.
 *
 * Datums are immutable to callers, but their stored form is the tier's: the plaintext (content,
 * metadata, id, parent, `createdAt`) stays exactly the same and only the envelope changes, so the
 * stored form is replaced in place. On a tier with transactions that is one commit (`delete` then
 * `put` of the same id, all or nothing). On a tier without, a journal datum holding the new form
 * is written first and removed last; a run killed in between is finished by the next run before
 * anything else. Datums already under the active key are skipped, so rerunning resumes where a
 * killed run stopped. Reads work throughout as long as the keyring holds the old keys too.
 */
export async function rekeyTier(tier: Adapter, handle: EncryptionHandle, options: RekeyOptions = {}): Promise<RekeyReport> {
  const active = handle.activeKey().id;
  const transactional = tier.capabilities.transactions === true && typeof tier.commit === "function";
  const mode = options.mode ?? (transactional ? "transaction" : "journal");
  if (mode === "transaction" && !transactional) {
    throw dgentError("DGENT_UNSUPPORTED", `tier ${tier.name} has no transactions; rekey it in journal mode`, { unit: "cli", details: { tier: tier.name, capability: "transactions" } });
  }
  const move = (): RefMove => ({ by: options.by ?? "dgent-rekey", at: Date.now() });
  const problems: Problem[] = [];
  const counts = { scanned: 0, resealed: 0, current: 0, recovered: 0 };
  const report = (): RekeyReport => ({ tier: tier.name, ...counts, mode, problems: [...problems] });
  const step = async (s: RekeyStep, id: string) => {
    if (options.afterStep) await options.afterStep(s, id);
  };

  /** The journaled rewrite of `id` to `next` (the journal is already written). */
  const finish = async (next: Datum, journal: string): Promise<void> => {
    const current = await tier.get(next.id);
    if (current !== null && !sameValue(current, next)) {
      await tier.delete(next.id);
      await step("deleted", next.id);
    }
    if (current === null || !sameValue(current, next)) {
      await tier.put(next);
      await step("put", next.id);
    }
    await tier.delete(journal);
  };

  // An interrupted run's journal first: those datums may be absent until it is replayed.
  const ids = walkIds(tier);
  if (ids === null) {
    throw dgentError("DGENT_UNSUPPORTED", `tier ${tier.name} has neither query nor scan: its datums cannot be walked`, { unit: "cli", details: { tier: tier.name, capability: "scan" } });
  }
  const pending: string[] = [];
  for await (const id of ids) if (id.startsWith(JOURNAL_PREFIX)) pending.push(id);
  for (const j of pending) {
    const stored = await tier.get(j);
    if (stored === null || stored.metadata[JOURNAL_KEY] === undefined) continue;
    try {
      await finish(decodeJournal(stored), j);
      counts.recovered++;
    } catch (error) {
      problems.push(problemOf(stored.metadata[JOURNAL_KEY] ?? j, error));
    }
  }

  const pace = new Pace(options.rate, options.now, options.sleep);
  for await (const id of walkIds(tier) as AsyncIterable<string>) {
    if (id.startsWith(JOURNAL_PREFIX)) continue;
    await pace.next();
    counts.scanned++;
    try {
      const stored = await tier.get(id);
      if (stored === null) continue;
      if (handle.keyOf(stored) === active) {
        counts.current++;
      } else {
        const next = handle.reseal(stored);
        if (mode === "transaction") {
          await (tier.commit as NonNullable<Adapter["commit"]>)([{ op: "delete", id }, { op: "put", datum: next }], move());
        } else {
          const journal = encodeJournal(next, Date.now());
          await tier.put(journal);
          await step("journaled", id);
          await finish(next, journal.id);
        }
        counts.resealed++;
      }
    } catch (error) {
      problems.push(problemOf(id, error));
    }
    if (options.onProgress) await options.onProgress(report());
  }
  return report();
}
