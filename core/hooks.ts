/**
 * Every extension point of a store, declared once. This is the only file that imports tapable.
 * `core/HOOKS.md` documents each hook; `test/hooks-doc.test.ts` keeps that page and this list in step.
 */
import type * as Tapable from "tapable";
import { requireNow } from "./lazy.js";
import type { Datum } from "./datum.js";
import { dgentError, isDgentError } from "./errors.js";
import type { ChangeEvent, ResolvedListOptions } from "./protocol.js";

export interface ReadInfo {
  /** The operation the datum is being returned from. */
  readonly op: "get" | "list" | "causalChain" | "query" | "getMany";
  /** The tier that answered, or the plugin name when a `beforeGet` tap answered. */
  readonly source: string;
}
export interface WriteInfo {
  /** The tier the datum landed on. */
  readonly tier: string;
  /** The datum as the caller passed it, before `beforePut` transformed it (what `read` gives back). */
  readonly input: Datum;
}
/** One write a `deferPut` tap may take over: the datum to store and the caller's original. */
export interface DeferredWrite {
  /** As it will be stored (after `beforePut`). */
  readonly datum: Datum;
  /** As the caller passed it. */
  readonly input: Datum;
}
export interface CommitResult {
  /** Errors thrown by `afterPut` taps for writes that are stored. */
  readonly observerErrors: readonly unknown[];
}
export interface DeferInfo {
  readonly op: "put" | "putMany";
  /**
   * Writes deferred datums to the tiers now, as one batch (all or nothing where the landing tier
   * declares `batch`), then calls `afterPut` for each. Rejects only when the tiers did not store
   * them, as `putMany` does (`DGENT_CONFLICT`…); errors of `afterPut` taps come back in
   * `observerErrors` (the writes are stored) for the caller to report. Works until the store's
   * `close` hook has finished, so buffers can be flushed there.
   */
  commit(writes: readonly DeferredWrite[]): Promise<CommitResult>;
  /**
   * What the tiers hold under `id` now, as stored (no hooks run): lets a deferring plugin apply the
   * append-only law when it acknowledges a write instead of when it commits it.
   */
  lookup(id: string): Promise<Datum | null>;
}
export interface EvictionInfo {
  readonly tier: string;
  readonly reason: string;
}
export interface WarningInfo {
  readonly unit: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}
export interface TierEvent {
  readonly tier: string;
  readonly rank: number;
  readonly error?: Error;
  /** For `degraded`: the tier writes now land on. */
  readonly landing?: string;
}
/** The `retained` hook's argument: one batch that retention deleted or moved (core/RETENTION.md). */
export interface RetentionEvent {
  readonly policy: string;
  readonly action: "deleted" | "moved";
  readonly ids: readonly string[];
  /** Content bytes of the batch. */
  readonly bytes: number;
  /** For `moved`: the tier the batch left and the tier it reached. */
  readonly from?: string;
  readonly to?: string;
}
export interface PromotionEvent {
  readonly id: string;
  readonly from: string;
  readonly to: string;
}

// The four hook classes used, each from its own file: tapable's index loads all twelve kinds
// (a third of its load time on a command line's start-up). tapable 2 has no `exports` map, so
// its `lib/` files are reachable; test/hooks-doc.test.ts checks they are tapable's own classes.
const AsyncSeriesBailHook = requireNow<typeof Tapable.AsyncSeriesBailHook>("tapable/lib/AsyncSeriesBailHook.js");
const AsyncSeriesHook = requireNow<typeof Tapable.AsyncSeriesHook>("tapable/lib/AsyncSeriesHook.js");
const AsyncSeriesWaterfallHook = requireNow<typeof Tapable.AsyncSeriesWaterfallHook>("tapable/lib/AsyncSeriesWaterfallHook.js");
const SyncHook = requireNow<typeof Tapable.SyncHook>("tapable/lib/SyncHook.js");

