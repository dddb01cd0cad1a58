import { randomBytes } from "node:crypto";
import { makeDatum, type Datum } from "../core/datum.js";

/** As in the table: 1 KiB of content and 3 tags per datum. */
export const CONTENT_BYTES = 1024;
export const TAGS = 3;
export const CHAIN_DEPTH = 10;
export const LIST_LIMIT = 100;
export const BATCH = 100;

/** A few distinct random contents, reused (the stores copy them; no two neighbours share one). */
const CONTENTS: readonly Uint8Array[] = Array.from({ length: 16 }, () => randomBytes(CONTENT_BYTES));

const ROLES = ["user", "agent", "tool"] as const;

/** The `i`-th datum of a sequence: time-ordered id (UUIDv7), 1 KiB, 3 tags, an optional parent. */
export function benchDatum(i: number, causalParent: string | null, createdAt?: number): Datum {
  return makeDatum({
    content: CONTENTS[i % CONTENTS.length] as Uint8Array,
    causalParent,
    metadata: { role: ROLES[i % 3] as string, step: String(i), session: `session-${i % 64}` },
    ...(createdAt !== undefined ? { createdAt } : {}),
  });
}

/** The queries part: the tag it filters on and its 20 distinct values (one in 20 datums has each). */
export const QUERY_TAG = "topic";
export const QUERY_VALUES: readonly string[] = Array.from({ length: 20 }, (_, k) => `t${String(k).padStart(2, "0")}`);

/**
 * The `i`-th datum of the queries part: as `benchDatum` (1 KiB, 3 tags), with `topic` (cycling
 * through `QUERY_VALUES`) in place of `session`.
 */
export function queryDatum(i: number, causalParent: string | null, createdAt: number): Datum {
  return makeDatum({
    content: CONTENTS[i % CONTENTS.length] as Uint8Array,
    causalParent,
    metadata: { role: ROLES[i % 3] as string, step: String(i), [QUERY_TAG]: QUERY_VALUES[i % QUERY_VALUES.length] as string },
    createdAt,
  });
}

/**
 * The prefill every contender of a tier loads: `n` datums in chains of `CHAIN_DEPTH` (each
 * datum's parent is the previous one, every tenth starts a new chain), so `causalChain` of a
 * chain's last datum returns exactly 10.
 */
export interface Prefill {
  readonly datums: readonly Datum[];
  /** Ids in a scattered order, for gets. */
  readonly getIds: readonly string[];
  /** The last datum of every chain. */
  readonly chainEnds: readonly string[];
}

export function makePrefill(n: number): Prefill {
  const datums: Datum[] = new Array(n);
  let parent: string | null = null;
  // One datum per millisecond, ending now: an agent's history. (Made in a tight loop, thousands
  // would share one millisecond, and ties in createdAt are a case of their own; see README.)
  const t0 = Date.now() - n;
  for (let i = 0; i < n; i++) {
    const d = benchDatum(i, i % CHAIN_DEPTH === 0 ? null : parent, t0 + i);
    datums[i] = d;
    parent = d.id;
  }
  const getIds: string[] = new Array(n);
  // A prime stride visits every datum once, far from its neighbours.
  for (let k = 0; k < n; k++) getIds[k] = (datums[(k * 7919) % n] as Datum).id;
  const chainEnds: string[] = [];
  for (let i = CHAIN_DEPTH - 1; i < n; i += CHAIN_DEPTH) chainEnds.push((datums[i] as Datum).id);
  return { datums, getIds, chainEnds };
}

/** Fresh datums for writes: new ids, each the child of the one before (an agent's trace). */
export function freshDatums(count: number): Datum[] {
  const out: Datum[] = new Array(count);
  let parent: string | null = null;
  for (let i = 0; i < count; i++) {
    const d = benchDatum(i, parent);
    out[i] = d;
    parent = i % CHAIN_DEPTH === CHAIN_DEPTH - 1 ? null : d.id;
  }
  return out;
}

/**
 * Datums far older than the prefill (createdAt from 1000 ms after the epoch, 1 ms apart): a
 * probe's writes then never enter the newest-first lists the benchmark measures.
 */
export function oldDatums(count: number): Datum[] {
  const out: Datum[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = benchDatum(i, null, 1000 + oldCount++);
  return out;
}

let oldCount = 0;

export function freshBatches(count: number): Datum[][] {
  const out: Datum[][] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = freshDatums(BATCH);
  return out;
}

/** A cursor over a read sequence that wraps around. */
export function cycling<T>(items: readonly T[]): (count: number) => T[] {
  let next = 0;
  return (count) => {
    const out: T[] = new Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = items[next] as T;
      next = (next + 1) % items.length;
    }
    return out;
  };
}

/** What a peer stores for a datum: a JSON-able record (content as base64). */
export interface DatumRecord {
  c: string;
  t: number;
  p: string | null;
  m: Record<string, string>;
}

export function toRecord(d: Datum): DatumRecord {
  return { c: Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength).toString("base64"), t: d.createdAt, p: d.causalParent, m: d.metadata };
}

export function fromRecord(id: string, r: DatumRecord): Datum {
  return { id, content: Buffer.from(r.c, "base64"), createdAt: r.t, causalParent: r.p, metadata: r.m };
}

/** Checks a contender returned real data (the benchmark measures work, not errors or no-ops). */
export function checkDatum(value: unknown, what: string): void {
  const d = value as Datum | null;
  if (d === null || d === undefined || typeof d !== "object" || !(d.content instanceof Uint8Array) || d.content.byteLength !== CONTENT_BYTES) {
    throw new Error(`${what}: expected a datum with ${CONTENT_BYTES} bytes of content, got ${describe(value)}`);
  }
  if (Object.keys(d.metadata ?? {}).length !== TAGS) throw new Error(`${what}: expected ${TAGS} tags, got ${JSON.stringify(d.metadata)}`);
}

export function checkList(value: unknown, length: number, what: string): void {
  if (!Array.isArray(value) || value.length !== length) {
    throw new Error(`${what}: expected ${length} datums, got ${Array.isArray(value) ? value.length : describe(value)}`);
  }
  for (const d of value) checkDatum(d, what);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value;
}
