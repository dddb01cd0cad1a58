import type { Adapter } from "../core/protocol.js";
import type { Store } from "../core/store.js";

/** What the kit tests: an adapter (wrapped in a one-tier store) or a composed store. */
export type Target = Adapter | Store;

/** A JSON value, as handed to a child process. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * How the kit makes what it tests. Every `create()` must return an instance over storage of its
 * own (a random namespace, schema, temp dir or key prefix), so tests never see each other's data
 * and the kit can run against a shared server.
 */
export interface ConformanceTarget {
  /** Shown in test names. */
  name: string;
  /** A fresh, unopened (or opened) instance over new, isolated storage. */
  create(): Target | Promise<Target>;
  /**
   * A new instance over the same storage as `previous` (already closed by the kit). Enables the
   * persistence tests; leave it out for volatile tiers.
   */
  reopen?(previous: Target): Target | Promise<Target>;
  /**
   * An instance whose backend cannot be reached (a server that is stopped, a port nobody listens
   * on, or better one that accepts connections and never answers, so the probe's own timeout is
   * what ends it). Enables the dead-backend tests of `probe()` and `open()`; without it they are
   * reported as skipped. The kit never calls `destroy` on it; it calls `close()` when done.
   */
  dead?(): Target | Promise<Target>;
  /** Removes the storage behind an instance (after it is closed). */
  destroy?(instance: Target): void | Promise<void>;
  /** Starts shared infrastructure once before the suites (a server, a bucket). */
  beforeAll?(): void | Promise<void>;
  afterAll?(): void | Promise<void>;
  /**
   * Enables the tests that need other processes (crash recovery with SIGKILL, several writer
   * processes). `module` is a path or file URL of an ES module whose default export is
   * `(args) => Target | Promise<Target>`; `args(instance)` says, as JSON, how to reach the same
   * storage as `instance`.
   */
  child?: {
    module: string | URL;
    args(instance: Target): Json;
    /** Extra node flags for the child, e.g. `["--import", "tsx"]` for a TypeScript module. */
    execArgv?: readonly string[];
  };
}

/** The per-test context both runners pass: Vitest's and node:test's both have `skip`. */
export interface TestContext {
  skip?: (note?: string) => void;
}
/** `describe`/`it` of Vitest or node:test (both fit), plus their before/after-all hooks. */
export interface TestFramework {
  describe(name: string, fn: () => void): unknown;
  it: ((name: string, fn: (context: TestContext) => void | Promise<void>) => unknown) & {
    skip?: (name: string, fn: () => void) => unknown;
  };
  /** Vitest's `beforeAll` or node:test's `before`. */
  beforeAll?: (fn: () => void | Promise<void>) => unknown;
  before?: (fn: () => void | Promise<void>) => unknown;
  /** Vitest's `afterAll` or node:test's `after`. */
  afterAll?: (fn: () => void | Promise<void>) => unknown;
  after?: (fn: () => void | Promise<void>) => unknown;
}

export interface ConformanceOptions {
  /** Only these suites (by name, e.g. `["put", "list"]`). */
  only?: readonly string[];
  /** Datums written by the crash test before the child is killed (default 200). */
  crashAfter?: number;
  /** Writer processes in the multi-process test (default 4) and datums each (default 100). */
  processes?: number;
  perProcess?: number;
  /**
   * How long the kit waits for a call that must end by itself (a probe of a dead backend, open()
   * of one, a causal chain over a cycle or deeper than the limit, an open() racing a close())
   * before it fails the test as a hang (default 20 000 ms). A hang detector, not a speed limit.
   */
  deadlineMs?: number;
  /** Datums written by the eviction test of a tier that declares `evicts` (default 1 000). */
  evictionWrites?: number;
  /**
   * Seed of the random datums and filters of the `queries` suite (its failures print it). The
   * default is fixed, so runs repeat; another seed tries other cases.
   */
  seed?: number;
}
