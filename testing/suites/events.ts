import assert, { AssertionError } from "node:assert/strict";
import type { Datum } from "../../core/datum.js";
import type { AdapterContext, ResolvedListOptions } from "../../core/protocol.js";
import { assertSameDatum, type Suite } from "../support.js";

/** Calls an adapter made on the events of its `AdapterContext`, checked against `AdapterEvents`. */
class EventLog {
  readonly problems: string[] = [];
  readonly evicted: { datum: Datum; reason: string }[] = [];
  readonly warnings: { message: string; details?: unknown }[] = [];
  readonly changes: unknown[] = [];

  /** The context to open the adapter with: every call is recorded, and its arguments checked. */
  readonly context: AdapterContext = {
    events: {
      evicted: (...args: unknown[]) => {
        const [datum, reason] = args;
        const wrong = [
          args.length !== 2 && `${args.length} arguments`,
          datumProblem(datum),
          (typeof reason !== "string" || reason.length === 0) && `reason ${show(reason)} is not a non-empty string`,
        ].filter(Boolean);
        if (wrong.length) this.problems.push(`evicted(${args.map(show).join(", ")}): ${wrong.join("; ")}; the documented call is evicted(datum, reason)`);
        else this.evicted.push({ datum: datum as Datum, reason: reason as string });
      },
      warning: (...args: unknown[]) => {
        const [message, details] = args;
        const wrong = [
          (args.length < 1 || args.length > 2) && `${args.length} arguments`,
          (typeof message !== "string" || message.length === 0) && `message ${show(message)} is not a non-empty string`,
          details !== undefined && !isPlainObject(details) && `details ${show(details)} is not an object`,
        ].filter(Boolean);
        if (wrong.length) this.problems.push(`warning(${args.map(show).join(", ")}): ${wrong.join("; ")}; the documented call is warning(message, details?)`);
        else this.warnings.push({ message: message as string, details });
      },
      change: (...args: unknown[]) => {
        const [event] = args;
        const e = (isPlainObject(event) ? event : {}) as Record<string, unknown>;
        const wrong = [
          args.length !== 1 && `${args.length} arguments`,
          !isPlainObject(event) && "the event is not an object",
          e.op !== "put" && e.op !== "delete" && `op ${show(e.op)} is not "put" or "delete"`,
          (typeof e.id !== "string" || e.id.length === 0) && `id ${show(e.id)} is not an id`,
          e.origin !== undefined && typeof e.origin !== "string" && `origin ${show(e.origin)} is not a string`,
        ].filter(Boolean);
        if (wrong.length) this.problems.push(`change(${args.map(show).join(", ")}): ${wrong.join("; ")}; the documented call is change({ op, id, origin? })`);
        else this.changes.push(event);
      },
    },
  };

  assertClean(): void {
    if (this.problems.length === 0) return;
    const shown = this.problems.slice(0, 3).join("\n  ") + (this.problems.length > 3 ? `\n  … and ${this.problems.length - 3} more` : "");
    throw new AssertionError({
      message: `adapter events called with other arguments than AdapterEvents documents:\n  ${shown}`,
      actual: this.problems,
      expected: [],
      operator: "deepStrictEqual",
      stackStartFn: this.assertClean,
    });
  }
}

const ALL: ResolvedListOptions = { prefix: "", after: -1, limit: 100_000 };

export function eventsSuite(s: Suite): void {
  s.test("the events an adapter reports carry the documented arguments", async (scope) => {
    const adapter = await scope.adapter("adapter events are an adapter's");
    const log = new EventLog();
    await adapter.open(log.context);
    const chain: Datum[] = [];
    for (let i = 0; i < 30; i++) {
      const d = scope.datum({ createdAt: i, causalParent: chain[i - 1]?.id ?? null, metadata: { i: String(i) } });
      chain.push(d);
      await adapter.put(d);
    }
    if (adapter.putMany) await adapter.putMany([scope.datum({ createdAt: 100 }), scope.datum({ createdAt: 101 })]);
    await adapter.get((chain[5] as Datum).id);
    await adapter.list({ prefix: scope.prefix, after: -1, limit: 10 });
    await adapter.list(ALL);
    if (adapter.causalChain) await adapter.causalChain((chain[29] as Datum).id, 1000);
    for (const d of chain.slice(0, 10)) await adapter.delete(d.id);
    if (adapter.stats) await adapter.stats();
    if (adapter.probe) await adapter.probe();
    await adapter.close();
    log.assertClean();
  });

  s.test(
    "a datum that leaves without a delete is announced by evicted(datum, reason)",
    async (scope) => {
      const adapter = await scope.adapter("adapter events are an adapter's");
      const log = new EventLog();
      await adapter.open(log.context);
      const written: Datum[] = [];
      for (let i = 0; i < s.options.evictionWrites; i++) {
        const d = scope.datum({ createdAt: 1_000 + i, content: new TextEncoder().encode(`evictable ${i}`) });
        written.push(d);
        await adapter.put(d);
      }
      log.assertClean();
      if (log.evicted.length === 0) {
        scope.skip(`nothing was evicted after ${written.length} writes: give the target a bound below the kit's evictionWrites`);
      }
      const announced = new Map(log.evicted.map((e) => [e.datum.id, e.datum]));
      for (const d of written) {
        const held = await adapter.get(d.id);
        const gone = announced.get(d.id);
        if (held === null) {
          assert.ok(gone, `${JSON.stringify(d.id)} left without a delete and without evicted(datum, reason)`);
          assertSameDatum(gone, d, "the evicted datum");
        } else {
          assert.equal(gone, undefined, `${JSON.stringify(d.id)} was announced as evicted but is still held`);
        }
      }
      await adapter.close();
      log.assertClean();
    },
    { capability: "evicts" },
  );
}

function datumProblem(value: unknown): string | false {
  if (!isPlainObject(value)) return `the datum ${show(value)} is not a datum object`;
  const d = value as Record<string, unknown>;
  if (typeof d.id !== "string") return "the datum has no string id";
  if (!(d.content instanceof Uint8Array)) return "the datum's content is not a Uint8Array";
  if (typeof d.createdAt !== "number") return "the datum's createdAt is not a number";
  if (d.causalParent !== null && typeof d.causalParent !== "string") return "the datum's causalParent is not an id or null";
  if (!isPlainObject(d.metadata)) return "the datum's metadata is not an object";
  return false;
}

function isPlainObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function show(value: unknown): string {
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (isPlainObject(value) && typeof (value as { id?: unknown }).id === "string") return `{ id: ${JSON.stringify((value as { id: string }).id)}, … }`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