function createHooks() {
  return {
    /** After all tiers opened, before the first operation runs. */
    open: new AsyncSeriesHook<[]>([], "open"),
    /** Before tiers close. */
    close: new AsyncSeriesHook<[]>([], "close"),
    /** Transform or veto (throw) each datum on its way in, after validation. */
    beforePut: new AsyncSeriesWaterfallHook<[Datum]>(["datum"], "beforePut"),
    /**
     * Take over writes after `beforePut`: a tap returning `true` acknowledges them without the
     * tiers (it must write them later with `info.commit`); `undefined` passes.
     */
    deferPut: new AsyncSeriesBailHook<[readonly DeferredWrite[], DeferInfo], true | undefined>(["writes", "info"], "deferPut"),
    /** Observe a datum that is now stored. */
    afterPut: new AsyncSeriesHook<[Datum, WriteInfo]>(["datum", "info"], "afterPut"),
    /** Answer a get before the tiers are asked: the first tap returning a Datum (or null) wins. */
    beforeGet: new AsyncSeriesBailHook<[string], Datum | null | undefined>(["id"], "beforeGet"),
    /** Observe what the tiers returned for a get (as stored, before `read`). */
    afterGet: new AsyncSeriesHook<[string, Datum | null, ReadInfo]>(["id", "datum", "info"], "afterGet"),
    /** Transform each datum on its way out of get, getMany, list, query (select "full") and causalChain. */
    read: new AsyncSeriesWaterfallHook<[Datum, ReadInfo]>(["datum", "info"], "read"),
    /** Veto a delete by throwing. */
    beforeDelete: new AsyncSeriesHook<[string]>(["id"], "beforeDelete"),
    /** Observe a delete; `existed` is its result. */
    afterDelete: new AsyncSeriesHook<[string, boolean]>(["id", "existed"], "afterDelete"),
    /** Prepare or veto (throw) a causal chain walk before the tiers are asked. */
    beforeCausalChain: new AsyncSeriesHook<[string]>(["id"], "beforeCausalChain"),
    /** Transform list options. */
    beforeList: new AsyncSeriesWaterfallHook<[ResolvedListOptions]>(["options"], "beforeList"),
    /** Transform or observe a list result (as stored, before `read`). */
    afterList: new AsyncSeriesWaterfallHook<[Datum[], ResolvedListOptions]>(["datums", "options"], "afterList"),
    /** A datum left a tier without a delete (bounded memory tier). */
    evicted: new SyncHook<[Datum, EvictionInfo]>(["datum", "info"], "evicted"),
    /** A condition worth a human's attention that did not fail an operation. */
    warning: new SyncHook<[WarningInfo]>(["info"], "warning"),
    /** A tier observed a change made elsewhere (another process), e.g. over LISTEN/NOTIFY. */
    externalChange: new SyncHook<[ChangeEvent, { readonly tier: string }]>(["event", "info"], "externalChange"),
    /** A tier failed an operation or a probe. */
    tierFailed: new SyncHook<[TierEvent]>(["event"], "tierFailed"),
    /** Writes now land on a less durable tier than the preferred one. */
    degraded: new SyncHook<[TierEvent]>(["event"], "degraded"),
    /** A tier that had failed is up again. */
    restored: new SyncHook<[TierEvent]>(["event"], "restored"),
    /** A datum moved up the lattice. */
    promoted: new SyncHook<[PromotionEvent]>(["event"], "promoted"),
    /** Retention deleted or moved a batch of datums (core/RETENTION.md). */
    retained: new SyncHook<[RetentionEvent]>(["event"], "retained"),
  };
}

/** The full hooks of one store. Only core calls them. */
export type StoreHooks = ReturnType<typeof createHooks>;
export type HookName = keyof StoreHooks;

export const HOOK_NAMES = Object.freeze(Object.keys(createHooks()) as HookName[]);

