import { closeSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Adapter } from "./protocol.js";
import { nodeCrypto } from "./lazy.js";
import { ownerAlive, pidAlive, readOptional, selfOwner, type ProcessOwner } from "./process-owner.js";
import { deleteIds } from "./tiers.js";

/** Journaled deletes applied per call when a tier returns (one statement on Postgres). */
const BATCH = 1_000;

/**
 * Deletes made while a tier was down, to apply when it returns. Kept in memory and, with a path,
 * in a journal written before the delete returns, so a crash during an outage does not forget
 * them.
 *
 * Each process (each store) writes a segment of its own next to the path,
 * `<path>.<pid>.<token>`: a header line naming its owner, then JSON lines `{"tier","id"}` (a
 * pending delete) and `{"tier","ids":[…],"done":1}` (applied). A store applies its own deletes
 * when the tier returns, so no delete is applied by two processes. A segment whose owner is gone
 * (a dead process, a reboot, or a store that closed with deletes still pending) is adopted by the
 * next store that opens or re-probes: renamed to a name of its own (one rename, so only one
 * adopter wins), copied into its own segment, removed. A journal at the path itself (the single
 * file of earlier versions) is adopted the same way. See core/LATTICE.md "Journaled deletes".
 */
export class PendingDeletes {
  readonly #byTier = new Map<string, Set<string>>();
  readonly #path: string | undefined;
  /** Who this store is, in its segment's header; made on first use (its token needs `node:crypto`). */
  #ownerInfo: Owner | null = null;
  /** This store's segment, once something was journaled. */
  #fd: number | null = null;
  #segment: string | null = null;
  #closed = false;

  constructor(path?: string) {
    this.#path = path;
  }

  get #owner(): Owner {
    return (this.#ownerInfo ??= { ...selfOwner(), token: nodeCrypto().randomBytes(8).toString("hex") });
  }

  /** At open: adopts the journals of stores that are gone. */
  load(): void {
    this.adopt();
  }

