/**
 * Test tiers and helpers for the plugin tests (plugins/<name>/*.test.ts, test/plugins-stacked.test.ts).
 * Lives under test/ so nothing test-only is compiled into dist.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import type { Datum } from "../core/datum.js";
import type { ErrorCode } from "../core/error-codes.js";
import { isDgentError, type DgentError } from "../core/errors.js";
import { expectCode } from "../testing/index.js";
import type { Adapter, AdapterContext } from "../core/protocol.js";

export const text = (d: Datum | null | undefined): string | null =>
  d ? Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength).toString("utf8") : null;

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Temp directories made by `sqliteTier`, removed by `removeTempDirs` (call it in afterAll). */
const dirs: string[] = [];

/** A SQLite tier over a new file in a temp directory. */
export function sqliteTier(): Adapter & { readonly path: string } {
  const dir = mkdtempSync(join(tmpdir(), "dgent-plugins-"));
  dirs.push(dir);
  return sqliteAdapter({ path: join(dir, "test.db") });
}

export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export type Op = "put" | "get" | "delete" | "list" | "putMany" | "causalChain";

/** A gate a test opens by hand: calls of `op` wait on it while it is armed. */
export interface Gate {
  /** Resolves once a call is waiting at the gate. */
  readonly reached: Promise<void>;
  open(): void;
}

/**
 * A tier wrapping another (memory by default) that counts calls per operation, can delay every
 * call, and can hold the next call of an operation at a gate (to interleave operations).
 */
export class ProbeTier implements Adapter {
  readonly name: string;
  readonly rank: number;
  readonly inner: Adapter;
  readonly calls: Record<Op, number> = { put: 0, get: 0, delete: 0, list: 0, putMany: 0, causalChain: 0 };
  delayMs = 0;
  /** When set, every write fails with it (a tier that is down). */
  failWrites: Error | null = null;
  readonly #gates = new Map<Op, { arrived: () => void; wait: Promise<void>; when: "before" | "after" }>();

  constructor(inner: Adapter = memoryAdapter(), name = inner.name, rank = inner.rank) {
    this.inner = inner;
    this.name = name;
    this.rank = rank;
  }

  get capabilities() {
    return this.inner.capabilities;
  }

  /**
   * Holds the next call of `op` until the returned gate is opened: before it reaches the inner
   * tier, or (`after`) once the inner tier answered, before the answer is returned.
   */
  hold(op: Op, when: "before" | "after" = "before"): Gate {
    let arrived!: () => void;
    const reached = new Promise<void>((r) => (arrived = r));
    let open!: () => void;
    const wait = new Promise<void>((r) => (open = r));
    this.#gates.set(op, { arrived, wait, when });
    return { reached, open };
  }

  async #gate(op: Op, when: "before" | "after"): Promise<void> {
    const gate = this.#gates.get(op);
    if (gate && gate.when === when) {
      this.#gates.delete(op);
      gate.arrived();
      await gate.wait;
    }
  }

  async #run<T>(op: Op, fn: () => Promise<T>, write = false): Promise<T> {
    this.calls[op]++;
    await this.#gate(op, "before");
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (write && this.failWrites) throw this.failWrites;
    const result = await fn();
    await this.#gate(op, "after");
    return result;
  }

  open(context?: AdapterContext) {
    return this.inner.open(context);
  }
  close() {
    return this.inner.close();
  }
  put(d: Datum) {
    return this.#run("put", () => this.inner.put(d), true);
  }
  putMany(ds: readonly Datum[]) {
    return this.#run(
      "putMany",
      async () => {
        if (this.inner.putMany) return this.inner.putMany(ds);
        const ids: string[] = [];
        for (const d of ds) ids.push(await this.inner.put(d));
        return ids;
      },
      true,
    );
  }
  get(id: string) {
    return this.#run("get", () => this.inner.get(id));
  }
  delete(id: string) {
    return this.#run("delete", () => this.inner.delete(id));
  }
  list(o: Parameters<Adapter["list"]>[0]) {
    return this.#run("list", () => this.inner.list(o));
  }
  causalChain(id: string, maxDepth: number) {
    return this.#run("causalChain", () => (this.inner.causalChain as NonNullable<Adapter["causalChain"]>).call(this.inner, id, maxDepth));
  }
  scan() {
    return (this.inner.scan as NonNullable<Adapter["scan"]>).call(this.inner);
  }
  stats() {
    return (this.inner.stats as NonNullable<Adapter["stats"]>).call(this.inner);
  }
}

export { until } from "./harness/until.js";

/** Awaits a rejection with `code` and returns it as the DgentError it must be. */
export async function expectDgent(promise: Promise<unknown>, code: ErrorCode): Promise<DgentError> {
  const err = await expectCode(promise, code);
  if (!isDgentError(err)) throw new Error(`expected a DgentError, got ${String(err)}`);
  return err;
}
