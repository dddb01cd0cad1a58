import assert, { AssertionError } from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { makeDatum, type Datum } from "../core/datum.js";
import type { ErrorCode } from "../core/error-codes.js";
import type { Adapter, Capabilities, ResolvedListOptions } from "../core/protocol.js";
import { createStore, isStore, type Store } from "../core/store.js";
import type { ConformanceOptions, ConformanceTarget, Target, TestFramework } from "./types.js";

/** A whole listing as an adapter receives it (prefix "", after -1, the default limit). */
export const WHOLE_LISTING: ResolvedListOptions = Object.freeze({ prefix: "", after: -1, limit: 100 });

/** Thrown by `Scope.skip`: the kit reports the running test as skipped, with `reason`. */
export class SkipSignal extends Error {
  constructor(readonly reason: string) {
    super(`skipped: ${reason}`);
  }
}

/** What `Scope.fresh` may set on the one-tier store it builds over an adapter. */
export interface FreshOptions {
  /** The store's `maxChainDepth` (a composed store sets its own: the test is then skipped). */
  maxChainDepth?: number;
  /** The store's clock (a composed store has its own: the test is then skipped). */
  clock?: () => number;
  /** The store's `expirySweepMs`. */
  expirySweepMs?: number | false;
}

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
  /** Instances handed out as they are (`unopened`, `adapter`, `dead`): closed at dispose. */
  readonly #loose: Target[] = [];
  /** A random id prefix private to this test. */
  readonly prefix = `k${randomBytes(6).toString("hex")}/`;
  #counter = 0;

  constructor(target: ConformanceTarget) {
    this.#target = target;
  }

  /**
   * A fresh, opened instance over new storage. With `maxChainDepth`, the one-tier store over the
   * adapter uses it; a target that makes composed stores cannot take it, and the test is skipped.
   */
  async fresh(options: FreshOptions = {}): Promise<Instance> {
    const raw = await this.#target.create();
    this.#made.push(raw);
    if (options.maxChainDepth !== undefined && isStore(raw)) {
      this.skip("the target makes composed stores, whose maxChainDepth is their own");
    }
    if ((options.clock !== undefined || options.expirySweepMs !== undefined) && isStore(raw)) {
      this.skip("the target makes composed stores, whose clock is their own");
    }
    return this.#wrap(raw, options);
  }

  /**
   * What `create()` returned, not opened by the kit and not wrapped in a store: for the tests
   * that drive `open()`/`close()` themselves. Closed (errors ignored) and destroyed at dispose.
   */
  async unopened(): Promise<Target> {
    const raw = await this.#target.create();
    this.#made.push(raw);
    this.#loose.push(raw);
    return raw;
  }

  /** `unopened()`, when the target makes adapters; a target that makes composed stores skips the test. */
  async adapter(why: string): Promise<Adapter> {
    const raw = await this.unopened();
    if (isStore(raw)) this.skip(`the target makes composed stores; ${why}`);
    return raw as Adapter;
  }

  /** The target's instance over an unreachable backend (see `ConformanceTarget.dead`); never destroyed. */
  async dead(): Promise<Target> {
    const dead = this.#target.dead;
    assert.ok(dead, "the target declares no dead()");
    const raw = await dead.call(this.#target);
    this.#loose.push(raw);
    return raw;
  }

  /** Ends the running test as skipped, with `reason` (the runner counts it). */
  skip(reason: string): never {
    throw new SkipSignal(reason);
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

  async #wrap(raw: Target, options: FreshOptions = {}): Promise<Instance> {
    const store = isStore(raw) ? raw : createStore({ tiers: [raw], ...options });
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
    for (const raw of this.#loose.splice(0)) await Promise.resolve().then(() => raw.close()).catch(() => undefined);
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
  | { dead: true }
  | { child: true; capability?: keyof Capabilities };

/**
 * Asserts that `promise` rejects with a DgentError of `code` (and, given `details`, that its
 * `details` hold those values, e.g. `{ field: "limit" }`); returns the error. A failure is
 * reported at the caller's line (the kit's check), with what was expected and what came instead.
 */
export function expectCode(
  promise: Promise<unknown>,
  code: ErrorCode,
  details?: Readonly<Record<string, unknown>>,
): Promise<Error & { code: string; details?: Readonly<Record<string, unknown>> }> {
  const site = callSite(expectCode);
  return Promise.resolve(promise).then(
    (value) => {
      throw at(
        site,
        new AssertionError({ message: `expected a rejection with ${code}, but the call resolved with ${show(value)}`, actual: value, expected: code, operator: "rejects" }),
      );
    },
    (caught: unknown) => {
      const err = (caught ?? {}) as Error & { code?: unknown };
      if (err.code !== code) {
        const got = err.code === undefined ? "an error without a code" : String(err.code);
        throw at(site, new AssertionError({ message: `expected ${code}, got ${got}: ${String(err.message ?? caught)}`, actual: err.code, expected: code, operator: "strictEqual" }));
      }
      if (typeof err.message !== "string" || err.message.length === 0) {
        throw at(site, new AssertionError({ message: `${code} must carry a message`, actual: err.message, expected: "a non-empty message", operator: "rejects" }));
      }
      if (details !== undefined) {
        const got = (err as { details?: unknown }).details;
        const actual: Record<string, unknown> = {};
        for (const key of Object.keys(details)) actual[key] = got !== null && typeof got === "object" ? (got as Record<string, unknown>)[key] : undefined;
        try {
          assert.deepEqual(actual, { ...details });
        } catch {
          throw at(
            site,
            new AssertionError({ message: `${code} as expected, but its details differ (${err.message})`, actual, expected: { ...details }, operator: "deepStrictEqual" }),
          );
        }
      }
      return err as Error & { code: string };
    },
  );
}

/** Asserts two datums are equal field by field (bytes compared as bytes); a failure names the caller's line. */
export function assertSameDatum(actual: Datum | null | undefined, expected: Datum, what = "datum"): void {
  try {
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
  } catch (error) {
    if (error instanceof Error) Error.captureStackTrace(error, assertSameDatum);
    throw error;
  }
}

/**
 * Waits for `promise`, failing as a hang when it has not settled within `ms` (the kit's
 * `deadlineMs`): for calls that must end by themselves. The failure names the caller's line.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const site = callSite(within);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(at(site, new AssertionError({ message: `${what} did not settle within ${ms} ms: a hang`, operator: "settles" }))), ms);
  });
  return Promise.race([Promise.resolve(promise), expired]).finally(() => clearTimeout(timer));
}

/** Calls `fn` and returns its promise; a synchronous throw becomes a failure that says so. */
export function settle<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(at(callSite(settle), new AssertionError({ message: `${what} threw synchronously instead of returning a promise: ${String(error)}`, actual: error, operator: "returns a promise" })));
  }
}

/** An object whose stack starts at the caller of `fn`. */
function callSite(fn: Function): { stack?: string } {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, fn);
  return site;
}

