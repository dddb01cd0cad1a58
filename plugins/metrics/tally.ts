/**
 * Counter increments on hot paths, kept in plain numbers and handed to prom-client when the
 * counter is read. prom-client hashes and checks the label set on every `inc`, also through a
 * child from `labels()` (about 1 µs each); a store's put or a request to `dgent serve` counts
 * several times, so that cost was paid per operation. A counter read (`/metrics`, `get()`,
 * `registry.metrics()`) runs the counter's `collect`, which calls `flush` first: what is read is
 * exactly what prom-client's own children would show, samples in the order of their first count.
 */
import type { Counter, LabelValues } from "prom-client";

/** One label set's pending count; `inc` adds to a number. */
export interface Tally {
  inc(value?: number): void;
}

interface Entry<T extends string> extends Tally {
  readonly labels: LabelValues<T>;
  n: number;
  touched: boolean;
  flushed: boolean;
}

export class Tallies<T extends string> {
  /** Label sets counted since they were made, in the order of their first count. */
  readonly #touched: Entry<T>[] = [];

  /** The tally of one label set (find it once, keep it: each call makes a new one). */
  child(labels: LabelValues<T>): Tally {
    const touched = this.#touched;
    const entry: Entry<T> = {
      labels,
      n: 0,
      touched: false,
      flushed: false,
      inc(value = 1) {
        if (!Number.isFinite(value) || value < 0) throw new TypeError(`a counter only goes up by a finite amount, got ${value}`);
        entry.n += value;
        if (!entry.touched) {
          entry.touched = true;
          touched.push(entry);
        }
      },
    };
    return entry;
  }

  /** Adds what was counted to `counter` (call from its `collect`). */
  flush(counter: Counter<T>): void {
    for (const entry of this.#touched) {
      if (entry.n === 0 && entry.flushed) continue;
      counter.inc(entry.labels, entry.n);
      entry.n = 0;
      entry.flushed = true;
    }
  }
}
