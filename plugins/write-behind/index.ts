import { dgentError, isDgentError, type DgentError } from "../../core/errors.js";
import type { DeferredWrite } from "../../core/hooks.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { sameValue } from "../../core/datum.js";
import { definePlugin } from "../../core/registry.js";
import { conflictError } from "../../core/tiers.js";
import type { PluginUse } from "../../core/store.js";
import { describe, UNIT, WriteBuffer, type FlushReport, type Refusal } from "./buffer.js";
import { onExit } from "./exit.js";

export type { FlushReport, Refusal } from "./buffer.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = UNIT;

export interface WriteBehindOptions {
  /** Flush when this many datums are buffered; the put that fills the batch waits for it (default 100). */
  maxBatch?: number;
  /** Flush what is buffered this often, in ms; 0 turns the timer off (default 1000). The timer never keeps the process alive. */
  intervalMs?: number;
  /** Most datums buffered; beyond it `put` fails with `DGENT_UNAVAILABLE` (flushes failing or too slow). Default 10 000. */
  maxPending?: number;
  /** Flush when the process is about to exit by itself (`beforeExit`), default true. */
  flushOnExit?: boolean;
  /**
   * Apply the append-only law when a put is acknowledged: read the tiers for its id (one `get`,
   * much cheaper than a write) and refuse a conflict at once (default true). `false` skips the
   * read; conflicts then surface only at flush time, and reads of a buffered datum show it even
   * where the tiers hold another value under its id.
   */
  checkOnPut?: boolean;
}

export interface WriteBehindStats {
  /** Datums acknowledged and not yet on a tier. */
  readonly buffered: number;
  readonly flushes: number;
  /** Flushes written as one batch. */
  readonly batches: number;
  readonly written: number;
  /** Datums the tiers refused at flush time (conflicts), dropped. */
  readonly refused: number;
  /** Flushes after which datums stayed buffered because the tiers failed. */
  readonly failedFlushes: number;
}

/** What `store.plugin(writeBehind)` resolves to. */
export interface WriteBehindHandle {
  /**
   * Writes everything buffered now. Rejects with the refusals not reported yet (`DGENT_CONFLICT`),
   * or `DGENT_UNAVAILABLE` when datums stay buffered because the tiers failed.
   */
  flush(): Promise<FlushReport>;
  stats(): WriteBehindStats;
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    maxBatch: { type: "integer", minimum: 1, default: 100 },
    intervalMs: { type: "integer", minimum: 0, default: 1000 },
    maxPending: { type: "integer", minimum: 1, default: 10_000 },
    flushOnExit: { type: "boolean", default: true },
    checkOnPut: { type: "boolean", default: true },
  },
};

/** Storage-side short-circuits band (core/HOOKS.md): answers reads of buffered datums before a cache (190). */
const STAGE = 110;

/** Refusals as one error: the refusal itself when there is one, a `DGENT_CONFLICT` naming every id otherwise. */
function refusalError(refusals: readonly Refusal[]): DgentError {
  if (refusals.length === 1) return (refusals[0] as Refusal).error;
  const ids = refusals.flatMap((r) => r.ids);
  return dgentError("DGENT_CONFLICT", `${ids.length} buffered writes were refused at flush time (another datum holds their ids): ${ids.slice(0, 5).join(", ")}${ids.length > 5 ? ", …" : ""}`, {
    unit: UNIT,
    details: { ids, errors: refusals.map((r) => r.error) },
  });
}

/**
 * Write-behind batching (seed 001, "Write-behind caching"; "Anti-pattern 1: over-persisting"):
 * puts are acknowledged from a buffer and written as one batch on size, on an interval and on
 * close. Acknowledged is not durable until the flush: see the crash semantics in the README.
 */
