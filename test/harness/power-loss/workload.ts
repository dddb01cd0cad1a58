/**
 * A random workload run on plfs, and the check of every crash state against what was
 * acknowledged (test/README.md, "Power loss").
 *
 * The workload keeps up to `maxWave` steps in flight — puts, batches, deletes, identical re-puts
 * and re-puts of deleted ids, never two at once on one id — launching new ones on every turn of
 * the event loop, so writes arrive while syncs run; every 30 steps everything settles and a
 * compaction or a close and reopen runs alone. Each step's place in the order of calls is its
 * index; when its promise resolves the test takes `mark()`, so a crash at journal position
 * `at >= ack` happened after the step was acknowledged.
 *
 * The local tiers write in the order of calls (JSONL appends synchronously inside the call;
 * SQLite commits synchronously inside it), so what a power loss may leave is the state after
 * some prefix of the steps. A crash state passes when the tier opens, its datums equal the state
 * after the first `j` steps for some `j`, and `j` covers every step the mode promises to keep
 * (`requirement`). Anything else is corruption (no prefix matches, or the open fails) or a lost
 * acknowledged write.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { makeDatum, type Datum } from "../../../core/datum.js";
import type { Adapter, AdapterContext } from "../../../core/protocol.js";
import type { Ref, RefExpectation, RefMove, TxOp } from "../../../core/refs.js";
import { rng, syncPoints, type JournalOp } from "./model.js";
import { scratchRoot, type PowerLossFs } from "./index.js";

export type Step =
  | { readonly kind: "put"; readonly datum: Datum }
  | { readonly kind: "putMany"; readonly datums: readonly Datum[] }
  | { readonly kind: "delete"; readonly id: string }
  /** An identical re-put of what step `origin` wrote: changes nothing, acknowledged once that is durable. */
  | { readonly kind: "same"; readonly datum: Datum; readonly origin: number }
  /** Moves a ref by compare-and-set (the expectation holds: one step at a time touches a ref). */
  | { readonly kind: "setRef"; readonly name: string; readonly target: string; readonly expect: RefExpectation }
  /** A transaction: puts, perhaps a delete and a ref move, all or nothing. */
  | { readonly kind: "commit"; readonly ops: readonly TxOp[] }
  | { readonly kind: "compact" }
  | { readonly kind: "reopen" }
  | { readonly kind: "close" };

export interface Issued {
  readonly step: Step;
  readonly index: number;
  /** Journal records when the step was acknowledged (null: never acknowledged). */
  ack: number | null;
}

export interface Tier extends Adapter {
  compact?(): Promise<unknown>;
}

/** The tier under test: a fresh adapter on its files inside `dir`. */
export type OpenTier = (dir: string) => Tier;

/**
 * How many of the first steps a crash after `issued` was acknowledged must keep
 * (`index + 1` for a step that must survive, `0` for one that may be lost).
 */
export type Requirement = (issued: Issued) => number;

/** fsync / group / FULL: every acknowledged write survives; an identical re-put vouches for the write it matched. */
export const EVERY_ACKNOWLEDGED: Requirement = ({ step, index }) => (step.kind === "same" ? step.origin + 1 : index + 1);

/** none / NORMAL: only what a compaction or a close made durable must survive. */
export const SYNC_POINTS_ONLY: Requirement = ({ step, index }) =>
  step.kind === "compact" || step.kind === "reopen" || step.kind === "close" ? index + 1 : 0;

export interface WorkloadOptions {
  readonly steps: number;
  readonly seed: number;
  /** Most steps in flight at once. */
  readonly maxWave: number;
  /** Whether to compact now and then (JSONL). */
  readonly compact: boolean;
}

export const DATA_DIR = "data";

/** What a tier holds after recovery: its datums and, when it has refs, its refs. */
export interface Recovered {
  readonly datums: readonly Datum[];
  readonly refs: readonly Ref[];
}

/** Ref names the workload moves. */
const REF_NAMES = ["ref/main", "ref/agent-\u00fc", "ref/2", "ref/3"];

/** A ref's key in a state map: no datum id holds a control character, so it cannot clash. */
const refKey = (name: string): string => `\u0000ref:${name}`;