export function createStoreHooks(): Readonly<StoreHooks> {
  const hooks = createHooks();
  // tapable's `register` interceptor sees every tap as it is added (its public API): the store
  // keeps the `read` and `beforePut` taps itself to run synchronous ones without a promise per datum.
  for (const hook of [hooks.read, hooks.beforePut] as const) {
    const taps: WaterfallTap[] = [];
    hook.intercept({
      register: (tap) => {
        taps.push(tap as unknown as WaterfallTap);
        syncWaterfalls.delete(hook);
        return tap;
      },
    });
    waterfallTaps.set(hook, taps);
  }
  return Object.freeze(hooks);
}

type WaterfallFn = (datum: Datum, info?: ReadInfo) => Datum | undefined;
interface WaterfallTap {
  readonly type: string;
  readonly fn: WaterfallFn;
  readonly stage?: number;
  readonly before?: unknown;
}
/** `info` is absent for `beforePut`, whose taps take the datum alone. */
type SyncWaterfall = (datum: Datum, info?: ReadInfo) => Datum;
const waterfallTaps = new WeakMap<object, WaterfallTap[]>();
const syncWaterfalls = new WeakMap<object, SyncWaterfall | null>();

function syncWaterfall(hook: object): SyncWaterfall | null {
  const cached = syncWaterfalls.get(hook);
  if (cached !== undefined) return cached;
  const taps = waterfallTaps.get(hook) ?? [];
  let fn: SyncWaterfall | null = null;
  if (taps.every((t) => t.type === "sync" && t.before === undefined)) {
    const fns = taps
      .map((tap, order) => ({ tap, order }))
      .sort((a, b) => (a.tap.stage ?? 0) - (b.tap.stage ?? 0) || a.order - b.order)
      .map(({ tap }) => tap.fn);
    fn = (datum, info) => {
      let value = datum;
      for (const f of fns) {
        const next = info === undefined ? f(value) : f(value, info);
        if (next !== undefined) value = next;
      }
      return value;
    };
  }
  syncWaterfalls.set(hook, fn);
  return fn;
}

/**
 * When every tap of a store's `read` waterfall is synchronous, the same waterfall as one plain
 * function (taps in `stage` order; a tap returning `undefined` passes the value on, as tapable's
 * waterfall does): a list of 100 then costs 100 calls, not 100 promises. `null` when a tap is
 * asynchronous or placed with `before`. Rebuilt only after a tap is added.
 */
export function syncReadWaterfall(read: StoreHooks["read"]): ((datum: Datum, info: ReadInfo) => Datum) | null {
  return syncWaterfall(read);
}

/**
 * A datum through the `beforePut` waterfall: one plain call when every tap is synchronous (the
 * encryption and compression plugins), else tapable's promise. Callers `await` it inside an async
 * function, so a synchronous tap's throw is a rejection there, as with the promise.
 */
export function beforePutDatum(beforePut: StoreHooks["beforePut"], datum: Datum): Datum | Promise<Datum> {
  const sync = syncWaterfall(beforePut);
  return sync !== null ? sync(datum) : beforePut.promise(datum);
}

interface SeriesTap {
  readonly type: string;
  readonly fn: unknown;
}
interface SeriesHook<A extends unknown[], R> {
  readonly taps: readonly SeriesTap[];
  promise(...args: A): Promise<R>;
}
/** Per hook: the plain call of its taps, built for this many taps (tapable only ever adds taps). */
const syncSeries = new WeakMap<object, { readonly count: number; readonly call: ((...args: unknown[]) => unknown) | null }>();

/**
 * A series or bail hook (`beforeGet`, `afterGet`, `afterPut`, `beforeDelete`, `afterDelete`) as one
 * plain call when every tap is synchronous (metrics and tracing observe every get and put this
 * way), else tapable's promise. `bail`: the first tap to return something other than `undefined`
 * ends it and gives the answer, as `AsyncSeriesBailHook` does. Taps run in the order tapable keeps
 * them (stage, then `before`). Callers `await` the answer inside an async function, so a
 * synchronous tap's throw is a rejection there, as with the promise.
 */
