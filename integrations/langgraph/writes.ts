/**
 * Pending writes (README "Pending writes"). One `putWrites` call of one task is one datum, so a
 * call is stored whole or not at all on every tier, object stores included. A task's calls to one
 * checkpoint are its generations 0, 1, 2…; reading merges them as LangGraph's savers do: a regular
 * write (index ≥ 0) keeps its first value, a special one (an error, an interrupt, a resume: a
 * negative index) its last. A call that replaces special writes is a new generation, created by
 * create-only put (so two writers never both take one), and the generations it makes
 * meaningless are deleted in the same transaction where the tier has transactions.
 */
import type { CheckpointPendingWrite } from "@langchain/langgraph-checkpoint";
import type { Datum } from "../../core/datum.js";
import { generationOf } from "./keys.js";
import { lg } from "./peers.js";

/** One write of a call: its index (negative for special channels), channel and value. */
export type WriteEntry = readonly [idx: number, channel: string, value: unknown];

/** What one writes datum holds, decoded. */
export interface WriteCall {
  readonly id: string;
  readonly taskId: string;
  readonly taskPath: string;
  readonly generation: number;
  readonly entries: readonly WriteEntry[];
}

/** The serialized body of a call. */
export interface CallBody {
  readonly t: string;
  readonly p: string;
  readonly w: ReadonlyArray<readonly [number, string, unknown]>;
}

/** The indexes LangGraph gives the writes of one call (`WRITES_IDX_MAP`, else the position). */
export function entriesOf(writes: ReadonlyArray<readonly [string, unknown]>): WriteEntry[] {
  return writes.map(([channel, value], i) => [lg.WRITES_IDX_MAP[channel] ?? i, channel, value] as const);
}

export function callOf(datum: Datum, body: CallBody): WriteCall {
  return { id: datum.id, taskId: body.t, taskPath: body.p, generation: generationOf(datum.id), entries: body.w };
}

interface Merged {
  readonly taskId: string;
  readonly taskPath: string;
  readonly idx: number;
  readonly channel: string;
  readonly value: unknown;
}

/** The pending writes the calls add up to, in `writesSortKey` order (task path, task id, index). */
export function mergeCalls(calls: readonly WriteCall[]): CheckpointPendingWrite[] {
  const byKey = new Map<string, Merged>();
  const ordered = [...calls].sort(byTaskThenGeneration);
  for (const call of ordered) {
    for (const [idx, channel, value] of call.entries) {
      const key = `${idx}\u0000${call.taskId}`;
      if (idx >= 0 && byKey.has(key)) continue;
      byKey.set(key, { taskId: call.taskId, taskPath: call.taskPath, idx, channel, value });
    }
  }
  const merged = [...byKey.values()];
  merged.sort((a, b) => lg.compareWritesSortKeys(lg.writesSortKey(a.taskPath, a.taskId, a.idx), lg.writesSortKey(b.taskPath, b.taskId, b.idx)));
  return merged.map((m) => [m.taskId, m.channel, m.value]);
}

/** What a new call adds over a task's stored calls: regular writes already stored are dropped. */
export function newEntries(stored: readonly WriteCall[], entries: readonly WriteEntry[]): WriteEntry[] {
  const taken = new Set<number>();
  for (const call of stored) for (const [idx] of call.entries) if (idx >= 0) taken.add(idx);
  return entries.filter(([idx]) => idx < 0 || !taken.has(idx));
}

/** Calls of one task in the order their writes apply: by task id, then generation. */
function byTaskThenGeneration(a: WriteCall, b: WriteCall): number {
  if (a.taskId !== b.taskId) return a.taskId < b.taskId ? -1 : 1;
  return a.generation - b.generation;
}

/**
 * The stored calls of one task that a new call (`next`, the next generation) leaves without a
 * write anyone reads: each of their writes is a special write replaced later, by the new call or
 * an earlier one. Regular writes are never replaced, so a call holding one stays; generation 0
 * stays too, because a task's first call is put as generation 0 without reading first (a put
 * that finds it taken is the sign that the task has written before).
 */
export function supersededBy(stored: readonly WriteCall[], next: WriteCall): WriteCall[] {
  const winner = new Map<number, WriteCall>();
  for (const call of [...stored, next].sort(byTaskThenGeneration)) {
    for (const [idx] of call.entries) if (idx < 0 || !winner.has(idx)) winner.set(idx, call);
  }
  const live = new Set(winner.values());
  return stored.filter((call) => call.generation > 0 && !live.has(call));
}
