import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Deletes made while a tier was down, to apply when it returns. Kept in memory and, with a path,
 * in a small JSON Lines journal (`{"tier","id","done"?}` per line) written before the delete
 * returns, so a crash during an outage does not forget them. The journal is compacted on load.
 */
export class PendingDeletes {
  readonly #byTier = new Map<string, Set<string>>();
  readonly #path: string | undefined;

  constructor(path?: string) {
    this.#path = path;
  }

  load(): void {
    const path = this.#path;
    if (!path) return;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return;
    }
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const r = JSON.parse(line) as { tier?: unknown; id?: unknown; done?: unknown };
        if (typeof r.tier !== "string" || typeof r.id !== "string") continue;
        if (r.done) this.#byTier.get(r.tier)?.delete(r.id);
        else this.#set(r.tier).add(r.id);
      } catch {
        // A torn last line from a crash: the delete it recorded never returned to its caller.
      }
    }
    const lines = [...this.#byTier].flatMap(([tier, ids]) => [...ids].map((id) => JSON.stringify({ tier, id })));
    writeFileSync(`${path}.tmp`, lines.length ? `${lines.join("\n")}\n` : "");
    renameSync(`${path}.tmp`, path);
  }

  #set(tier: string): Set<string> {
    let set = this.#byTier.get(tier);
    if (!set) this.#byTier.set(tier, (set = new Set()));
    return set;
  }

  #journal(record: object): void {
    if (!this.#path) return;
    mkdirSync(dirname(this.#path), { recursive: true });
    appendFileSync(this.#path, `${JSON.stringify(record)}\n`);
  }

  add(tier: string, id: string): void {
    const set = this.#set(tier);
    if (set.has(id)) return;
    this.#journal({ tier, id });
    set.add(id);
  }

  applied(tier: string, id: string): void {
    if (!this.#byTier.get(tier)?.delete(id)) return;
    this.#journal({ tier, id, done: 1 });
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
}
