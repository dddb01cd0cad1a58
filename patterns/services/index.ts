/**
 * A small typed container for an agent's stores and services: declare each once (a store from a
 * config file or object, a service from a factory), get it by name anywhere, override it in a
 * test, reset between tests. Created lazily, once, even when many callers ask at the same time;
 * `reset()` closes what was created, in reverse order of creation.
 */
import { createStoreFromConfig, type ConfigOptions } from "../../compose/config/index.js";
import { dgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";

/** Builds a service; `get` gives it the others it needs (a cycle is refused). */
export type Factory<M, T> = (registry: ServiceRegistry<M>) => T | Promise<T>;

export interface ServiceOptions<T> {
  /** Called by `reset()` for an instance that was created (default: `close()` when it has one). */
  dispose?: (instance: T) => void | Promise<void>;
}

interface Entry<M, T> {
  readonly factory: Factory<M, T>;
  readonly dispose: ((instance: T) => void | Promise<void>) | undefined;
}

/** A store declared by its config: a file path, or a config object (`createStoreFromConfig`). */
export type StoreSpec = string | object | { readonly config: string | object; readonly options?: ConfigOptions };

/** The registry: `M` maps each name to its service's type. */
export class ServiceRegistry<M = Record<string, unknown>> {
  readonly #entries = new Map<keyof M, Entry<M, unknown>>();
  readonly #instances = new Map<keyof M, Promise<unknown>>();
  readonly #overrides = new Map<keyof M, unknown>();
  /** Names in the order their instances were created (for `reset`). */
  readonly #created: Array<keyof M> = [];
  /** Names being built by the current chain of `get`s (cycle detection). */
  readonly #building: Array<keyof M> = [];

  /** Declares a service. A name declared twice is `DGENT_DUPLICATE_NAME`. */
  define<K extends keyof M>(name: K, factory: Factory<M, M[K]>, options: ServiceOptions<M[K]> = {}): this {
    if (typeof factory !== "function") {
      throw dgentError("DGENT_INVALID_OPTIONS", `service ${String(name)}: the factory must be a function`, { details: { name: String(name) } });
    }
    if (this.#entries.has(name)) {
      throw dgentError("DGENT_DUPLICATE_NAME", `service ${String(name)} is already defined; override it with inject() in tests`, { details: { name: String(name) } });
    }
    this.#entries.set(name, { factory, dispose: options.dispose } as Entry<M, unknown>);
    return this;
  }

  /** Declares a store from a config file or object; it is created on first `get` and closed by `reset`. */
  defineStore<K extends keyof M>(name: K, spec: StoreSpec): this {
    const { config, options } = typeof spec === "object" && spec !== null && "config" in spec ? spec : { config: spec, options: undefined };
    return this.define(name, (() => createStoreFromConfig(config as string | object, options ?? {})) as unknown as Factory<M, M[K]>);
  }

  /** True when `name` is defined or injected. */
  has(name: keyof M): boolean {
    return this.#entries.has(name) || this.#overrides.has(name);
  }

  /** The service, created on first use (concurrent callers share one creation). */
  async get<K extends keyof M>(name: K): Promise<M[K]> {
    if (this.#overrides.has(name)) return this.#overrides.get(name) as M[K];
    const made = this.#instances.get(name);
    if (made) return made as Promise<M[K]>;
    const entry = this.#entries.get(name);
    if (!entry) {
      const known = [...this.#entries.keys(), ...this.#overrides.keys()].map(String);
      throw dgentError("DGENT_UNKNOWN_SERVICE", `no service named ${JSON.stringify(String(name))}; defined: ${known.length ? known.join(", ") : "none"}`, {
        details: { name: String(name), known },
      });
    }
    if (this.#building.includes(name)) {
      const chain = [...this.#building.slice(this.#building.indexOf(name)), name].map(String);
      throw dgentError("DGENT_SERVICE_CYCLE", `services depend on each other in a circle: ${chain.join(" → ")}`, { details: { chain } });
    }
    this.#building.push(name);
    let creation: Promise<unknown>;
    try {
      creation = Promise.resolve(entry.factory(this));
    } finally {
      this.#building.pop();
    }
    this.#instances.set(name, creation);
    try {
      const instance = await creation;
      this.#created.push(name);
      return instance as M[K];
    } catch (error) {
      this.#instances.delete(name); // a failed creation is retried by the next get
      throw error;
    }
  }

  /** A store service, checked to be one. */
  async store<K extends keyof M>(name: K): Promise<Store> {
    const value = await this.get(name);
    if (value === null || typeof value !== "object" || typeof (value as { put?: unknown }).put !== "function") {
      throw dgentError("DGENT_INVALID_OPTIONS", `service ${String(name)} is not a store`, { details: { name: String(name) } });
    }
    return value as unknown as Store;
  }

  /** Replaces a service (a fake in a test) until `reset()`; the replacement is never disposed. */
  inject<K extends keyof M>(name: K, value: M[K]): this {
    this.#overrides.set(name, value);
    return this;
  }

  /** Disposes every created instance (newest first; a store is closed), and drops the overrides. */
  async reset(): Promise<void> {
    const errors: unknown[] = [];
    for (const name of this.#created.splice(0).reverse()) {
      const instance = await this.#instances.get(name);
      this.#instances.delete(name);
      const dispose = this.#entries.get(name)?.dispose ?? defaultDispose;
      try {
        await dispose(instance);
      } catch (error) {
        errors.push(error);
      }
    }
    this.#instances.clear();
    this.#overrides.clear();
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} services failed to dispose`);
  }
}

async function defaultDispose(instance: unknown): Promise<void> {
  const close = (instance as { close?: unknown } | null)?.close;
  if (typeof close === "function") await (close as () => unknown).call(instance);
}

/** A new, empty registry. */
export function createServices<M = Record<string, unknown>>(): ServiceRegistry<M> {
  return new ServiceRegistry<M>();
}

/** What `bootstrapServices` declares: stores by config and services by factory. */
export interface Bootstrap<M> {
  stores?: { readonly [K in keyof M]?: StoreSpec };
  services?: { readonly [K in keyof M]?: Factory<M, M[K]> };
}

let shared: ServiceRegistry<Record<string, unknown>> = new ServiceRegistry();

/**
 * Declares the process-wide registry's stores and services once, at start-up; `getService`,
 * `injectService` and `resetServices` use it. Calling it again after `resetServices({ forget: true })`
 * starts over.
 */
export function bootstrapServices<M extends Record<string, unknown>>(spec: Bootstrap<M>): ServiceRegistry<M> {
  const registry = shared as unknown as ServiceRegistry<M>;
  for (const [name, store] of Object.entries(spec.stores ?? {})) registry.defineStore(name as keyof M, store as StoreSpec);
  for (const [name, factory] of Object.entries(spec.services ?? {})) registry.define(name as keyof M, factory as Factory<M, M[keyof M]>);
  return registry;
}

/** A service of the process-wide registry. */
export function getService<T = unknown>(name: string): Promise<T> {
  return shared.get(name) as Promise<T>;
}

/** Overrides a service of the process-wide registry (tests). */
export function injectService(name: string, value: unknown): void {
  shared.inject(name, value);
}

/**
 * Disposes the process-wide registry's instances and overrides; `{ forget: true }` also drops the
 * declarations, so a test can bootstrap again.
 */
export async function resetServices(options: { forget?: boolean } = {}): Promise<void> {
  await shared.reset();
  if (options.forget) shared = new ServiceRegistry();
}
