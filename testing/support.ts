import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { makeDatum, type Datum } from "../core/datum.js";
import type { ErrorCode } from "../core/error-codes.js";
import type { Capabilities } from "../core/protocol.js";
import { createStore, isStore, type Store } from "../core/store.js";
import type { ConformanceOptions, ConformanceTarget, Target, TestFramework } from "./types.js";

/** One instance made by the target for one test, and what the kit needs of it. */
export interface Instance {
  /** What `create()`/`reopen()` returned. */
  readonly raw: Target;
  /** The protocol surface the tests drive (the raw store, or a one-tier store over the adapter). */
  readonly store: Store;
  readonly capabilities: Capabilities;
}

/** Resources of one test, released when it ends whatever happens. */
export class Scope {
  readonly #target: ConformanceTarget;
  readonly #open: Instance[] = [];
  readonly #made: Target[] = [];
  /** A random id prefix private to this test. */
  readonly prefix = `k${randomBytes(6).toString("hex")}/`;
  #counter = 0;

  constructor(target: ConformanceTarget) {
    this.#target = target;
  }

  /** A fresh, opened instance over new storage. */
  async fresh(): Promise<Instance> {
    const raw = await this.#target.create();
    this.#made.push(raw);
    return this.#wrap(raw);
  }

  /** Closes `instance` and opens a new one over the same storage. */
  async reopen(instance: Instance): Promise<Instance> {
    const reopen = this.#target.reopen;
    assert.ok(reopen, "the target declares no reopen()");
    await this.close(instance);
    const raw = await reopen.call(this.#target, instance.raw);
    return this.#wrap(raw);
  }

  async close(instance: Instance): Promise<void> {
    const i = this.#open.indexOf(instance);
    if (i >= 0) this.#open.splice(i, 1);
    await instance.store.close();
  }

  async #wrap(raw: Target): Promise<Instance> {
    const store = isStore(raw) ? raw : createStore({ tiers: [raw] });
    await store.open();
    const instance = { raw, store, capabilities: store.capabilities };
    this.#open.push(instance);
    return instance;
  }

  /** A valid datum with an id under this test's prefix; `key` makes the id readable. */
  datum(overrides: Partial<Datum> & { key?: string } = {}): Datum {
    const { key, ...rest } = overrides;
    const id = rest.id ?? `${this.prefix}${key ?? `d${String(this.#counter++).padStart(4, "0")}`}`;
    return makeDatum({
      id,
      content: rest.content ?? new TextEncoder().encode(`content of ${id}`),
      createdAt: rest.createdAt ?? Date.now(),
      causalParent: rest.causalParent ?? null,
      metadata: { ...(rest.metadata ?? {}) },
    });
  }

  async dispose(): Promise<void> {
    for (const instance of this.#open.splice(0)) await instance.store.close().catch(() => undefined);
    if (this.#target.destroy) {
      for (const raw of this.#made) await this.#target.destroy(raw);
    }
  }
}

export interface Suite {
  readonly fw: TestFramework;
  readonly target: ConformanceTarget;
  readonly options: Required<ConformanceOptions>;
  /** Registers a test that gets a Scope. `needs` names the capability or initializer it needs. */
  test(name: string, body: (scope: Scope) => Promise<void>, needs?: Need): void;
}

/** A test runs only when the target has what it needs; otherwise it is reported as skipped. */
export type Need =
  | { capability: keyof Capabilities; reason?: string }
  | { reopen: true }
  | { child: true; capability?: keyof Capabilities };

/** Asserts that `promise` rejects with a DgentError of `code`; returns the error. */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error & { code: string }> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught, `expected a rejection with ${code}, but the call succeeded`);
  const err = caught as Error & { code?: string };
  assert.equal(err.code, code, `expected ${code}, got ${err.code ?? "no code"}: ${err.message}`);
  assert.ok(err.message.length > 0, "a coded error must carry a message");
  return err as Error & { code: string };
}

/** Asserts two datums are equal field by field (bytes compared as bytes). */
export function assertSameDatum(actual: Datum | null | undefined, expected: Datum, what = "datum"): void {
  assert.ok(actual, `${what} ${JSON.stringify(expected.id)} is missing`);
  assert.equal(actual.id, expected.id, `${what}: id`);
  assert.ok(actual.content instanceof Uint8Array, `${what}: content must be a Uint8Array`);
  assert.equal(
    Buffer.from(actual.content).toString("hex"),
    Buffer.from(expected.content).toString("hex"),
    `${what} ${expected.id}: content bytes differ`,
  );
  assert.equal(actual.createdAt, expected.createdAt, `${what} ${expected.id}: createdAt`);
  assert.equal(actual.causalParent, expected.causalParent, `${what} ${expected.id}: causalParent`);
  assert.deepEqual({ ...actual.metadata }, { ...expected.metadata }, `${what} ${expected.id}: metadata`);
}

export function ids(datums: readonly Datum[]): string[] {
  return datums.map((d) => d.id);
}

/** A small seeded PRNG (mulberry32) so generated cases repeat from a printed seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
