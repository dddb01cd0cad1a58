import { assertDatum, assertId, type Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import { backendReport, type BackendReport } from "./backend-report.js";
import { beforePutDatum, createStoreHooks, readDatum, readDatums, runSeries, tapOnlyView, type CommitResult, type DeferredWrite, type StoreHooks, type TapOnlyHooks } from "./hooks.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "./paths.js";
import {
  DEFAULT_MAX_CHAIN_DEPTH,
  resolveListOptions,
  type Adapter,
  type Capabilities,
  type DatumStore,
  type ListOptions,
  type ResolvedListOptions,
} from "./protocol.js";
import { resolvePlugins, type AnyPluginUse, type PluginDefinition, type PluginService, type ResolvedPluginUse } from "./registry.js";
import { Router } from "./router.js";
import { Upgrader, type PromotionResult, type UpgraderPolicy } from "./upgrader.js";
import { emptyRetentionTotals, resolveRetentionPolicies, type RetentionHost } from "./retention.js";
import type { TxOp, TxResult } from "./refs.js";
import { OPENED, StoreRefs, defaultActor, transaction, type RefsHost, type TxBuilder } from "./store-refs.js";
import { isQueryList, runChainTail, runQuery, StoreQueries, type ListQuery } from "./store-query.js";
import { sweepViews, viewTiers, type ExpiryView } from "./expiry-view.js";
import { isExpired } from "./expiry.js";
import { adapterContext, applyPlugins, closedError, rescueVolatile, routerEvents, serviceOf, valid, warner, type ChangeService, type Warn } from "./store-wiring.js";

export type { AnyPluginUse, PluginUse } from "./registry.js";
export type { BackendReport, TierReport } from "./backend-report.js";
export { resolveListOptions } from "./protocol.js";
export type { StoreOptions } from "./store-options.js";
import type { StoreOptions } from "./store-options.js";


type Operation = "put" | "get" | "delete" | "list" | "causalChain";

enum State {
  New,
  Opening,
  Open,
  Closed,
}

const STORE_BRAND: unique symbol = Symbol.for("dgent.store");

/** The protocol over one or more tiers, with plugins tapped on its hooks. */
export class Store extends StoreQueries implements DatumStore {
  readonly [STORE_BRAND] = true;
  readonly namespace: string;
  /** Tap-only hooks for application code (taps are attributed to unit "app"). */
  readonly hooks: TapOnlyHooks;
  readonly #hooks: Readonly<StoreHooks>;
  readonly #tiers: Router;
  readonly #upgrader: Upgrader;
  readonly #plugins: readonly ResolvedPluginUse[];
  readonly #maxChainDepth: number;
  readonly #warn: Warn;
  /** What each plugin's `apply` returned, by plugin name. */
  readonly #handles = new Map<string, unknown>();
  /** Plugins applied so far: a retried `open` does not tap them twice. */
  #applied = 0;
  #state = State.New;
  #opening: Promise<void> | null = null;
  /**
   * The one tier while the store is open and has only one: operations whose hooks have no taps
   * go straight to it (no router, no extra promise). `null` before open, after close, or with
   * several tiers. See `#fast`.
   */
  #direct: Adapter | null = null;
  /** Named, versioned pointers to datums, moved by compare-and-set (see `core/refs.ts`). */
  readonly refs: StoreRefs;
  readonly #refsHost: RefsHost;
  readonly #retention: RetentionHost; // the store's retention policies and what `applyRetention` did so far
  /** The hooks each operation runs; the fast path is taken only while none of them has a tap. */
  readonly #opHooks: Readonly<Record<Operation, readonly { readonly taps: readonly unknown[] }[]>>;
  /** Expiry (EXPIRY.md): its clock, the views in front of tiers without native expiry, and the tiers as given. */
  readonly #expiry: { readonly clock: () => number; readonly views: readonly ExpiryView[]; given: readonly Adapter[] };

  protected get queryHost(): RefsHost {
    return this.#refsHost;
  }

  protected get retentionHost(): RetentionHost {
    return this.#retention;
  }

  constructor(options: StoreOptions) {
    super();
    if (options === null || typeof options !== "object" || !Array.isArray(options.tiers)) {
      throw dgentError("DGENT_NO_TIERS", "createStore needs { tiers: [adapter, ...] }");
    }
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    assertNamespace(this.namespace);
    this.#maxChainDepth = options.maxChainDepth ?? DEFAULT_MAX_CHAIN_DEPTH;
    if (!Number.isInteger(this.#maxChainDepth) || this.#maxChainDepth < 1) {
      throw dgentError("DGENT_INVALID_OPTIONS", `maxChainDepth must be a positive integer, got ${this.#maxChainDepth}`);
    }
    this.#hooks = createStoreHooks();
    const hooks = this.#hooks;
    this.#warn = warner(hooks);
    const { clock, viewed, views } = viewTiers(options.tiers, options, this.#warn);
    const { landing, journalPath, probeBackoffMs } = options;
    const routing = { ...(landing !== undefined ? { landing } : {}), ...(journalPath !== undefined ? { journalPath } : {}), ...(probeBackoffMs !== undefined ? { probeBackoffMs } : {}) };
    this.#tiers = new Router(viewed, routerEvents(hooks, this.#warn), routing);
    this.#expiry = { clock, views, given: this.#tiers.all.map((t) => (views.includes(t as ExpiryView) ? (t as ExpiryView).inner : t)) };
    this.#upgrader = new Upgrader(this.#tiers, options.upgrader === false ? { enabled: false } : (options.upgrader ?? {}));
    this.#plugins = resolvePlugins(options.plugins ?? []);
    this.hooks = tapOnlyView(this.#hooks, "app");
    this.#refsHost = {
      ready: () => (this.#state === State.Open ? OPENED : this.#ready()),
      router: this.#tiers,
      hooks,
      actor: options.actor ?? defaultActor(),
      get: (id) => this.get(id),
      put: (datum) => this.put(datum),
    };
    this.refs = new StoreRefs(this.#refsHost);
    const policies = resolveRetentionPolicies(options.retention ?? [], this.#tiers.all.map((t) => t.name));
    this.#retention = { ready: this.#refsHost.ready, router: this.#tiers, upgrader: this.#upgrader, hooks, totals: emptyRetentionTotals(), policies };
    this.#opHooks = Object.freeze({
      put: [hooks.beforePut, hooks.deferPut, hooks.afterPut],
      get: [hooks.beforeGet, hooks.afterGet, hooks.read],
      delete: [hooks.beforeDelete, hooks.afterDelete],
      list: [hooks.beforeList, hooks.afterList, hooks.read],
      causalChain: [hooks.beforeCausalChain, hooks.read],
    });
  }

  /** The landing tier's declared capabilities. */
  get capabilities(): Capabilities {
    return this.#tiers.landing.capabilities;
  }

  /** The tiers, most durable first. */
  get tiers(): readonly Adapter[] {
    return this.#expiry.given;
  }

  /** Deletes expired datums now from every tier without native expiry (the sweeper's work); how many. */
  async sweepExpired(): Promise<number> {
    if (this.#state !== State.Open) await this.#ready();
    return sweepViews(this.#tiers, this.#expiry.views);
  }

  /** Opens every tier and applies plugins. Idempotent; operations call it on first use. */
  async open(): Promise<void> {
    if (this.#state === State.Open) return;
    if (this.#state === State.Closed) throw closedError();
    this.#opening ??= this.#doOpen();
    return this.#opening;
  }

  async #doOpen(): Promise<void> {
    this.#state = State.Opening;
    const tiers = this.#tiers.all.map((t) => ({ name: t.name, rank: t.rank }));
    await applyPlugins(this.#plugins.slice(this.#applied), this.#hooks, { namespace: this.namespace, tiers }, this.#warn, this.#handles, () => this.#applied++);
    try {
      await this.#tiers.open((tier) => adapterContext(this.#hooks, this.#warn, tier, this.#expiry.clock));
    } catch (error) {
      this.#state = State.New;
      this.#opening = null;
      throw error;
    }
    if (this.#hooks.open.taps.length) await this.#hooks.open.promise();
    this.#upgrader.start();
    this.#state = State.Open;
    this.#direct = this.#tiers.single;
  }

  /** Closes every tier. Idempotent; later operations fail with `DGENT_CLOSED`. */
  async close(): Promise<void> {
    if (this.#state === State.Closed) return;
    if (this.#opening) await this.#opening.catch(() => undefined);
    const wasOpen = this.#state === State.Open;
    this.#state = State.Closed;
    this.#direct = null;
    // A close tap that fails (a write buffer that could not flush) must not leave the tiers open.
    let failed: { error: unknown } | null = null;
    if (wasOpen && this.#hooks.close.taps.length) await this.#hooks.close.promise().catch((error: unknown) => (failed = { error }));
    await this.#upgrader.stop();
    if (wasOpen) await rescueVolatile(this.#tiers, this.#upgrader, this.#warn);
    await this.#tiers.close();
    if (failed) throw (failed as { error: unknown }).error;
  }

  /**
   * Moves every datum below the landing tier up to it now (the explicit trigger; the seed's
   * `self.data.upgrade`), copy → verify → remove below.
   */
  async upgrade(): Promise<PromotionResult[]> {
    if (this.#state !== State.Open) await this.#ready();
    return this.#upgrader.upgradeAll();
  }

  /** Runs the upgrader's size and age triggers once, now. */
  async upgradeTick(now?: number): Promise<PromotionResult[]> {
    if (this.#state !== State.Open) await this.#ready();
    return this.#upgrader.tick(now);
  }

  /**
   * The handle a plugin of this store returned from `apply` (its statistics, change feed,
   * `flush()`…), by definition (typed) or by name. Opens the store first; still answers after
   * `close` (statistics stay readable).
   */
  async plugin<H>(plugin: PluginDefinition<never, H>): Promise<H>;
  async plugin(name: string): Promise<unknown>;
  async plugin(plugin: PluginDefinition<never, unknown> | string): Promise<unknown> {
    if (this.#state !== State.Closed) await this.#ready();
    const name = typeof plugin === "string" ? plugin : plugin.name;
    if (!this.#handles.has(name)) {
      throw dgentError("DGENT_UNKNOWN_PLUGIN", `this store has no plugin named "${name}"`, {
        details: { name, known: [...this.#handles.keys()] },
      });
    }
    return this.#handles.get(name);
  }

  /**
   * The store's change stream: every put and delete, in order, as an async iterator (it subscribes
   * at the first `next()`; leave the loop to unsubscribe). It is served by the plugin of this store
   * that declares `provides: ["changes"]` (dgent's is `dgent/plugins/reactive`; importing that
   * module also types the changes). Without one: `DGENT_UNKNOWN_PLUGIN`.
   */
  async *changes(options?: Readonly<Record<string, unknown>>): AsyncGenerator<unknown, void, undefined> {
    yield* (await this.#service("changes")).changes(options);
  }

  /** Calls `listener` for each change, in order (see `changes`); resolves to the unsubscribe. */
  async subscribe(listener: (change: never) => unknown, options?: Readonly<Record<string, unknown>>): Promise<() => void> {
    return (await this.#service("changes")).subscribe(listener, options);
  }

  /** The handle of the plugin that provides `service`. */
  async #service(service: PluginService): Promise<ChangeService> {
    if (this.#state !== State.Closed) await this.#ready();
    return serviceOf(service, this.#plugins, this.#handles) as ChangeService;
  }

  /** `deferPut`'s commit: writes what a plugin deferred, then tells `afterPut`. */
  readonly #commit = async (writes: readonly DeferredWrite[]): Promise<CommitResult> => {
    const observerErrors: unknown[] = [];
    if (writes.length === 0) return { observerErrors };
    await this.#tiers.putMany(writes.map((w) => w.datum));
    if (this.#hooks.afterPut.taps.length) {
      const tier = this.#tiers.landing.name;
      for (const w of writes) {
        await this.#hooks.afterPut.promise(w.datum, { tier, input: w.input }).catch((error: unknown) => void observerErrors.push(error));
      }
    }
    return { observerErrors };
  };

  /** `deferPut`'s lookup: what the tiers hold, as stored. */
  readonly #lookup = async (id: string): Promise<Datum | null> => (await this.#tiers.get(id))?.datum ?? null;

  async #ready(): Promise<void> {
    if (this.#state === State.Closed) throw closedError();
    await this.open();
  }

  /**
   * The one-tier fast path: the tier itself when the store is open with a single tier and none of
   * the operation's hooks has a tap (checked per call, so a tap added after `open` takes effect on
   * the next call), else `null` and the operation takes the full path.
   */
  #fast(op: Operation): Adapter | null {
    const direct = this.#direct;
    if (direct === null) return null;
    for (const hook of this.#opHooks[op]) if (hook.taps.length !== 0) return null;
    return direct;
  }

  put(datum: Datum): Promise<string> {
    const tier = this.#fast("put");
    return tier === null ? this.#put(datum) : valid(assertDatum, datum) ?? tier.put(datum);
  }

  async #put(datum: Datum): Promise<string> {
    return (await this.#write([datum], "put"))[0] as string;
  }

  /** Puts many datums; one transaction where the landing tier supports it. */
  async putMany(datums: readonly Datum[]): Promise<string[]> {
    if (!Array.isArray(datums)) throw dgentError("DGENT_INVALID_DATUM", "putMany takes an array of datums");
    return this.#write(datums.slice(), "putMany");
  }

  /** The full write path: validate, `beforePut` each, `deferPut` (a plugin may take the batch), the tiers, `afterPut` each. */
  async #write(inputs: readonly Datum[], op: "put" | "putMany"): Promise<string[]> {
    if (this.#state !== State.Open) await this.#ready();
    const hooks = this.#hooks;
    for (const d of inputs) assertDatum(d);
    let values = inputs;
    if (hooks.beforePut.taps.length) {
      const transformed: Datum[] = [];
      for (const d of inputs) {
        const t = await beforePutDatum(hooks.beforePut, d);
        assertDatum(t);
        transformed.push(t);
      }
      values = transformed;
    }
    if (hooks.deferPut.taps.length) {
      const writes = values.map((d, i) => ({ datum: d, input: inputs[i] as Datum }));
      if ((await hooks.deferPut.promise(writes, { op, commit: this.#commit, lookup: this.#lookup })) === true) return values.map((d) => d.id);
    }
    const ids = op === "put" ? [await this.#tiers.put(values[0] as Datum)] : await this.#tiers.putMany(values);
    if (hooks.afterPut.taps.length) {
      const tier = this.#tiers.landing.name;
      for (let i = 0; i < values.length; i++) await runSeries(hooks.afterPut, false, values[i] as Datum, { tier, input: inputs[i] as Datum });
    }
    return ids;
  }

  get(id: string): Promise<Datum | null> {
    const tier = this.#fast("get");
    return tier === null ? this.#get(id) : valid(assertId, id) ?? tier.get(id);
  }

  async #get(id: string): Promise<Datum | null> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    const hooks = this.#hooks;
    if (hooks.beforeGet.taps.length) {
      const answer = await runSeries(hooks.beforeGet, true, id);
      if (answer !== undefined) return answer === null || isExpired(answer, this.#expiry.clock()) ? null : readDatum(hooks.read, answer, { op: "get", source: "plugin" });
    }
    const found = await this.#tiers.get(id);
    const datum = found?.datum ?? null;
    if (hooks.afterGet.taps.length) {
      await runSeries(hooks.afterGet, false, id, datum, { op: "get", source: found?.tier.name ?? "none" });
    }
    return datum === null ? null : readDatum(hooks.read, datum, { op: "get", source: (found as { tier: Adapter }).tier.name });
  }

  delete(id: string): Promise<boolean> {
    const tier = this.#fast("delete");
    return tier === null ? this.#delete(id) : valid(assertId, id) ?? tier.delete(id);
  }

  async #delete(id: string): Promise<boolean> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    const hooks = this.#hooks;
    if (hooks.beforeDelete.taps.length) await runSeries(hooks.beforeDelete, false, id);
    const existed = await this.#tiers.delete(id);
    if (hooks.afterDelete.taps.length) await runSeries(hooks.afterDelete, false, id, existed);
    return existed;
  }

  /** Newest first by default; with `where`, `order`, `idRange`, `parent` or `before`, a query's first page (QUERIES.md). */
  list(options: ListOptions | ListQuery = {}): Promise<Datum[]> {
    if (isQueryList(options)) return runQuery(this.#refsHost, options).then((page) => page.items);
    const tier = this.#fast("list");
    if (tier === null) return this.#list(options);
    let resolved: ResolvedListOptions;
    try {
      resolved = resolveListOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return resolved.limit === 0 ? Promise.resolve([]) : tier.list(resolved);
  }

  async #list(options: ListOptions): Promise<Datum[]> {
    if (this.#state !== State.Open) await this.#ready();
    const hooks = this.#hooks;
    let resolved = resolveListOptions(options);
    if (hooks.beforeList.taps.length) resolved = resolveListOptions(await hooks.beforeList.promise(resolved));
    if (resolved.limit === 0) return [];
    let datums = await this.#tiers.list(resolved);
    if (hooks.afterList.taps.length) datums = await hooks.afterList.promise(datums, resolved);
    return readDatums(hooks.read, datums, { op: "list", source: this.#tiers.landing.name });
  }

  /** Ancestors oldest first, ending with the datum; `{ tail: n }` gives only the last `n` steps (QUERIES.md). */
  causalChain(id: string, options?: { tail?: number }): Promise<Datum[]> {
    if (options?.tail !== undefined) return runChainTail(this.#refsHost, id, options.tail);
    const tier = this.#fast("causalChain");
    return tier?.causalChain === undefined ? this.#causalChain(id) : valid(assertId, id) ?? tier.causalChain(id, this.#maxChainDepth);
  }

  async #causalChain(id: string): Promise<Datum[]> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    if (this.#hooks.beforeCausalChain.taps.length) await this.#hooks.beforeCausalChain.promise(id);
    const chain = await this.#tiers.causalChain(id, this.#maxChainDepth);
    return readDatums(this.#hooks.read, chain, { op: "causalChain", source: this.#tiers.landing.name });
  }

  /** Every datum of every tier once (most durable copy first). For migration and export. */
  async *scan(): AsyncIterable<Datum> {
    if (this.#state !== State.Open) await this.#ready();
    yield* this.#tiers.scan();
  }

  /**
   * Puts, deletes and ref moves, all or nothing, on the tier refs live on (see `StoreRefs`):
   * an array of operations, or a function that adds them to a builder. `DGENT_UNSUPPORTED` on a
   * tier without `transactions`; `DGENT_CONFLICT` / `DGENT_REF_CONFLICT` leave everything as it was.
   */
  transaction(ops: readonly TxOp[] | ((tx: TxBuilder) => void | Promise<void>)): Promise<TxResult> {
    return transaction(this.#refsHost, ops);
  }

  /** Which tiers this store has, which one writes land on, and their counts (see `BackendReport`). */
  async backend(): Promise<BackendReport> {
    if (this.#state !== State.Open) await this.#ready();
    return backendReport(this.namespace, this.#tiers, this.#upgrader, this.#retention.totals);
  }
}

export function createStore(options: StoreOptions): Store {
  return new Store(options);
}

/** True for a Store (also across copies of the dgent module). */
export function isStore(value: unknown): value is Store {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STORE_BRAND] === true;
}