/** The ids and ref keys a step writes. */
function keysOf(step: Step): string[] {
  switch (step.kind) {
    case "put":
    case "same":
      return [step.datum.id];
    case "putMany":
      return step.datums.map((d) => d.id);
    case "delete":
      return [step.id];
    case "setRef":
      return [refKey(step.name)];
    case "commit":
      return step.ops.map((o) => (o.op === "put" ? o.datum.id : o.op === "delete" ? o.id : refKey(o.name)));
    default:
      return [];
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Runs the workload on `fs` (the tier's files in `<root>/data`) and closes the tier at the end. */
export async function runWorkload(fs: PowerLossFs, open: OpenTier, options: WorkloadOptions, context?: AdapterContext): Promise<Issued[]> {
  const dir = join(fs.root, DATA_DIR);
  mkdirSync(dir);
  fsyncPath(fs.root); // the data directory itself exists before the first cut that matters
  const random = rng(options.seed);
  const int = (n: number) => Math.floor(random() * n);
  const issued: Issued[] = [];
  let counter = 0;
  /** Acknowledged state: id -> index of the step that wrote it. */
  const live = new Map<string, { datum: Datum; origin: number }>();
  const deleted: string[] = [];
  /** Acknowledged refs: name -> version. */
  const refs = new Map<string, number>();
  const move = (): RefMove => ({ by: "power-loss", at: 1_700_000_000_000 + counter });

  const newDatum = (id?: string): Datum => {
    const n = counter++;
    const size = random() < 0.1 ? 1000 + int(6000) : int(300);
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = int(256);
    const metadata: Record<string, string> = {};
    for (let i = int(3); i > 0; i--) metadata[`k${int(4)}`] = `v${int(1000)}\u00e9`;
    const ids = [...live.keys()];
    return makeDatum({
      id: id ?? (random() < 0.2 ? `agent/\u00fc${n}` : `d${n}`),
      content,
      createdAt: 1_700_000_000_000 + n,
      causalParent: ids.length > 0 && random() < 0.5 ? (ids[int(ids.length)] as string) : null,
      metadata,
    });
  };

  let tier = open(dir);
  await tier.open(context);
  const run = (step: Step): Promise<unknown> => {
    switch (step.kind) {
      case "put":
      case "same":
        return tier.put(step.datum);
      case "putMany":
        return (tier.putMany as NonNullable<Tier["putMany"]>).call(tier, step.datums);
      case "delete":
        return tier.delete(step.id);
      case "setRef":
        return (tier.setRef as NonNullable<Tier["setRef"]>).call(tier, step.name, step.target, step.expect, move());
      case "commit":
        return (tier.commit as NonNullable<Tier["commit"]>).call(tier, step.ops, move());
      case "compact":
        return (tier.compact as NonNullable<Tier["compact"]>).call(tier);
      case "reopen":
        return tier.close().then(async () => {
          tier = open(dir);
          await tier.open(context);
        });
      case "close":
        return tier.close();
    }
  };
  /** Ids with a step in flight: no second step touches them until it settles. */
  const busy = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  const launch = (step: Step): void => {
    const entry: Issued = { step, index: issued.length, ack: null };
    issued.push(entry);
    const ids = keysOf(step);
    for (const id of ids) busy.add(id);
    const settled: Promise<void> = run(step).then(
      () => {
        entry.ack = fs.mark();
        if (step.kind === "put") live.set(step.datum.id, { datum: step.datum, origin: entry.index });
        else if (step.kind === "putMany") for (const d of step.datums) live.set(d.id, { datum: d, origin: entry.index });
        else if (step.kind === "delete") {
          live.delete(step.id);
          deleted.push(step.id);
        } else if (step.kind === "setRef") {
          refs.set(step.name, (refs.get(step.name) ?? 0) + 1);
        } else if (step.kind === "commit") {
          for (const o of step.ops) {
            if (o.op === "put") live.set(o.datum.id, { datum: o.datum, origin: entry.index });
            else if (o.op === "delete") {
              live.delete(o.id);
              deleted.push(o.id);
            } else if (o.op === "setRef") refs.set(o.name, (refs.get(o.name) ?? 0) + 1);
          }
        }
      },
      (error: unknown) => {
        failure ??= { error };
      },
    );
    const tracked = settled.finally(() => {
      for (const id of ids) busy.delete(id);
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
  };
  const drain = async (): Promise<void> => {
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  };
  const check = (): void => {
    if (failure !== null) throw failure.error;
  };
  const hasRefs = tier.capabilities.refs === true && tier.setRef !== undefined;
  const hasTransactions = tier.capabilities.transactions === true && tier.commit !== undefined;
  const freeRef = (): { name: string; expect: RefExpectation } | null => {
    const names = REF_NAMES.filter((n) => !busy.has(refKey(n)));
    if (names.length === 0) return null;
    const name = names[int(names.length)] as string;
    const version = refs.get(name);
    return { name, expect: version === undefined ? { absent: true } : { version } };
  };
  const pick = (): Step | null => {
    const ids = [...live.keys()].filter((id) => !busy.has(id));
    const t = random();
    if (hasRefs && t < 0.08 && ids.length > 0) {
      const ref = freeRef();
      if (ref !== null) return { kind: "setRef", name: ref.name, target: ids[int(ids.length)] as string, expect: ref.expect };
    }
    if (hasTransactions && t > 0.92) {
      const ops: TxOp[] = [];
      const puts = 1 + int(3);
      for (let i = 0; i < puts; i++) {
        const d = newDatum();
        if (live.has(d.id) || busy.has(d.id) || ops.some((o) => o.op === "put" && o.datum.id === d.id)) return null;
        ops.push({ op: "put", datum: d });
      }
      if (random() < 0.3 && ids.length > 0) ops.push({ op: "delete", id: ids[int(ids.length)] as string });
      const ref = random() < 0.6 ? freeRef() : null;
      if (ref !== null) {
        const first = ops[0] as Extract<TxOp, { op: "put" }>;
        ops.push({ op: "setRef", name: ref.name, target: first.datum.id, expect: ref.expect });
      }
      return { kind: "commit", ops };
    }
    const k = random();
    if (k < 0.2 && ids.length > 0) return { kind: "delete", id: ids[int(ids.length)] as string };
    if (k < 0.3 && ids.length > 0) {
      const { datum, origin } = live.get(ids[int(ids.length)] as string) as { datum: Datum; origin: number };
      return { kind: "same", datum, origin };
    }
    if (k < 0.4) {
      const again = deleted.filter((id) => !live.has(id) && !busy.has(id));
      if (again.length > 0) return { kind: "put", datum: newDatum(again[int(again.length)]) }; // an id used again after its delete
    }
    const fresh = (): Datum | null => {
      const d = newDatum();
      return live.has(d.id) || busy.has(d.id) ? null : d;
    };
    if (k < 0.55) {
      const datums = Array.from({ length: 2 + int(5) }, fresh);
      return datums.every((d) => d !== null) && new Set(datums.map((d) => d.id)).size === datums.length ? { kind: "putMany", datums } : null;
    }
    const datum = fresh();
    return datum === null ? null : { kind: "put", datum };
  };

  // Steps are launched on every turn of the event loop, up to `maxWave` in flight, whether or not
  // earlier ones were acknowledged: writes arrive while syncs run, as in a server. Every 30th
  // step, all settle and a compaction (when the tier has one) or a close-and-reopen runs alone.
  let barriers = 0;
  while (issued.length < options.steps) {
    check();
    if (issued.length >= 30 * (barriers + 1)) {
      barriers++;
      await drain();
      check();
      launch({ kind: options.compact && barriers % 3 !== 0 ? "compact" : "reopen" });
      await drain();
      continue;
    }
    for (let n = int(options.maxWave + 1); n > 0 && inFlight.size < options.maxWave; n--) {
      const step = pick();
      if (step !== null) launch(step);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await drain();
  check();
  launch({ kind: "close" });
  await drain();
  check();
  return issued;
}

/** A datum as one comparable string. */
function encode(d: Datum): string {
  const metadata = Object.entries(d.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([d.id, d.createdAt, d.causalParent, metadata, Buffer.from(d.content).toString("base64")]);
}

/** One entry of a state (a datum or a ref) as 64 bits; a state's fingerprint is the XOR of its entries'. */
function hash(key: string, value: string): bigint {
  return createHash("sha1").update(key).update("\u0001").update(value).digest().readBigUInt64LE(0);
}

/** A ref's value in a state map: its target and version (every move adds one to the version). */
function moveRef(state: Map<string, string>, name: string, target: string): void {
  const key = refKey(name);
  const before = state.get(key);
  const version = before === undefined ? 1 : Number(before.slice(before.lastIndexOf("@") + 1)) + 1;
  state.set(key, `${target}@${version}`);
}

function applyStep(state: Map<string, string>, step: Step): void {
  if (step.kind === "put") state.set(step.datum.id, encode(step.datum));
  else if (step.kind === "putMany") for (const d of step.datums) state.set(d.id, encode(d));
  else if (step.kind === "delete") state.delete(step.id);
  else if (step.kind === "setRef") moveRef(state, step.name, step.target);
  else if (step.kind === "commit") {
    for (const o of step.ops) {
      if (o.op === "put") state.set(o.datum.id, encode(o.datum));
      else if (o.op === "delete") state.delete(o.id);
      else if (o.op === "setRef") moveRef(state, o.name, o.target);
      else state.delete(refKey(o.name));
    }
  }
}

/** The state after the first j steps, for every j: its fingerprint (XOR of hashes) and size. */
function prefixFingerprints(issued: readonly Issued[]): Array<{ fp: bigint; size: number }> {
  const state = new Map<string, string>();
  let fp = 0n;
  const out = [{ fp, size: 0 }];
  for (const { step } of issued) {
    const before = new Map<string, string | undefined>();
    for (const id of keysOf(step)) if (!before.has(id)) before.set(id, state.get(id));
    applyStep(state, step);
    for (const [id, old] of before) {
      if (old !== undefined) fp ^= hash(id, old);
      const now = state.get(id);
      if (now !== undefined) fp ^= hash(id, now);
    }
    out.push({ fp, size: state.size });
  }
  return out;
}

function stateAt(issued: readonly Issued[], j: number): Map<string, string> {
  const state = new Map<string, string>();
  for (let i = 0; i < j; i++) applyStep(state, (issued[i] as Issued).step);
  return state;
}

export interface Cut {
  /** Records of the journal applied before the power goes. */
  readonly at: number;
  /** Seed of a torn state; null: strict. */
  readonly torn: number | null;
  readonly why: "sync-before" | "sync-after" | "random" | "torn" | "end";
}

/**
 * Cut points: the start and the end; just before every sync, strict and torn (there the most is
 * pending); just after every sync; then strict and torn cuts anywhere, at least `minRandom` of
 * each and as many as it takes to reach `total`.
 */
export function chooseCuts(ops: readonly JournalOp[], counts: { total: number; minRandom: number }, seed: number): Cut[] {
  const random = rng(seed ^ 0x5bd1e995);
  const tornSeed = () => Math.floor(random() * 2 ** 31);
  const cuts: Cut[] = [];
  const seen = new Set<string>();
  const add = (cut: Cut): boolean => {
    const key = `${cut.at}/${cut.torn ?? "strict"}`;
    if (seen.has(key)) return false;
    seen.add(key);
    cuts.push(cut);
    return true;
  };
  add({ at: 0, torn: null, why: "end" });
  add({ at: ops.length, torn: null, why: "end" });
  for (const s of syncPoints(ops)) {
    add({ at: s, torn: null, why: "sync-before" });
    add({ at: s, torn: tornSeed(), why: "sync-before" });
    add({ at: s + 1, torn: null, why: "sync-after" });
  }
  const each = Math.max(counts.minRandom, Math.ceil((counts.total - cuts.length) / 2));
  // Distinct strict cuts while there are positions left; torn ones differ by their seed anyway.
  for (let i = 0, tries = 0; i < each && tries < each * 20; tries++) {
    if (add({ at: Math.floor(random() * (ops.length + 1)), torn: null, why: "random" })) i++;
  }
  for (let i = 0; i < each; i++) add({ at: Math.floor(random() * (ops.length + 1)), torn: tornSeed(), why: "torn" });
  return cuts.sort((a, b) => a.at - b.at);
}

export interface CheckOptions {
  readonly issued: readonly Issued[];
  readonly cuts: readonly Cut[];
  readonly requirement: Requirement;
  /** Opens the tier on a crash state, returns what it holds; may check more (a write after recovery). */
  readonly recover: (dir: string, cut: Cut) => Promise<Recovered>;
  /** For messages: how to reproduce. */
  readonly label: string;
}

export interface CheckSummary {
  readonly cuts: number;
  readonly torn: number;
  /** Cuts whose state kept fewer steps than had been acknowledged when the power went. */
  readonly lostUnrequired: number;
  /** Cuts whose state kept steps that were not acknowledged yet. */
  readonly keptUnacknowledged: number;
  /** Steps acknowledged at the end. */
  readonly steps: number;
}

/** Materializes every cut and checks it; throws on the first failure with everything needed to reproduce it. */
export async function checkCrashStates(fs: PowerLossFs, options: CheckOptions): Promise<CheckSummary> {
  const { issued, cuts, requirement, recover, label } = options;
  const replay = fs.replay();
  const prefixes = prefixFingerprints(issued);
  const scratch = mkdtempSync(join(scratchRoot(), "dgent-crash-"));
  let lostUnrequired = 0;
  let keptUnacknowledged = 0;
  let torn = 0;
  try {
    for (const [n, cut] of cuts.entries()) {
      replay.advance(cut.at);
      const dir = join(scratch, String(n));
      mkdirSync(dir);
      replay.materialize(dir, { torn: cut.torn === null ? null : rng(cut.torn) });
      if (cut.torn !== null) torn++;
      const where = `${label}: power lost after journal record ${cut.at} of ${replay.length} (${cut.why}${cut.torn === null ? "" : `, torn seed ${cut.torn}`})`;
      let recovered: Recovered;
      try {
        recovered = await recover(join(dir, DATA_DIR), cut);
      } catch (error) {
        throw new Error(`${where}: the tier does not open cleanly: ${(error as Error).stack ?? String(error)}`);
      }
      const got = new Map<string, string>();
      let fp = 0n;
      for (const d of recovered.datums) got.set(d.id, encode(d));
      for (const r of recovered.refs) got.set(refKey(r.name), `${r.target}@${r.version}`);
      for (const [key, value] of got) fp ^= hash(key, value);
      let required = 0;
      let acknowledged = 0;
      for (const i of issued) {
        if (i.ack !== null && i.ack <= cut.at) {
          required = Math.max(required, requirement(i));
          acknowledged = Math.max(acknowledged, i.index + 1);
        }
      }
      // The longest prefix whose state is exactly what was read back (fingerprints narrow the search).
      let j = -1;
      for (let k = prefixes.length - 1; k >= 0 && j < 0; k--) {
        const p = prefixes[k] as { fp: bigint; size: number };
        if (p.fp !== fp || p.size !== got.size) continue;
        const expected = stateAt(issued, k);
        if ([...expected].every(([key, value]) => got.get(key) === value)) j = k;
      }
      if (j < 0) {
        const expected = stateAt(issued, required);
        const missing = [...expected.keys()].filter((id) => got.get(id) !== expected.get(id)).slice(0, 5);
        const extra = [...got.keys()].filter((id) => !expected.has(id)).slice(0, 5);
        throw new Error(
          `${where}: the ${got.size} datums and refs read back are not the state after any prefix of the steps (corrupt or reordered); ` +
            `against the ${required} steps that had to survive: differing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(extra)}`,
        );
      }
      if (j < required) {
        const lost = issued.filter((i) => i.index >= j && i.index < required && i.ack !== null && i.ack <= cut.at && requirement(i) > j);
        throw new Error(
          `lost acknowledged writes: ${where}, the tier holds the state after ${j} steps, but ${required} had to survive; ` +
            `acknowledged and lost: ${JSON.stringify(lost.slice(0, 5).map((i) => ({ index: i.index, kind: i.step.kind, ack: i.ack })))}`,
        );
      }
      if (j < acknowledged) lostUnrequired++;
      if (j > acknowledged) keptUnacknowledged++;
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { cuts: cuts.length, torn, lostUnrequired, keptUnacknowledged, steps: issued.length };
}

/** The cut counts and workload size: CI-sized, or much larger with DGENT_TEST_LONG=1. */
export const LONG = process.env.DGENT_TEST_LONG === "1";

/** The seed of this run: DGENT_POWER_LOSS_SEED to replay one, else random (printed in every failure). */
export function runSeed(): number {
  const fixed = process.env.DGENT_POWER_LOSS_SEED;
  return fixed !== undefined && fixed !== "" ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}