/** `error` with the frames of `site` (its own message kept): the failure points at the kit's check. */
function at<E extends Error>(site: { stack?: string }, error: E): E {
  const frames = site.stack?.slice(site.stack.indexOf("\n")) ?? "";
  error.stack = `${header(error)}${frames}`;
  return error;
}

/** The first part of `error.stack`: its name and message, without frames. */
function header(error: Error): string {
  const stack = error.stack ?? `${error.name}: ${error.message}`;
  const first = stack.search(/\n\s+at /);
  return first < 0 ? stack : stack.slice(0, first);
}

/** A short rendering of what a call resolved with: datums by id, bytes by length. */
function show(value: unknown): string {
  const isDatum = (v: unknown): v is Datum => typeof v === "object" && v !== null && typeof (v as Datum).id === "string" && (v as Datum).content instanceof Uint8Array;
  if (isDatum(value)) return `the datum ${JSON.stringify(value.id)}`;
  if (Array.isArray(value) && value.length > 0 && value.every(isDatum)) return `${value.length} datums ${show(value.map((d) => d.id))}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    // fall through
  }
  return String(value);
}

const SUITE_FRAME = /((?:file:\/\/)?[^\s()]*[\\/]testing[\\/]suites[\\/][^\s()\\/]+\.(?:ts|js|mjs|cjs)):(\d+):(\d+)/;

/**
 * Names, in the message of a failed test's error, the line of the kit check that failed (the
 * first frame in a suite file), so the report points at the check whatever the runner shows of
 * the stack (some hide frames under node_modules). Returns the location, or null.
 */
export function nameFailedCheck(error: unknown, test: string): string | null {
  if (!(error instanceof Error) || typeof error.stack !== "string") return null;
  const match = SUITE_FRAME.exec(error.stack);
  if (!match) return null;
  let file = match[1] as string;
  if (file.startsWith("file://")) file = fileURLToPath(file);
  const rel = relative(process.cwd(), file);
  const shown = rel.startsWith("..") || rel === "" ? file : rel.split(sep).join("/");
  const location = `${shown}:${match[2]}:${match[3]}`;
  const note = `\n    (the kit's check at ${location}, in "${test}")`;
  if (!error.message.includes(note)) {
    const head = header(error);
    const frames = error.stack.slice(head.length);
    try {
      error.message += note;
      error.stack = `${head}${note}${frames}`;
    } catch {
      return location; // a frozen error: leave it as it is
    }
  }
  return location;
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

/**
 * The order `list` must return, written without dgent's own comparator so the kit does not
 * check the product against itself: createdAt descending, then id descending by UTF-8 bytes
 * (which is code point order).
 */
export function referenceNewestFirst(a: Datum, b: Datum): number {
  if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
  return Buffer.compare(Buffer.from(b.id, "utf8"), Buffer.from(a.id, "utf8"));
}
