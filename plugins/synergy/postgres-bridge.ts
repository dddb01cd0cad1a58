import { randomBytes } from "node:crypto";
import pg from "pg";
import type { SynergyBus } from "./bus.js";
import { isSynergyEvent, type SynergyEvent } from "./events.js";

/** Postgres refuses NOTIFY payloads of 8000 bytes or more; stay under with room for the envelope. */
export const MAX_PAYLOAD = 7900;
const MAX_BACKOFF_MS = 5_000;

export interface BridgeReporter {
  warn(message: string, details?: Readonly<Record<string, unknown>>): void;
}

interface Envelope {
  /** Format version. */
  readonly v: 1;
  /** The bridge that sent it, so it can ignore its own echo. */
  readonly from: string;
  readonly event: SynergyEvent;
}

/**
 * Carries a bus's events between processes over Postgres `LISTEN/NOTIFY`: local events are
 * published with `pg_notify`, and notifications from other processes are delivered to this
 * process's listeners with `remote: true` (never published again). One connection listens and
 * publishes; it reconnects with backoff after the server goes away and says so (events sent while
 * it was away are not replayed: NOTIFY is not a queue).
 */
export class PostgresBridge {
  readonly url: string;
  readonly channel: string;
  readonly #bus: SynergyBus;
  readonly #id = randomBytes(6).toString("hex");
  readonly #reporters = new Set<BridgeReporter>();
  #client: pg.Client | null = null;
  #connecting: Promise<pg.Client> | null = null;
  #retry: NodeJS.Timeout | null = null;
  #backoff = 100;
  #closed = false;
  #everConnected = false;
  published = 0;
  received = 0;

  constructor(bus: SynergyBus, url: string, channel: string) {
    this.#bus = bus;
    this.url = url;
    this.channel = channel;
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  addReporter(reporter: BridgeReporter): void {
    this.#reporters.add(reporter);
  }
  removeReporter(reporter: BridgeReporter): number {
    this.#reporters.delete(reporter);
    return this.#reporters.size;
  }

  #warn(message: string, details?: Readonly<Record<string, unknown>>): void {
    for (const r of this.#reporters) r.warn(message, { channel: this.channel, ...details });
  }

  /** Connects and listens; on failure, reports and keeps retrying in the background (never throws). */
  async start(): Promise<void> {
    try {
      await this.#connect();
    } catch (error) {
      this.#warn(`the cross-process synergy bus cannot reach Postgres (${redacted(error)}); retrying in the background`);
      this.#scheduleReconnect();
    }
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.url, keepAlive: true, connectionTimeoutMillis: 5_000 });
      client.on("error", () => this.#lost(client));
      client.on("end", () => this.#lost(client));
      client.on("notification", (msg) => this.#receive(msg));
      try {
        await client.connect();
        await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      } catch (error) {
        client.removeAllListeners("end");
        await client.end().catch(() => undefined);
        throw error;
      }
      if (this.#closed) {
        await client.end().catch(() => undefined);
        throw new Error("the bridge was closed while it connected");
      }
      if (this.#everConnected) {
        this.#warn("the cross-process synergy bus reconnected; events other processes sent meanwhile were not received", {
          reason: "listener-reconnected",
        });
      }
      this.#everConnected = true;
      this.#backoff = 100;
      this.#client = client;
      return client;
    })().finally(() => (this.#connecting = null));
    return this.#connecting;
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    if (!this.#closed) this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#connect().catch(() => this.#scheduleReconnect());
    }, delay);
    this.#retry.unref(); // never keeps the process alive
  }

  /** Publishes a local event to the other processes. Rejects on failure (the caller reports it). */
  async publish(event: SynergyEvent): Promise<void> {
    const client = this.#client ?? (this.#closed ? null : await this.#connect());
    if (!client) throw new Error("the cross-process synergy bus is closed");
    await client.query("SELECT pg_notify($1, $2)", [this.channel, encode(this.#id, event)]);
    this.published++;
  }

  #receive(msg: pg.Notification): void {
    if (msg.channel !== this.channel) return;
    let envelope: Envelope | null = null;
    try {
      envelope = JSON.parse(msg.payload ?? "") as Envelope;
    } catch {
      envelope = null;
    }
    if (!envelope || envelope.v !== 1 || !isSynergyEvent(envelope.event)) {
      this.#warn("ignored a notification on the synergy channel that is not a synergy event");
      return;
    }
    if (envelope.from === this.#id) return; // our own, already delivered locally
    this.received++;
    const event = Object.freeze({ ...envelope.event, remote: true });
    void this.#bus.emit(event).then((report) => {
      for (const f of report.failures) {
        this.#warn(`a synergy listener failed on a remote ${event.type} event`, { error: describe(f.error) });
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
    }
  }
}

/** The NOTIFY payload; a `stored` event too big for it loses its metadata (`metadata: {}`, `truncated`). */
export function encode(from: string, event: SynergyEvent): string {
  const payload = JSON.stringify({ v: 1, from, event } satisfies Envelope);
  if (Buffer.byteLength(payload, "utf8") < MAX_PAYLOAD) return payload;
  const slim = { ...event, ...("metadata" in event ? { metadata: {}, truncated: true } : {}) } as SynergyEvent;
  const smaller = JSON.stringify({ v: 1, from, event: slim } satisfies Envelope);
  if (Buffer.byteLength(smaller, "utf8") < MAX_PAYLOAD) return smaller;
  throw new Error(`a synergy event for ${JSON.stringify((event as { id?: string }).id)} does not fit a NOTIFY payload (ids over ~7 KB)`);
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An error message with any `user:password@` removed. */
function redacted(error: unknown): string {
  return describe(error).replace(/\/\/[^@/\s]*@/g, "//***@");
}

const bridges = new Map<string, PostgresBridge>();

/** One bridge per bus, URL and channel in a process, shared by the stores that use it. */
export function bridgeFor(bus: SynergyBus, url: string, channel: string): PostgresBridge {
  const key = `${bus.name}\u0000${url}\u0000${channel}`;
  let bridge = bridges.get(key);
  if (!bridge) {
    bridge = new PostgresBridge(bus, url, channel);
    bridges.set(key, bridge);
  }
  return bridge;
}

/** Releases a store's use of a bridge; the last user closes it. */
export async function releaseBridge(bridge: PostgresBridge, reporter: BridgeReporter): Promise<void> {
  if (bridge.removeReporter(reporter) > 0) return;
  for (const [key, b] of bridges) if (b === bridge) bridges.delete(key);
  await bridge.close();
}
