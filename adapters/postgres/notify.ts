import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pg from "pg";

/**
 * LISTEN/NOTIFY for one connection URL: one dedicated client per URL listens on every channel
 * any store of this process subscribed to, reconnects with backoff after the server goes away,
 * and tells subscribers when notifications may have been missed meanwhile.
 */

/** Who this process is in notification payloads; our own changes are not reported back to us. */
export const ORIGIN = `${hostname()}/${process.pid}/${randomBytes(4).toString("hex")}`;

export interface ChangeMessage {
  readonly op: "put" | "delete";
  readonly id: string;
  readonly origin: string;
}

export interface Subscriber {
  /** A change made by another process. */
  change(message: ChangeMessage): void;
  /** Something the subscriber should report: a gap after a reconnect, or an unreadable payload. */
  warning(message: string, details?: Readonly<Record<string, unknown>>): void;
}

const MAX_BACKOFF_MS = 5_000;

export class NotifyHub {
  readonly #config: pg.ClientConfig;
  readonly #channels = new Map<string, Set<Subscriber>>();
  /** The LISTEN of each channel, once sent (awaited by every subscriber). */
  readonly #listening = new Map<string, Promise<void>>();
  #client: pg.Client | null = null;
  /** Serialises connect / LISTEN / UNLISTEN so they never interleave. */
  #queue: Promise<unknown> = Promise.resolve();
  #retry: NodeJS.Timeout | null = null;
  #backoff = 100;
  #closed = false;

  constructor(config: pg.ClientConfig) {
    this.#config = { ...config, keepAlive: true };
  }

  /** Subscribes to `channel`; resolves once the LISTEN is in place. Returns the unsubscribe. */
  async subscribe(channel: string, subscriber: Subscriber): Promise<() => Promise<void>> {
    let set = this.#channels.get(channel);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
    }
    set.add(subscriber);
    if (first) {
      this.#listening.set(
        channel,
        this.#serial(async () => {
          const client = await this.#connected();
          await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        }),
      );
    }
    try {
      // A later subscriber to the same channel also waits until the LISTEN is in place.
      await this.#listening.get(channel);
    } catch (error) {
      set.delete(subscriber);
      if (set.size === 0) {
        this.#channels.delete(channel);
        this.#listening.delete(channel);
      }
      throw error;
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const current = this.#channels.get(channel);
      if (!current) return;
      current.delete(subscriber);
      if (current.size > 0) return;
      this.#channels.delete(channel);
      this.#listening.delete(channel);
      await this.#serial(async () => {
        if (this.#channels.size === 0) await this.#disconnect();
        else if (this.#client && !this.#channels.has(channel)) {
          await this.#client.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
        }
      });
    };
  }

  /** Channels listened on now (for tests and reports). */
  get channels(): readonly string[] {
    return [...this.#channels.keys()];
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#channels.clear();
    this.#listening.clear();
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    await this.#serial(() => this.#disconnect());
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #connected(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client(this.#config);
    // An error on an idle listener (server restart) must not crash the process: reconnect instead.
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    client.on("notification", (msg) => this.#dispatch(msg));
    try {
      await client.connect();
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw error;
    }
    this.#client = client;
    return client;
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
    }
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry || this.#channels.size === 0) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      void this.#serial(async () => {
        if (this.#closed || this.#channels.size === 0 || this.#client) return;
        const client = await this.#connected();
        for (const channel of this.#channels.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        this.#backoff = 100;
        for (const subscribers of this.#channels.values()) {
          for (const s of subscribers) {
            s.warning("the change listener reconnected; changes made by other processes while it was disconnected were not reported", {
              reason: "listener-reconnected",
            });
          }
        }
      }).catch(() => {
        void this.#serial(() => this.#disconnect()).then(() => this.#scheduleReconnect());
      });
    }, delay);
    this.#retry.unref();
  }

  #dispatch(msg: pg.Notification): void {
    const subscribers = this.#channels.get(msg.channel);
    if (!subscribers || subscribers.size === 0) return;
    let parsed: Partial<ChangeMessage> | null = null;
    try {
      parsed = JSON.parse(msg.payload ?? "") as Partial<ChangeMessage>;
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.op !== "put" && parsed.op !== "delete") || typeof parsed.id !== "string") {
      for (const s of subscribers) s.warning("ignored an unreadable change notification", { channel: msg.channel });
      return;
    }
    const origin = typeof parsed.origin === "string" ? parsed.origin : "";
    if (origin === ORIGIN) return;
    const message: ChangeMessage = { op: parsed.op, id: parsed.id, origin };
    for (const s of subscribers) s.change(message);
  }
}
