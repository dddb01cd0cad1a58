import { dgentError } from "../../core/errors.js";

export type OverflowPolicy = "error" | "drop-oldest";

export interface FeedOptions {
  /** Events held for a consumer that has not taken them yet (default: the plugin's `bufferSize`). */
  bufferSize?: number;
  /** What happens when the buffer is full (default: the plugin's `overflow`). */
  overflow?: OverflowPolicy;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
}

/**
 * One consumer's bounded queue of events, read as an async iterator. Producers never wait: when
 * the buffer is full, `error` ends the iteration with `DGENT_STREAM_OVERFLOW` once the buffered
 * events are taken, and `drop-oldest` drops the oldest buffered event (the gap shows in `seq`).
 */
export class Feed<T extends { readonly seq: number }> implements AsyncIterableIterator<T> {
  readonly #buffer: T[] = [];
  readonly #size: number;
  readonly #overflow: OverflowPolicy;
  readonly #unit: string;
  readonly #detach: (feed: Feed<T>) => void;
  readonly #onOverflow: ((error: Error) => void) | undefined;
  readonly #waiters: Waiter<T>[] = [];
  #ended = false;
  #failure: Error | null = null;
  #lastSeq = 0;
  dropped = 0;

  constructor(
    options: Required<Omit<FeedOptions, "signal">> & { signal?: AbortSignal },
    unit: string,
    detach: (feed: Feed<T>) => void,
    onOverflow?: (error: Error) => void,
  ) {
    this.#onOverflow = onOverflow;
    this.#size = options.bufferSize;
    this.#overflow = options.overflow;
    this.#unit = unit;
    this.#detach = detach;
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.end();
      else signal.addEventListener("abort", () => this.end(), { once: true });
    }
  }

  /** Called by the producer, in order. Never blocks and never throws. */
  push(event: T): void {
    if (this.#ended || this.#failure) {
      if (this.#failure) this.dropped++;
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#lastSeq = event.seq;
      waiter.resolve({ value: event, done: false });
      return;
    }
    if (this.#buffer.length < this.#size) {
      this.#buffer.push(event);
      return;
    }
    this.dropped++;
    if (this.#overflow === "drop-oldest") {
      this.#buffer.shift();
      this.#buffer.push(event);
      return;
    }
    const lastSeq = this.#buffer.length ? (this.#buffer[this.#buffer.length - 1] as T).seq : this.#lastSeq;
    this.#failure = dgentError(
      "DGENT_STREAM_OVERFLOW",
      `a change consumer fell more than ${this.#size} events behind; changes after seq ${lastSeq} were not kept for it. Subscribe again and resynchronise with list()`,
      { unit: this.#unit, details: { bufferSize: this.#size, lastSeq } },
    );
    this.#detach(this);
    this.#onOverflow?.(this.#failure);
  }

  /** No more events: the consumer gets what is buffered, then `done`. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#detach(this);
    for (const waiter of this.#waiters.splice(0)) waiter.resolve({ value: undefined, done: true });
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  next(): Promise<IteratorResult<T>> {
    const event = this.#buffer.shift();
    if (event !== undefined) {
      this.#lastSeq = event.seq;
      return Promise.resolve({ value: event, done: false });
    }
    if (this.#failure) {
      const failure = this.#failure;
      this.#ended = true;
      this.#failure = null;
      return Promise.reject(failure);
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => void this.#waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.#buffer.length = 0;
    this.#failure = null;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
