/**
 * Where LangGraph's records live among a store's datums (README "Layout"). Everything of one
 * thread sits under one id prefix, so a thread is one prefix to list, count or delete:
 *
 *   <prefix><thread>/c/<checkpoint_id>[ <ns>]         a checkpoint (without its channel values)
 *   <prefix><thread>/b/<channel>/<version>[ <ns>]     one channel value, stored once per version
 *   <prefix><thread>/w/<checkpoint key>/<task>/<gen>  one putWrites call of one task
 *
 * Parts are escaped (`%`, `/`, space and control characters become `%XX`), so a part never
 * splits and a space can only be the separator of the checkpoint namespace (absent for the root
 * namespace ""). Checkpoint ids sort like the ids themselves, across namespaces of a thread, so
 * `before` is an id range.
 */
import { createHash } from "node:crypto";

export const DEFAULT_PREFIX = "langgraph/";

const ESCAPED = /[\u0000-\u0020%/\u007f-\u009f]/g;

/** One part of an id: `%`, `/`, space and control characters as `%XX`. */
export function part(text: string): string {
  return text.replace(ESCAPED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

/** The inverse of `part`. */
export function unpart(text: string): string {
  return text.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** `<part>` for the root namespace, `<part> <ns>` for another. */
function withNs(key: string, ns: string): string {
  return ns === "" ? key : `${key} ${part(ns)}`;
}

/** The ids and ref names of one saver (one prefix). */
export class Layout {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Everything of a thread. */
  thread(threadId: string): string {
    return `${this.prefix}${part(threadId)}/`;
  }

  /** The checkpoints of a thread, every namespace. */
  checkpoints(threadId: string): string {
    return `${this.thread(threadId)}c/`;
  }

  checkpoint(threadId: string, ns: string, checkpointId: string): string {
    return this.checkpoints(threadId) + withNs(part(checkpointId), ns);
  }

  /** The ids of the checkpoints of a thread older than `checkpointId` (every namespace) are below this. */
  checkpointsBefore(threadId: string, checkpointId: string): string {
    return this.checkpoints(threadId) + part(checkpointId);
  }

  /**
   * The id range of one checkpoint id in every namespace of a thread: `c/<id>` and `c/<id> <ns>`,
   * and nothing else (a space is the smallest character an id may hold, and parts hold none).
   */
  checkpointAnyNs(threadId: string, checkpointId: string): { gte: string; lt: string } {
    const base = this.checkpoints(threadId) + part(checkpointId);
    return { gte: base, lt: `${base}!` };
  }

  blob(threadId: string, ns: string, channel: string, version: string | number): string {
    return `${this.thread(threadId)}b/${part(channel)}/${withNs(part(String(version)), ns)}`;
  }

  /** The writes of one checkpoint. */
  writes(threadId: string, ns: string, checkpointId: string): string {
    return `${this.thread(threadId)}w/${withNs(part(checkpointId), ns)}/`;
  }

  /** The writes of one task to one checkpoint: generation 0, 1, … (README "Pending writes"). */
  taskWrites(threadId: string, ns: string, checkpointId: string, taskId: string): string {
    return `${this.writes(threadId, ns, checkpointId)}${part(taskId)}/`;
  }

  /** The ref naming the latest checkpoint of a thread's namespace (`latest: "ref"`). */
  latestRef(threadId: string, ns: string): string {
    return this.thread(threadId) + withNs("latest", ns);
  }
}

/** The generation of a writes datum: the last part of its id. */
export function generationOf(id: string): number {
  return Number(id.slice(id.lastIndexOf("/") + 1));
}

// Milliseconds between the Gregorian epoch (UUIDv6 time 0) and the Unix epoch.
const GREGORIAN_OFFSET_MS = 12_219_292_800_000;
const UUID = /^([0-9a-f]{8})-([0-9a-f]{4})-([67])([0-9a-f]{3})-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The creation time (epoch ms) of a checkpoint id: LangGraph's ids are UUIDv6, whose text sorts
 * by its 100 ns timestamp, and UUIDv7 sorts by its milliseconds; any other id is 0. Every datum of
 * a checkpoint (it, its new channel values, its writes) gets this `createdAt`, so the store's
 * order (createdAt, then id) is checkpoint id order, and a checkpoint's writes are one instant.
 */
export function checkpointTime(id: string): number {
  const m = UUID.exec(id);
  if (m === null) return 0;
  const [, high, mid, version, low] = m as unknown as [string, string, string, string, string];
  const hm = Number.parseInt(high + mid, 16); // 48 bits
  if (version === "7") return hm;
  // ticks = hm · 2^12 + low (60 bits, 100 ns since 1582-10-15), divided by 10 000 exactly in
  // doubles: hm = a1 · 2^24 + a0, and 2^36 = 6 871 947 · 10 000 + 6 736 (every term < 2^53).
  const a1 = Math.floor(hm / 0x1000000);
  const a0 = hm - a1 * 0x1000000;
  const ms = a1 * 6_871_947 + Math.floor((a1 * 6_736 + a0 * 4096 + Number.parseInt(low, 16)) / 10_000) - GREGORIAN_OFFSET_MS;
  return ms < 0 ? 0 : ms;
}

/** JSON with object keys sorted at every level: one text per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  }) as string;
}

/** Values longer than this are tagged by their hash (a tag is indexed; a long one costs and says nothing more). */
export const TAG_VALUE_LIMIT = 256;

/**
 * The tag of a value that equality filters compare: its canonical JSON, or `sha256:<hex>` of it
 * when longer than `TAG_VALUE_LIMIT` (a JSON text never starts with `s`, so the two never meet).
 * `undefined` (or anything JSON drops) has none.
 */
export function valueTag(value: unknown): string | undefined {
  // Strings, numbers, booleans and null have one JSON text already.
  const json = (value === null || typeof value !== "object" ? JSON.stringify(value) : canonicalJson(value)) as string | undefined;
  if (json === undefined) return undefined;
  if (json.length <= TAG_VALUE_LIMIT) return json;
  return `sha256:${createHash("sha256").update(json).digest("hex")}`;
}