  /**
   * Adopts every segment whose owner is gone (and a journal of the old single-file form): its
   * pending deletes become this store's. Returns how many deletes were adopted.
   */
  adopt(): number {
    const path = this.#path;
    if (!path) return 0;
    const dir = dirname(path);
    const base = basename(path);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return 0;
    }
    let adopted = 0;
    for (const name of names) {
      if (name !== base && !name.startsWith(`${base}.`)) continue;
      if (name.endsWith(".tmp")) continue;
      const file = join(dir, name);
      if (file === this.#segment) continue;
      const claimer = /\.(\d+)\.[0-9a-f]+\.claim-[0-9a-f]+$/.exec(name);
      if (claimer && pidAlive(Number(claimer[1]))) continue; // being adopted by a live store right now
      const text = readOptional(file);
      if (text === null) continue;
      const owner = headerOf(text);
      if (owner !== undefined && owner !== null && (owner.token === this.#owner.token || ownerAlive(owner))) continue;
      // Claim it: only one rename of a file succeeds, so only one store adopts it.
      const claim = `${this.#ensureSegment()}.claim-${nodeCrypto().randomBytes(4).toString("hex")}`;
      try {
        renameSync(file, claim);
      } catch {
        continue; // adopted by someone else meanwhile
      }
      const records = parseJournal(readOptional(claim) ?? "");
      for (const [tier, ids] of records) {
        for (const id of ids) {
          if (this.#has(tier, id)) continue;
          this.#write({ tier, id });
          this.#set(tier).add(id);
          adopted++;
        }
      }
      try {
        unlinkSync(claim);
      } catch {
        // already gone
      }
    }
    return adopted;
  }

  #has(tier: string, id: string): boolean {
    return this.#byTier.get(tier)?.has(id) ?? false;
  }

  #set(tier: string): Set<string> {
    let set = this.#byTier.get(tier);
    if (!set) this.#byTier.set(tier, (set = new Set()));
    return set;
  }

  /** This store's segment path, created with its header on first use. */
  #ensureSegment(): string {
    const path = this.#path as string;
    if (this.#segment !== null) return this.#segment;
    const segment = `${path}.${process.pid}.${this.#owner.token}`;
    mkdirSync(dirname(path), { recursive: true });
    const fd = openSync(segment, "a", 0o644);
    writeSync(fd, `${JSON.stringify({ owner: this.#owner })}\n`);
    this.#fd = fd;
    this.#segment = segment;
    return segment;
  }

  #write(record: object): void {
    if (!this.#path || this.#closed) return; // after close the released segment stands as written
    this.#ensureSegment();
    writeSync(this.#fd as number, `${JSON.stringify(record)}\n`);
  }

  /** Journals a delete for a tier (before the delete returns to its caller). */
  add(tier: string, id: string): void {
    if (this.#has(tier, id)) return;
    this.#write({ tier, id });
    this.#set(tier).add(id);
  }

  /** Up to `max` ids pending for a tier, oldest first. */
  take(tier: string, max: number): string[] {
    const out: string[] = [];
    for (const id of this.#byTier.get(tier) ?? []) {
      out.push(id);
      if (out.length >= max) break;
    }
    return out;
  }

  /** Records that these deletes were applied to the tier (one journal line for the batch). */
  applied(tier: string, ids: readonly string[]): void {
    const set = this.#byTier.get(tier);
    if (!set) return;
    const done = ids.filter((id) => set.delete(id));
    if (done.length > 0) this.#write({ tier, ids: done, done: 1 });
  }

  /**
   * Applies the deletes journaled for `tier`, a batch per call (`deleteIds`), each batch marked
   * done right after it; deletes journaled meanwhile are applied too. Stops early when `stop()`.
   */
  async drain(tier: Adapter, stop: () => boolean): Promise<void> {
    const name = tier.name;
    for (let ids = this.take(name, BATCH); ids.length > 0 && !stop(); ids = this.take(name, BATCH)) {
      await deleteIds(tier, ids);
      this.applied(name, ids);
    }
  }

  /** True while deletes are pending for the tier. */
  has(tier: string): boolean {
    return (this.#byTier.get(tier)?.size ?? 0) > 0;
  }

  /** A snapshot of the ids pending for a tier. */
  for(tier: string): string[] {
    return [...(this.#byTier.get(tier) ?? [])];
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byTier.values()) n += set.size;
    return n;
  }

  /**
   * At close: the segment is removed when nothing is pending; otherwise it is rewritten without
   * an owner (what is still pending), so the next store to open adopts it.
   */
  close(): void {
    this.#closed = true;
    const segment = this.#segment;
    if (segment === null) return;
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    this.#segment = null;
    if (this.size === 0) {
      unlinkSync(segment);
      return;
    }
    const lines = [JSON.stringify({ owner: null })];
    for (const [tier, ids] of this.#byTier) for (const id of ids) lines.push(JSON.stringify({ tier, id }));
    writeFileSync(`${segment}.tmp`, `${lines.join("\n")}\n`);
    renameSync(`${segment}.tmp`, segment);
  }
}

/** Who wrote a segment, enough to tell whether that process is still running. */
interface Owner extends ProcessOwner {
  /** Random per store. */
  readonly token: string;
}

/** The owner in a segment's header; `null` for a released segment; undefined for a journal without a header. */
function headerOf(text: string): Owner | null | undefined {
  const first = text.slice(0, text.indexOf("\n") + 1 || text.length);
  try {
    const v = JSON.parse(first) as { owner?: Partial<Owner> | null };
    if (!("owner" in v)) return undefined;
    const o = v.owner;
    if (o === null || o === undefined) return null;
    if (typeof o.pid !== "number" || typeof o.host !== "string" || typeof o.token !== "string") return null;
    return { pid: o.pid, host: o.host, boot: o.boot ?? null, start: o.start ?? null, token: o.token };
  } catch {
    return undefined;
  }
}

/** The pending deletes of a journal's lines, in order, by tier. A torn last line is ignored. */
function parseJournal(text: string): Map<string, Set<string>> {
  const byTier = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    let r: { tier?: unknown; id?: unknown; ids?: unknown; done?: unknown };
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      continue; // a torn last line from a crash: the delete it recorded never returned to its caller
    }
    if (typeof r.tier !== "string") continue;
    const ids = Array.isArray(r.ids) ? r.ids.filter((x): x is string => typeof x === "string") : typeof r.id === "string" ? [r.id] : [];
    let set = byTier.get(r.tier);
    if (!set) byTier.set(r.tier, (set = new Set()));
    for (const id of ids) {
      if (r.done) set.delete(id);
      else set.add(id);
    }
  }
  return byTier;
}

