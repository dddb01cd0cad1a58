/**
 * Counter increments on hot paths, kept in plain numbers and handed to prom-client when the
 * counter is read. prom-client hashes and checks the label set on every `inc`, also through a
 * child from `labels()` (about 1 µs each); a store's put or a request to `dgent serve` counts
 * several times, so that cost was paid per operation. A counter read (`/metrics`, `get()`,
 * `registry.metrics()`) runs the counter's `collect`, which calls `flush` first: what is read is
 * exactly what prom-client's own children would show, samples in the order of their first count.
 */
import type { Counter, Histogram, LabelValues } from "prom-client";

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

/** One label set's pending observations; `observe` adds to plain numbers. */
export interface Observer {
  observe(value: number): void;
}

interface BucketEntry<T extends string> extends Observer {
  readonly labels: LabelValues<T>;
  /** Observations per bucket since the last flush (index of the first bound ≥ the value; past the end: only `+Inf`). */
  readonly counts: Float64Array;
  sum: number;
  count: number;
  touched: boolean;
}

/** prom-client's record of one label set of a histogram (what `zero(labels)` makes). */
interface PromHistogramValue {
  readonly labels: object;
  readonly bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Histogram observations on hot paths: prom-client's `observe`, also through a child from
 * `labels()`, validates and hashes the label set on every call (2–4 µs); a request to `dgent serve`
 * observed two histograms. Here an observation finds its bucket among the bounds and adds to
 * plain numbers; the histogram's `collect` (run by every read) calls `flush`, which adds them to
 * the label set's record that prom-client's own `zero(labels)` made: what is read is what
 * prom-client's `observe` would show (plugins/metrics/tally.test.ts), samples in first-observation order.
 */
export class HistogramTallies<T extends string> {
  readonly #bounds: Float64Array;
  readonly #touched: BucketEntry<T>[] = [];
  /** prom-client's record per label set, found once (again after a `reset()`). */
  readonly #records = new WeakMap<BucketEntry<T>, PromHistogramValue>();

  /** `buckets`: the histogram's upper bounds, ascending, as given to prom-client. */
  constructor(buckets: readonly number[]) {
    this.#bounds = Float64Array.from(buckets);
  }

  /** The observer of one label set (find it once, keep it: each call makes a new one). */
  child(labels: LabelValues<T>): Observer {
    const bounds = this.#bounds;
    const touched = this.#touched;
    const entry: BucketEntry<T> = {
      labels,
      counts: new Float64Array(bounds.length),
      sum: 0,
      count: 0,
      touched: false,
      observe(value: number) {
        if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
        let i = 0;
        while (i < bounds.length && value > (bounds[i] as number)) i++;
        if (i < bounds.length) entry.counts[i] = (entry.counts[i] as number) + 1;
        entry.sum += value;
        entry.count++;
        if (!entry.touched) {
          entry.touched = true;
          touched.push(entry);
        }
      },
    };
    return entry;
  }

  /** Adds what was observed to `histogram` (call from its `collect`). */
  flush(histogram: Histogram<T>): void {
    const map = (histogram as unknown as { hashMap: Record<string, PromHistogramValue> }).hashMap;
    for (const entry of this.#touched) {
      if (entry.count === 0) continue; // nothing new (and after a reset() a label set shows only once observed again)
      let record = this.#records.get(entry);
      if (record === undefined || !Object.values(map).includes(record)) {
        histogram.zero(entry.labels);
        record = Object.values(map).find((v) => v.labels === entry.labels);
        if (record === undefined) throw new Error("prom-client's histogram keeps no record for zero(labels): its internals changed");
        this.#records.set(entry, record);
      }
      for (let i = 0; i < this.#bounds.length; i++) {
        const n = entry.counts[i] as number;
        if (n !== 0) {
          const bound = this.#bounds[i] as number;
          record.bucketValues[bound] = (record.bucketValues[bound] ?? 0) + n;
        }
      }
      record.sum += entry.sum;
      record.count += entry.count;
      entry.counts.fill(0);
      entry.sum = 0;
      entry.count = 0;
    }
  }
}
