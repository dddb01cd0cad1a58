import { dgentError } from "./errors.js";

const NEW = 0;
const OPENING = 1;
const OPEN = 2;
const CLOSED = 3;

/**
 * The open/closed state every adapter keeps: `check()` throws `DGENT_NOT_OPEN` before `open`
 * and `DGENT_CLOSED` after `close`. A helper for adapter authors; cheap enough for hot paths.
 *
 * ```ts
 * open(context) { return this.#life.open(async () => { this.#db = await connect(); }); }
 * close() { return this.#life.close(async () => { await this.#db.end(); }); }
 * ```
 *
 * `open(connect)` runs `connect` once: a second `open()` while the first is connecting waits for
 * it instead of connecting again, and a failed `connect` leaves the adapter unopened so `open()`
 * can be retried. `close(release)` waits for a `connect` in flight, then runs `release` once if
 * the adapter was open. The older `beginOpen()`/`opened()`/`beginClose()` steps still work, but
 * do not protect against concurrent opens.
 */
export class Lifecycle {
  #state: typeof NEW | typeof OPENING | typeof OPEN | typeof CLOSED = NEW;
  #opening: Promise<void> | null = null;
  readonly #unit: string;

  constructor(unit: string) {
    this.#unit = unit;
  }

  get isOpen(): boolean {
    return this.#state === OPEN;
  }

  get isClosed(): boolean {
    return this.#state === CLOSED;
  }

  /** Opens once: concurrent callers share one `connect`; after `close`, `DGENT_CLOSED`. */
  open(connect: () => void | Promise<void>): Promise<void> {
    if (this.#state === OPEN) return Promise.resolve();
    if (this.#state === CLOSED) return Promise.reject(this.#closed());
    this.#opening ??= this.#connect(connect);
    return this.#opening;
  }

  async #connect(connect: () => void | Promise<void>): Promise<void> {
    this.#state = OPENING;
    try {
      await connect();
    } catch (error) {
      this.#opening = null;
      if (this.#state === OPENING) this.#state = NEW;
      throw error;
    }
    this.#opening = null;
    // A close() that came while connecting has already marked the adapter closed; it releases.
    if (this.#state === OPENING) this.#state = OPEN;
  }

  /**
   * Closes once: waits for an `open` in flight, then calls `release` when the adapter was open
   * (or finished connecting). Concurrent and later calls wait for that one close; operations then
   * fail with `DGENT_CLOSED`.
   */
  close(release?: () => void | Promise<void>): Promise<void> {
    this.#closing ??= this.#release(release);
    return this.#closing;
  }

  async #release(release?: () => void | Promise<void>): Promise<void> {
    const wasOpen = this.#state === OPEN;
    const opening = this.#opening;
    this.#state = CLOSED;
    const connected = wasOpen || (opening !== null && (await opening.then(() => true, () => false)));
    if (connected && release) await release();
  }

  #closing: Promise<void> | null = null;

  /** Call at the start of `open`; returns false when already open (open is idempotent). */
  beginOpen(): boolean {
    if (this.#state === CLOSED) throw this.#closed();
    return this.#state === NEW;
  }

  /** Call at the end of a successful `open`. A `close()` that came meanwhile wins: the adapter stays closed. */
  opened(): void {
    if (this.#state !== CLOSED) this.#state = OPEN;
  }

  /** Call at the start of `close`; returns false when there is nothing to close. */
  beginClose(): boolean {
    const wasOpen = this.#state === OPEN;
    this.#state = CLOSED;
    return wasOpen;
  }

  check(): void {
    if (this.#state !== OPEN) {
      throw this.#state === CLOSED
        ? this.#closed()
        : dgentError("DGENT_NOT_OPEN", `the ${this.#unit} adapter was used before open()`, { unit: this.#unit });
    }
  }

  #closed() {
    return dgentError("DGENT_CLOSED", `the ${this.#unit} adapter is closed`, { unit: this.#unit });
  }
}