export function runSeries<A extends unknown[], R>(hook: SeriesHook<A, R>, bail: boolean, ...args: A): R | undefined | Promise<R> {
  const taps = hook.taps;
  let cached = syncSeries.get(hook);
  if (cached === undefined || cached.count !== taps.length) {
    const fns = taps.every((t) => t.type === "sync") ? taps.map((t) => t.fn as (...a: unknown[]) => unknown) : null;
    const call =
      fns === null
        ? null
        : (...a: unknown[]): unknown => {
            for (const f of fns) {
              const answer = f(...a);
              if (bail && answer !== undefined) return answer;
            }
            return undefined;
          };
    cached = { count: taps.length, call };
    syncSeries.set(hook, cached);
  }
  return cached.call !== null ? (cached.call(...args) as R | undefined) : hook.promise(...args);
}

type TapMethods = "tap" | "tapPromise" | "tapAsync" | "isUsed";
/** A hook as plugins see it: they can tap, never call. */
export type TapOnly<H> = Pick<H, Extract<keyof H, TapMethods>>;
export type TapOnlyHooks = { readonly [K in HookName]: TapOnly<StoreHooks[K]> };

type AnyFn = (...args: unknown[]) => unknown;
interface Tappable {
  tap(options: unknown, fn: AnyFn): void;
  tapPromise?(options: unknown, fn: AnyFn): void;
  tapAsync?(options: unknown, fn: AnyFn): void;
  isUsed(): boolean;
}

function attribute(error: unknown, unit: string, hook: string): unknown {
  if (isDgentError(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return dgentError("DGENT_PLUGIN_FAILED", `plugin "${unit}" failed in hook ${hook}: ${reason}`, {
    unit,
    cause: error,
  });
}

/**
 * A frozen tap-only view of `hooks` for one unit (a plugin name, or "app"). Errors a tap throws
 * that are not DgentErrors are wrapped once in `DGENT_PLUGIN_FAILED` naming the unit.
 */
export function tapOnlyView(hooks: Readonly<StoreHooks>, unit: string): TapOnlyHooks {
  const view: Record<string, unknown> = {};
  for (const name of HOOK_NAMES) {
    const hook = hooks[name] as unknown as Tappable;
    const entry: Record<string, unknown> = {
      tap: (options: unknown, fn: AnyFn) =>
        hook.tap(options, (...args: unknown[]) => {
          try {
            return fn(...args);
          } catch (error) {
            throw attribute(error, unit, name);
          }
        }),
      isUsed: () => hook.isUsed(),
    };
    if (hook.tapPromise) {
      entry.tapPromise = (options: unknown, fn: AnyFn) =>
        hook.tapPromise?.(options, async (...args: unknown[]) => {
          try {
            return await fn(...args);
          } catch (error) {
            throw attribute(error, unit, name);
          }
        });
      entry.tapAsync = (options: unknown, fn: AnyFn) => hook.tapAsync?.(options, fn);
    }
    view[name] = Object.freeze(entry);
  }
  return Object.freeze(view) as unknown as TapOnlyHooks;
}

/** A datum through the `read` waterfall (or as it is, when nothing taps it). */
export function readDatum(read: StoreHooks["read"], datum: Datum, info: ReadInfo): Datum | Promise<Datum> {
  if (!read.taps.length) return datum;
  // Every tap synchronous (decryption, decompression): no promise per get.
  const sync = syncReadWaterfall(read);
  return sync !== null ? sync(datum, info) : read.promise(datum, info);
}

/** Datums through the `read` waterfall: synchronously when every tap is synchronous, else one at a time. */
export function readDatums(read: StoreHooks["read"], datums: Datum[], info: ReadInfo): Datum[] | Promise<Datum[]> {
  if (!read.taps.length) return datums;
  const sync = syncReadWaterfall(read);
  if (sync !== null) return datums.map((d) => sync(d, info));
  return readEach(read, datums, info);
}

async function readEach(read: StoreHooks["read"], datums: Datum[], info: ReadInfo): Promise<Datum[]> {
  const out: Datum[] = [];
  for (const d of datums) out.push(await read.promise(d, info));
  return out;
}