export const writeBehind = definePlugin<WriteBehindOptions, WriteBehindHandle>({
  name: PLUGIN_NAME,
  description: "Buffers writes and flushes them as one batch on size, on an interval and on close.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const maxBatch = options.maxBatch ?? 100;
    const maxPending = Math.max(options.maxPending ?? 10_000, maxBatch);
    const buffer = new WriteBuffer({ warn: (m, d) => api.warn(m, d) });
    /** Refusals found by background flushes, thrown by the next flush() or close(). */
    const unreported: Refusal[] = [];
    let closed = false;

    const background = (): void => {
      if (buffer.size === 0) return;
      void buffer.flush().then((report) => unreported.push(...report.refused));
    };
    /** An explicit flush: everything, and every failure not reported yet. */
    const flush = async (): Promise<FlushReport> => {
      const report = await buffer.flush();
      const refusals = [...unreported.splice(0), ...report.refused];
      if (refusals.length) throw refusalError(refusals);
      const observed = buffer.observerErrors.splice(0);
      if (observed.length) throw observed[0];
      if (report.kept > 0 || buffer.size > 0) {
        const cause = report.error ?? buffer.lastError;
        throw dgentError("DGENT_UNAVAILABLE", `${buffer.size} datums are still buffered: the tiers failed (${describe(cause)})`, {
          unit: UNIT,
          details: { buffered: buffer.size },
          cause,
        });
      }
      return report;
    };

    const { hooks } = api;
    const tap = { name: PLUGIN_NAME, stage: STAGE };
    const checkOnPut = options.checkOnPut !== false;
    hooks.deferPut.tapPromise(tap, async (writes, info) => {
      if (closed) return undefined; // the store is closing: write through
      let todo = writes;
      if (checkOnPut) {
        // The law at acknowledgement: a conflict with a stored datum fails now; an identical datum
        // already stored is the no-op it would be without the buffer (nothing to write later).
        const fresh: DeferredWrite[] = [];
        for (const w of writes) {
          const stored = buffer.has(w.datum.id) ? null : await info.lookup(w.datum.id);
          if (stored === null) fresh.push(w);
          else if (!sameValue(stored, w.datum)) throw conflictError(w.datum.id, UNIT);
        }
        todo = fresh;
      }
      const unit = buffer.add(todo, info.commit, maxPending);
      if (buffer.size >= maxBatch) {
        // The put that fills a batch waits for it (backpressure); it hears of its own refusal.
        const report = await buffer.flush();
        const own = report.refused.find((r) => unit.some((w: DeferredWrite) => r.ids.includes(w.datum.id)));
        unreported.push(...report.refused.filter((r) => r !== own));
        if (own) throw own.error;
      }
      return true;
    });
    hooks.beforeGet.tap(tap, (id) => buffer.get(id));
    hooks.afterList.tap(tap, (datums, listOptions) => buffer.merge(datums, listOptions));
    // A delete or a chain walk must see buffered datums on the tiers: flush first.
    const flushFirst = async (): Promise<void> => {
      if (buffer.size === 0) return;
      const report = await buffer.flush();
      unreported.push(...report.refused);
    };
    hooks.beforeDelete.tapPromise(tap, async (id) => {
      if (buffer.has(id)) await flushFirst();
    });
    hooks.beforeCausalChain.tapPromise(tap, flushFirst);

    let timer: NodeJS.Timeout | null = null;
    if ((options.intervalMs ?? 1000) > 0) {
      timer = setInterval(background, options.intervalMs ?? 1000);
      timer.unref(); // never keeps the process alive
    }
    const stopExit = options.flushOnExit === false ? () => undefined : onExit(() =>
          buffer.size > 0
            ? buffer.flush().then((report) => {
                unreported.push(...report.refused);
                return buffer.size === 0;
              })
            : null,
        );

    // First on close, so observers that stop at close (reactive, synergy at +100) see the last batch.
    hooks.close.tapPromise({ name: PLUGIN_NAME, stage: -100 }, async () => {
      closed = true;
      if (timer) clearInterval(timer);
      stopExit();
      try {
        await flush();
      } catch (error) {
        if (isDgentError(error, "DGENT_UNAVAILABLE")) {
          throw dgentError("DGENT_UNAVAILABLE", `closing with ${buffer.size} buffered datums that could not be written; they are lost: ${error.message}`, {
            unit: UNIT,
            details: { lost: buffer.size },
            cause: error,
          });
        }
        throw error;
      }
    });

    return {
      flush,
      stats: () => ({ buffered: buffer.size, ...buffer.counts }),
    };
  },
});

/** `plugins: [writeBehindPlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function writeBehindPlugin(options: WriteBehindOptions = {}): PluginUse<never> {
  return { plugin: writeBehind, options: options as never };
}
