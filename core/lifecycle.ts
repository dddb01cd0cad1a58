import { dgentError } from "./errors.js";

/**
 * The open/closed state every adapter keeps: `check()` throws `DGENT_NOT_OPEN` before `open`
 * and `DGENT_CLOSED` after `close`. A helper for adapter authors; cheap enough for hot paths.
 */
export class Lifecycle {
  #state: 0 | 1 | 2 = 0;
  readonly #unit: string;

  constructor(unit: string) {
    this.#unit = unit;
  }

  get isOpen(): boolean {
    return this.#state === 1;
  }

  get isClosed(): boolean {
    return this.#state === 2;
  }

  /** Call at the start of `open`; returns false when already open (open is idempotent). */
  beginOpen(): boolean {
    if (this.#state === 2) throw this.#closed();
    return this.#state === 0;
  }

  opened(): void {
    this.#state = 1;
  }

  /** Call at the start of `close`; returns false when there is nothing to close. */
  beginClose(): boolean {
    const wasOpen = this.#state === 1;
    this.#state = 2;
    return wasOpen;
  }

  check(): void {
    if (this.#state !== 1) {
      throw this.#state === 2
        ? this.#closed()
        : dgentError("DGENT_NOT_OPEN", `the ${this.#unit} adapter was used before open()`, { unit: this.#unit });
    }
  }

  #closed() {
    return dgentError("DGENT_CLOSED", `the ${this.#unit} adapter is closed`, { unit: this.#unit });
  }
}
