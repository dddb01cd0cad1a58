import type { Adapter } from "../core/protocol.js";
import { resolveQuery, type DatumHeader, type Position } from "../core/query.js";

/** Ids per page when a tier is walked through `query`. */
const PAGE = 500;

/**
 * The ids of every datum a tier holds, oldest first where the tier answers queries (headers
 * only: nothing is decoded, so a corrupt datum cannot stop the walk), else in `scan()` order.
 * A tier that can do neither cannot be walked (`null`).
 */
export function walkIds(tier: Adapter): AsyncIterable<string> | null {
  if (tier.query) return queryIds(tier, tier.query.bind(tier));
  if (tier.scan) return scanIds(tier.scan.bind(tier));
  return null;
}

async function* queryIds(tier: Adapter, query: NonNullable<Adapter["query"]>): AsyncIterable<string> {
  const base = resolveQuery({ select: "meta", order: "oldest", limit: PAGE });
  let cursor: Position | null = null;
  for (;;) {
    const page = (await query({ ...base, cursor })) as DatumHeader[];
    for (const h of page) yield h.id;
    if (page.length < PAGE) return;
    const last = page[page.length - 1] as DatumHeader;
    cursor = { createdAt: last.createdAt, id: last.id };
  }
}

async function* scanIds(scan: () => AsyncIterable<{ readonly id: string }>): AsyncIterable<string> {
  for await (const d of scan()) yield d.id;
}

/** Paces a walk to at most `rate` items per second (no pacing when `rate` is undefined). */
export class Pace {
  readonly #rate: number | undefined;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #start = -1;
  #count = 0;

  constructor(rate: number | undefined, now: () => number = () => performance.now(), sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))) {
    this.#rate = rate;
    this.#now = now;
    this.#sleep = sleep;
  }

  /** Waits until the next item is due. */
  async next(): Promise<void> {
    if (this.#rate === undefined) return;
    if (this.#start < 0) this.#start = this.#now();
    const due = this.#start + (this.#count++ * 1000) / this.#rate;
    const wait = due - this.#now();
    if (wait > 0) await this.#sleep(wait);
  }
}
