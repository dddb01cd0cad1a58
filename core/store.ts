import { assertDatum, assertId, type Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import {
  createStoreHooks,
  tapOnlyView,
  type CommitResult,
  type DeferInfo,
  type DeferredWrite,
  type ReadInfo,
  type StoreHooks,
  type TapOnlyHooks,
} from "./hooks.js";
import { rankLabel } from "./lattice.js";
import { assertNamespace, DEFAULT_NAMESPACE } from "./paths.js";
import {
  DEFAULT_LIST_LIMIT,
  DEFAULT_MAX_CHAIN_DEPTH,
  MAX_LIST_LIMIT,
  type Adapter,
  type AdapterContext,
  type AdapterStats,
  type Capabilities,
  type DatumStore,
  type ListOptions,
  type ResolvedListOptions,
} from "./protocol.js";
import { checkOptions, type PluginDefinition } from "./registry.js";
import { Router } from "./router.js";
import { Upgrader, type PromotionResult, type UpgraderPolicy } from "./upgrader.js";

/** A plugin with its options, or a plugin definition used with default options. */
export type PluginUse<O = Record<string, unknown>> = PluginDefinition<O> | { plugin: PluginDefinition<O>; options?: O };

/**
 * Any plugin with any options, as `StoreOptions.plugins` takes them. Options are checked against
 * the plugin's JSON Schema with ajv when the store is created; plugins' typed factories
 * (`cachePlugin({ … })`) also check them at compile time.
 */
export type AnyPluginUse = PluginDefinition<never> | { readonly plugin: PluginDefinition<never>; readonly options?: unknown };

export interface StoreOptions {
  /** One or more tiers; writes land on the most durable. */
  tiers: readonly Adapter[];
  plugins?: readonly AnyPluginUse[];
  /** Names this store in reports and to plugins (tiers carry their own namespace option). */
  namespace?: string;
  /** Longest causal chain returned before `DGENT_CAUSAL_DEPTH` (default 10 000). */
  maxChainDepth?: number;
  /** The tier writes land on while it is up (default: the most durable). */
  landing?: string;
  /** When data moves up the lattice by itself (size, age); `false` turns the loop off. */
  upgrader?: UpgraderPolicy | false;
  /** A file where deletes made while a tier is down are journaled until it returns. */
  journalPath?: string;
  /** Re-probe backoff of a failed tier, in ms. */
  probeBackoffMs?: { min?: number; max?: number };
}

export interface TierReport {
  readonly name: string;
  readonly rank: number;
  readonly durability: string;
  readonly persistent: boolean;
  readonly landing: boolean;
  readonly up: boolean;
  readonly count: number | null;
  readonly bytes: number | null;
  /** The last error that took the tier down, when it is down. */
  readonly error: string | null;
  /** Where the data lives (a file, a redacted URL), when the tier says. */
  readonly location: string | null;
}

export interface BackendReport {
  readonly namespace: string;
  readonly landing: string;
  /** True when writes land on a tier that does not outlive the process. Announce it. */
  readonly volatile: boolean;
  /** The tier writes land on when it is up. */
  readonly preferred: string;
  /** True when writes land below the preferred tier because it is down. */
  readonly degraded: boolean;
  /** Datums on tiers below the most durable tier that is up (waiting for the upgrader). */
  readonly pendingPromotions: number;
  /** Deletes journaled for tiers that are down. */
  readonly pendingDeletes: number;
  readonly tiers: readonly TierReport[];
}

enum State {
  New,
  Opening,
  Open,
  Closed,
}

const STORE_BRAND: unique symbol = Symbol.for("dgent.store");

/** The protocol over one or more tiers, with plugins tapped on its hooks. */
export class Store implements DatumStore {
  readonly [STORE_BRAND] = true;
  readonly namespace: string;
  /** Tap-only hooks for application code (taps are attributed to unit "app"). */
  readonly hooks: TapOnlyHooks;
  readonly #hooks: Readonly<StoreHooks>;
  readonly #tiers: Router;
  readonly #upgrader: Upgrader;
  readonly #plugins: readonly { plugin: PluginDefinition<never>; options: unknown }[];
  readonly #maxChainDepth: number;
  /** What each plugin's `apply` returned, by plugin name. */
  readonly #handles = new Map<string, unknown>();
  /** Plugins applied so far: a retried `open` does not tap them twice. */
  #applied = 0;
  #state = State.New;
  #opening: Promise<void> | null = null;
  /**
   * The one tier while the store is open and has only one: operations whose hooks have no taps
   * go straight to it (no router, no extra promise). `null` before open, after close, or with
   * several tiers.
   */
  #direct: Adapter | null = null;

  constructor(options: StoreOptions) {
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
    this.#tiers = new Router(
      options.tiers,
      {
        tierFailed: (e) => void (hooks.tierFailed.taps.length && hooks.tierFailed.call(e)),
        degraded: (e) => {
          if (hooks.degraded.taps.length) hooks.degraded.call(e);
          this.#warn("router", `tier "${e.tier}" is down; writes land on "${e.landing}" until it returns`, { ...e });
        },
        restored: (e) => void (hooks.restored.taps.length && hooks.restored.call(e)),
        promoted: (e) => void (hooks.promoted.taps.length && hooks.promoted.call(e)),
        warn: (unit, message, details) => this.#warn(unit, message, details),
      },
      {
        ...(options.landing !== undefined ? { landing: options.landing } : {}),
        ...(options.journalPath !== undefined ? { journalPath: options.journalPath } : {}),
        ...(options.probeBackoffMs !== undefined ? { probeBackoffMs: options.probeBackoffMs } : {}),
      },
    );
    this.#upgrader = new Upgrader(this.#tiers, options.upgrader === false ? { enabled: false } : (options.upgrader ?? {}));
    this.#plugins = resolvePlugins(options.plugins ?? []);
    this.hooks = tapOnlyView(this.#hooks, "app");
  }

  /** The landing tier's declared capabilities. */
  get capabilities(): Capabilities {
    return this.#tiers.landing.capabilities;
  }

  /** The tiers, most durable first. */
  get tiers(): readonly Adapter[] {
    return this.#tiers.all;
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
    for (const { plugin, options } of this.#plugins.slice(this.#applied)) {
      const api = {
        hooks: tapOnlyView(this.#hooks, plugin.name),
        name: plugin.name,
        namespace: this.namespace,
        tiers,
        warn: (message: string, details?: Readonly<Record<string, unknown>>) =>
          this.#warn(plugin.name, message, details),
      };
      const handle = await plugin.apply(api, options as never);
      this.#handles.set(plugin.name, handle);
      this.#applied++;
    }
    try {
      await this.#tiers.open((tier) => this.#contextFor(tier));
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

  #contextFor(tier: Adapter): AdapterContext {
    return {
      events: {
        evicted: (datum, reason) => {
          if (this.#hooks.evicted.taps.length) this.#hooks.evicted.call(datum, { tier: tier.name, reason });
        },
        warning: (message, details) => this.#warn(tier.name, message, details),
        change: (event) => {
          if (this.#hooks.externalChange.taps.length) this.#hooks.externalChange.call(event, { tier: tier.name });
        },
      },
    };
  }

  #warn(unit: string, message: string, details?: Readonly<Record<string, unknown>>): void {
    if (this.#hooks.warning.taps.length) {
      this.#hooks.warning.call({ unit, message, ...(details ? { details } : {}) });
    } else {
      process.emitWarning(`[dgent:${unit}] ${message}`, { type: "DgentWarning" });
    }
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
    if (wasOpen) await this.#rescueVolatile();
    await this.#tiers.close();
    if (failed) throw (failed as { error: unknown }).error;
  }

  /** On close, data on a volatile tier moves to a durable one that is up, or is announced as lost. */
  async #rescueVolatile(): Promise<void> {
    const durable = this.#tiers.states.find((s) => s.up && s.adapter.capabilities.persistent);
    for (const state of this.#tiers.states) {
      if (state.adapter.capabilities.persistent || !state.up || !state.holds || this.#tiers.single) continue;
      const count = state.adapter.stats ? (await state.adapter.stats()).count : 1;
      if (count === 0) continue;
      if (durable) await this.#upgrader.promote(state, durable).catch((error: unknown) => this.#warn("upgrader", String(error)));
      const left = state.adapter.stats ? (await state.adapter.stats()).count : 0;
      if (left > 0) this.#warn("router", `${left} datums on the volatile tier "${state.adapter.name}" are lost with this close: no durable tier is up`);
    }
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
   * at the first `next()`; leave the loop to unsubscribe). It is served by the `reactive` plugin
   * (`dgent/plugins/reactive`), which must be in this store; importing that module also types the
   * changes. Without it: `DGENT_UNKNOWN_PLUGIN`.
   */
  async *changes(options?: Readonly<Record<string, unknown>>): AsyncGenerator<unknown, void, undefined> {
    const handle = (await this.plugin("reactive")) as { changes(o?: unknown): AsyncIterable<unknown> };
    yield* handle.changes(options);
  }

  /** Calls `listener` for each change, in order (the `reactive` plugin); resolves to the unsubscribe. */
  async subscribe(listener: (change: never) => unknown, options?: Readonly<Record<string, unknown>>): Promise<() => void> {
    const handle = (await this.plugin("reactive")) as { subscribe(l: unknown, o?: unknown): () => void };
    return handle.subscribe(listener, options);
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

  put(datum: Datum): Promise<string> {
    const direct = this.#direct;
    const hooks = this.#hooks;
    if (direct !== null && hooks.beforePut.taps.length === 0 && hooks.deferPut.taps.length === 0 && hooks.afterPut.taps.length === 0) {
      try {
        assertDatum(datum);
      } catch (error) {
        return Promise.reject(error);
      }
      return direct.put(datum);
    }
    return this.#put(datum);
  }

  async #put(datum: Datum): Promise<string> {
    if (this.#state !== State.Open) await this.#ready();
    assertDatum(datum);
    const hooks = this.#hooks;
    let value = datum;
    if (hooks.beforePut.taps.length) {
      value = await hooks.beforePut.promise(value);
      assertDatum(value);
    }
    if (hooks.deferPut.taps.length) {
      const info: DeferInfo = { op: "put", commit: this.#commit, lookup: this.#lookup };
      if ((await hooks.deferPut.promise([{ datum: value, input: datum }], info)) === true) return value.id;
    }
    const id = await this.#tiers.put(value);
    if (hooks.afterPut.taps.length) await hooks.afterPut.promise(value, { tier: this.#tiers.landing.name, input: datum });
    return id;
  }

  /** Puts many datums; one transaction where the landing tier supports it. */
  async putMany(datums: readonly Datum[]): Promise<string[]> {
    if (this.#state !== State.Open) await this.#ready();
    if (!Array.isArray(datums)) {
      throw dgentError("DGENT_INVALID_DATUM", "putMany takes an array of datums");
    }
    const hooks = this.#hooks;
    const inputs: Datum[] = datums.slice();
    let values = inputs;
    for (const d of values) assertDatum(d);
    if (hooks.beforePut.taps.length) {
      const transformed: Datum[] = [];
      for (const d of values) {
        const t = await hooks.beforePut.promise(d);
        assertDatum(t);
        transformed.push(t);
      }
      values = transformed;
    }
    if (hooks.deferPut.taps.length) {
      const writes = values.map((d, i) => ({ datum: d, input: inputs[i] as Datum }));
      if ((await hooks.deferPut.promise(writes, { op: "putMany", commit: this.#commit, lookup: this.#lookup })) === true) {
        return values.map((d) => d.id);
      }
    }
    const ids = await this.#tiers.putMany(values);
    if (hooks.afterPut.taps.length) {
      const tier = this.#tiers.landing.name;
      for (let i = 0; i < values.length; i++) {
        await hooks.afterPut.promise(values[i] as Datum, { tier, input: inputs[i] as Datum });
      }
    }
    return ids;
  }

  get(id: string): Promise<Datum | null> {
    const direct = this.#direct;
    const hooks = this.#hooks;
    if (direct !== null && hooks.beforeGet.taps.length === 0 && hooks.afterGet.taps.length === 0 && hooks.read.taps.length === 0) {
      try {
        assertId(id);
      } catch (error) {
        return Promise.reject(error);
      }
      return direct.get(id);
    }
    return this.#get(id);
  }

  async #get(id: string): Promise<Datum | null> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    const hooks = this.#hooks;
    if (hooks.beforeGet.taps.length) {
      const answer = await hooks.beforeGet.promise(id);
      if (answer !== undefined) return answer === null ? null : this.#read(answer, "get", "plugin");
    }
    const found = await this.#tiers.get(id);
    const datum = found?.datum ?? null;
    if (hooks.afterGet.taps.length) {
      await hooks.afterGet.promise(id, datum, { op: "get", source: found?.tier.name ?? "none" });
    }
    return datum === null ? null : this.#read(datum, "get", (found as { tier: Adapter }).tier.name);
  }

  #read(datum: Datum, op: ReadInfo["op"], source: string): Datum | Promise<Datum> {
    const read = this.#hooks.read;
    return read.taps.length ? read.promise(datum, { op, source }) : datum;
  }

  #readAll(datums: Datum[], op: ReadInfo["op"]): Datum[] | Promise<Datum[]> {
    const read = this.#hooks.read;
    if (!read.taps.length) return datums;
    const info = { op, source: this.#tiers.landing.name };
    const sync = syncWaterfall(read);
    if (sync !== null) return datums.map((d) => sync(d, info));
    return this.#readEach(read, datums, info);
  }

  async #readEach(read: StoreHooks["read"], datums: Datum[], info: ReadInfo): Promise<Datum[]> {
    const out: Datum[] = [];
    for (const d of datums) out.push(await read.promise(d, info));
    return out;
  }

  delete(id: string): Promise<boolean> {
    const direct = this.#direct;
    const hooks = this.#hooks;
    if (direct !== null && hooks.beforeDelete.taps.length === 0 && hooks.afterDelete.taps.length === 0) {
      try {
        assertId(id);
      } catch (error) {
        return Promise.reject(error);
      }
      return direct.delete(id);
    }
    return this.#delete(id);
  }

  async #delete(id: string): Promise<boolean> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    const hooks = this.#hooks;
    if (hooks.beforeDelete.taps.length) await hooks.beforeDelete.promise(id);
    const existed = await this.#tiers.delete(id);
    if (hooks.afterDelete.taps.length) await hooks.afterDelete.promise(id, existed);
    return existed;
  }

  list(options: ListOptions = {}): Promise<Datum[]> {
    const direct = this.#direct;
    const hooks = this.#hooks;
    if (direct !== null && hooks.beforeList.taps.length === 0 && hooks.afterList.taps.length === 0 && hooks.read.taps.length === 0) {
      let resolved: ResolvedListOptions;
      try {
        resolved = resolveListOptions(options);
      } catch (error) {
        return Promise.reject(error);
      }
      return resolved.limit === 0 ? Promise.resolve([]) : direct.list(resolved);
    }
    return this.#list(options);
  }

  async #list(options: ListOptions): Promise<Datum[]> {
    if (this.#state !== State.Open) await this.#ready();
    const hooks = this.#hooks;
    let resolved = resolveListOptions(options);
    if (hooks.beforeList.taps.length) resolved = resolveListOptions(await hooks.beforeList.promise(resolved));
    if (resolved.limit === 0) return [];
    let datums = await this.#tiers.list(resolved);
    if (hooks.afterList.taps.length) datums = await hooks.afterList.promise(datums, resolved);
    return this.#readAll(datums, "list");
  }

  causalChain(id: string): Promise<Datum[]> {
    const direct = this.#direct;
    const hooks = this.#hooks;
    if (direct?.causalChain !== undefined && hooks.beforeCausalChain.taps.length === 0 && hooks.read.taps.length === 0) {
      try {
        assertId(id);
      } catch (error) {
        return Promise.reject(error);
      }
      return direct.causalChain(id, this.#maxChainDepth);
    }
    return this.#causalChain(id);
  }

  async #causalChain(id: string): Promise<Datum[]> {
    if (this.#state !== State.Open) await this.#ready();
    assertId(id);
    if (this.#hooks.beforeCausalChain.taps.length) await this.#hooks.beforeCausalChain.promise(id);
    const chain = await this.#tiers.causalChain(id, this.#maxChainDepth);
    return this.#readAll(chain, "causalChain");
  }

  /** Every datum of every tier once (most durable copy first). For migration and export. */
  async *scan(): AsyncIterable<Datum> {
    if (this.#state !== State.Open) await this.#ready();
    yield* this.#tiers.scan();
  }

  /** Which tiers this store has, which one writes land on, and their counts. */
  async backend(): Promise<BackendReport> {
    if (this.#state !== State.Open) await this.#ready();
    const router = this.#tiers;
    const landing = router.landing;
    const tiers: TierReport[] = [];
    for (const state of router.states) {
      const tier = state.adapter;
      await router.check(state);
      const stats: AdapterStats | null = state.up && tier.stats ? await tier.stats().catch(() => null) : null;
      const location = stats?.path ?? stats?.location ?? stats?.url;
      tiers.push({
        name: tier.name,
        rank: tier.rank,
        durability: rankLabel(tier.rank),
        persistent: tier.capabilities.persistent,
        landing: tier === landing,
        up: state.up,
        count: stats?.count ?? null,
        bytes: stats?.bytes ?? null,
        error: state.up ? null : (state.lastError?.message ?? null),
        location: typeof location === "string" ? location : null,
      });
    }
    return {
      namespace: this.namespace,
      landing: landing.name,
      volatile: !landing.capabilities.persistent,
      preferred: router.preferred.adapter.name,
      degraded: landing !== router.preferred.adapter,
      pendingPromotions: await this.#upgrader.pending(),
      pendingDeletes: router.pending.size,
      tiers,
    };
  }
}

export function createStore(options: StoreOptions): Store {
  return new Store(options);
}

/** True for a Store (also across copies of the dgent module). */
export function isStore(value: unknown): value is Store {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STORE_BRAND] === true;
}

function closedError() {
  return dgentError("DGENT_CLOSED", "this store is closed; create a new one to continue");
}

/** Validates list options and fills defaults (prefix "", after -1, limit 100). */
export function resolveListOptions(options: ListOptions): ResolvedListOptions {
  if (options === null || typeof options !== "object") {
    throw dgentError("DGENT_INVALID_OPTIONS", "list options must be an object");
  }
  const { prefix = "", after = -1, limit = DEFAULT_LIST_LIMIT } = options;
  if (typeof prefix !== "string") {
    throw dgentError("DGENT_INVALID_OPTIONS", `list prefix must be a string, got ${typeof prefix}`);
  }
  if (typeof after !== "number" || Number.isNaN(after)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `list after must be a number of epoch milliseconds, got ${String(after)}`);
  }
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIST_LIMIT) {
    throw dgentError(
      "DGENT_INVALID_OPTIONS",
      `list limit must be an integer from 0 to ${MAX_LIST_LIMIT}, got ${String(limit)}`,
    );
  }
  return { prefix, after, limit };
}

function resolvePlugins(uses: readonly AnyPluginUse[]) {
  const resolved = uses.map((use) => {
    const plugin = ("plugin" in use ? use.plugin : use) as PluginDefinition<never>;
    const raw = "plugin" in use ? use.options : undefined;
    if (!plugin || plugin.kind !== "plugin") {
      throw dgentError("DGENT_INVALID_OPTIONS", "plugins must be made with definePlugin()");
    }
    return { plugin, options: checkOptions(plugin, raw) };
  });
  const names = new Set<string>();
  for (const { plugin } of resolved) {
    if (names.has(plugin.name)) {
      throw dgentError("DGENT_DUPLICATE_NAME", `plugin "${plugin.name}" is used twice in one store`, {
        unit: plugin.name,
      });
    }
    names.add(plugin.name);
  }
  for (const { plugin } of resolved) {
    for (const dep of plugin.dependsOn ?? []) {
      if (!names.has(dep)) {
        throw dgentError(
          "DGENT_PLUGIN_DEPENDENCY",
          `plugin "${plugin.name}" depends on plugin "${dep}", which is not in this store`,
          { unit: plugin.name, details: { missing: dep } },
        );
      }
    }
  }
  return orderByDependencies(resolved);
}

/** Dependencies apply first; a cycle is a `DGENT_PLUGIN_DEPENDENCY` error. */
function orderByDependencies<T extends { plugin: PluginDefinition<never> }>(items: T[]): T[] {
  const byName = new Map(items.map((i) => [i.plugin.name, i]));
  const out: T[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (item: T, path: string[]): void => {
    const name = item.plugin.name;
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      throw dgentError(
        "DGENT_PLUGIN_DEPENDENCY",
        `plugins depend on each other in a cycle: ${[...path, name].join(" → ")}`,
        { unit: name, details: { cycle: [...path, name] } },
      );
    }
    state.set(name, "visiting");
    for (const dep of item.plugin.dependsOn ?? []) visit(byName.get(dep) as T, [...path, name]);
    state.set(name, "done");
    out.push(item);
  };
  for (const item of items) visit(item, []);
  return out;
}


type ReadTapFn = (datum: Datum, info: ReadInfo) => Datum | undefined;

/**
 * When every tap of the `read` waterfall is synchronous and nothing intercepts it, the same
 * waterfall as one plain function (a tap returning `undefined` passes the value on, as tapable's
 * waterfall does): a list of 100 then costs 100 calls, not 100 promises. `null` otherwise.
 */
function syncWaterfall(hook: StoreHooks["read"]): ((datum: Datum, info: ReadInfo) => Datum) | null {
  const raw = hook as unknown as { taps: ReadonlyArray<{ type: string; fn: ReadTapFn }>; interceptors: readonly unknown[] };
  if (raw.interceptors.length !== 0) return null;
  const fns: ReadTapFn[] = [];
  for (const tap of raw.taps) {
    if (tap.type !== "sync") return null;
    fns.push(tap.fn);
  }
  return (datum, info) => {
    let value = datum;
    for (const fn of fns) {
      const next = fn(value, info);
      if (next !== undefined) value = next;
    }
    return value;
  };
}
