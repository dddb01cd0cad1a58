import { REFLOG_LIMIT, RefTable, type ReflogEntry, type TxOp } from "../../core/refs.js";

/**
 * The refs of a JSONL log, held in memory: `RefTable` (the shared rules of `plan` and `apply`)
 * plus the names that have a reflog, so compaction can write every reflog back, including those
 * of deleted refs. Rebuilt on open by replaying the log's `ref` records in order.
 */
export class LogRefs extends RefTable {
  readonly #names = new Set<string>();

  override apply(entries: readonly ReflogEntry[]): void {
    for (const e of entries) this.#names.add(e.name);
    super.apply(entries);
  }

  override clear(): void {
    this.#names.clear();
    super.clear();
  }

  /**
   * What compaction writes back: each name's last `REFLOG_LIMIT` moves, oldest first. Replaying
   * them leaves every ref at its last move (or absent, when the last move deleted it).
   */
  snapshot(): ReflogEntry[] {
    const out: ReflogEntry[] = [];
    for (const name of this.#names) out.push(...this.reflog(name, REFLOG_LIMIT).reverse());
    return out;
  }
}

/** One record a transaction writes, in the order of its operations. */
export type TxRecord = { readonly op: "put"; readonly index: number } | { readonly op: "del"; readonly id: string } | { readonly op: "ref"; readonly entry: ReflogEntry };

/**
 * The records a transaction that passed `checkPuts` and `plan` writes, in the order of its
 * operations: a put unless the id already holds it at that point (`checkPuts` made sure such a put
 * is identical, so it writes nothing), a delete only of an id that is there at that point, and one
 * ref record per move `plan` returned. `live(id)` says whether the id is stored before the transaction.
 */
export function txRecords(ops: readonly TxOp[], moves: readonly ReflogEntry[], live: (id: string) => boolean): TxRecord[] {
  const out: TxRecord[] = [];
  // What the transaction did to each id so far: true when it put it, false when it deleted it.
  const touched = new Map<string, boolean>();
  let m = 0;
  for (const [index, op] of ops.entries()) {
    if (op.op === "put") {
      const id = op.datum.id;
      const before = touched.get(id);
      const noop = before === true || (before === undefined && live(id));
      if (!noop) out.push({ op: "put", index });
      touched.set(id, true);
    } else if (op.op === "delete") {
      const there = touched.has(op.id) ? touched.get(op.id) === true : live(op.id);
      if (there) out.push({ op: "del", id: op.id });
      touched.set(op.id, false);
    } else {
      const e = moves[m];
      if (e !== undefined && e.name === op.name && (op.op === "setRef" || e.to === null)) {
        out.push({ op: "ref", entry: e });
        m++;
      }
    }
  }
  return out;
}
