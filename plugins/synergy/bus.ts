import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { EventOf, SynergyEvent, SynergyEventType, SynergyListener } from "./events.js";

/** This process, as it appears in `origin`. */
export const PROCESS_ORIGIN = `${hostname()}/${process.pid}/${randomBytes(3).toString("hex")}`;

/** How one emit went. Failures are returned, never thrown: the emitter decides how to report them. */
export interface EmitReport {
  /** Listeners the event was given to. */
  readonly listeners: number;
  /** Listeners that threw or rejected. */
  readonly failures: ReadonlyArray<{ readonly error: unknown }>;
  /** Listeners still running when `timeoutMs` passed (they keep running; nobody waits for them). */
  readonly timeouts: number;
}

export interface BusStats {
  readonly emitted: number;
  readonly failures: number;
  readonly timeouts: number;
  readonly listeners: number;
}

type AnyListener = (event: SynergyEvent) => void | Promise<void>;

const TIMED_OUT = Symbol("timed out");

/**
 * An in-process synergy bus: listeners by event type (or `"*"`). `emit` calls every matching
 * listener at once and resolves when all have finished or `timeoutMs` passed, whichever is first.
 */
export class SynergyBus {
  readonly name: string;
  readonly #listeners = new Map<SynergyEventType | "*", Set<AnyListener>>();
  #emitted = 0;
  #failures = 0;
  #timeouts = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** Listens to events of one type, or every event with `"*"`. Returns the unsubscribe. */
  on<T extends SynergyEventType | "*">(type: T, listener: SynergyListener<T>): () => void {
    let set = this.#listeners.get(type);
    if (!set) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    const fn = listener as AnyListener;
    set.add(fn);
    return () => void set.delete(fn);
  }

  /** Resolves with the next event of `type` (for tests and one-shot waits). */
  once<T extends SynergyEventType | "*">(type: T, predicate: (event: EventOf<T>) => boolean = () => true): Promise<EventOf<T>> {
    return new Promise((resolve) => {
      const off = this.on(type, (event) => {
        if (!predicate(event)) return;
        off();
        resolve(event);
      });
    });
  }

  get listenerCount(): number {
    let n = 0;
    for (const set of this.#listeners.values()) n += set.size;
    return n;
  }

  /**
   * Delivers to this process's listeners: each is called at once, in the order they were added. A
   * listener that returns a promise is waited for, up to `timeoutMs` (a timer is made only then).
   */
  async emit(event: SynergyEvent, timeoutMs = 1000): Promise<EmitReport> {
    this.#emitted++;
    const typed = this.#listeners.get(event.type);
    const any = this.#listeners.get("*");
    const targets = [...(typed ?? []), ...(any ?? [])];
    if (targets.length === 0) return { listeners: 0, failures: [], timeouts: 0 };
    const failures: Array<{ error: unknown }> = [];
    const pending: Promise<unknown>[] = [];
    for (const listener of targets) {
      try {
        const result = listener(event);
        if (result && typeof (result as Promise<void>).then === "function") {
          pending.push(Promise.resolve(result).catch((error: unknown) => void failures.push({ error })));
        }
      } catch (error) {
        failures.push({ error });
      }
    }
    let timeouts = 0;
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
        timer.unref();
      });
      const outcomes = await Promise.all(pending.map((p) => Promise.race([p, deadline])));
      clearTimeout(timer);
      timeouts = outcomes.filter((o) => o === TIMED_OUT).length;
    }
    this.#failures += failures.length;
    this.#timeouts += timeouts;
    return { listeners: targets.length, failures, timeouts };
  }

  stats(): BusStats {
    return { emitted: this.#emitted, failures: this.#failures, timeouts: this.#timeouts, listeners: this.listenerCount };
  }
}

const buses = new Map<string, SynergyBus>();

/** The process-wide bus of this name (made on first use): where the plugin emits and apps listen. */
export function synergyBus(name = "default"): SynergyBus {
  let bus = buses.get(name);
  if (!bus) {
    bus = new SynergyBus(name);
    buses.set(name, bus);
  }
  return bus;
}
