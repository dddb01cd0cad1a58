import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { cycleError, depthError } from "../../core/causal.js";
import type { Datum } from "../../core/datum.js";
import { importOptional } from "../../core/adapter-support.js";
import { conflictError, dgentError } from "../../core/errors.js";
import { EXPIRES_AT } from "../../core/expiry.js";
import { Lifecycle } from "../../core/lifecycle.js";
import type { Adapter, AdapterContext, AdapterEvents, AdapterStats, Capabilities, ResolvedListOptions } from "../../core/protocol.js";
import { refConflict, type Ref, type RefExpectation, type RefMove, type ReflogEntry, type TxOp, type TxOpResult, type TxResult } from "../../core/refs.js";
import { redactUrl } from "../../core/redact.js";
import { decodeDatum, encodeDatum } from "./codec.js";
import { isRetryable, passwordsOf, wrapRedisError } from "./errors.js";
import { ADAPTER_NAME, type ResolvedOptions } from "./options.js";
import { ownChannel, putScript, SCRIPTS, type Script } from "./scripts.js";

/** Who this process is in change messages; our own changes are not reported back to us. */
export const ORIGIN = `${hostname()}/${process.pid}/${randomBytes(4).toString("hex")}`;

type Arg = string | Buffer;
type Reply = null | number | Buffer | string | Reply[];

/** The part of node-redis's client this tier uses (kept narrow so its heavy generics stay out of our types). */
interface RedisClient {
  connect(): Promise<unknown>;
  sendCommand<T = Reply>(args: readonly Arg[], options?: { typeMapping?: Record<number, unknown>; timeout?: number }): Promise<T>;
  duplicate(): RedisClient;
  subscribe(channels: string | string[], listener: (message: string, channel: string) => void): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

interface RedisModule {
  createClient(options: Record<string, unknown>): RedisClient;
  RESP_TYPES: { readonly BLOB_STRING: number };
}

let client: Promise<RedisModule> | null = null;

/**
 * node-redis: its core package, `@redis/client` (what `redis` bundles with the modules for
 * RedisJSON, search and so on, none of which this tier uses), else `redis` itself. The core alone
 * loads in about half the time; `npm install redis` brings both.
 */
function loadClient(): Promise<RedisModule> {
  // Neither installed: the error names `redis`, the package to install.
  client ??= importOptional<RedisModule>("@redis/client", ADAPTER_NAME).catch(() => importOptional<RedisModule>("redis", ADAPTER_NAME));
  return client;
}

/** Datums per page of `scan()`. */
const SCAN_PAGE = 500;

function capabilities(persistent: boolean): Capabilities {
  return Object.freeze({
    persistent,
    multiProcess: true,
    nativeCausalChain: true,
    batch: true,
    scan: true,
    evicts: false,
    refs: true,
    transactions: true,
  });
}

const NO_EVENTS: AdapterEvents = { evicted: () => undefined, warning: () => undefined, change: () => undefined };

/** What the server keeps on disk, as read at open. */
export type Persistence = "aof" | "rdb" | "aof+rdb" | "none" | "unknown";

/**
 * The Redis tier: datums, indexes and refs in one Redis database, every read-modify-write a
 * server-side Lua script (scripts.ts), one multiplexed connection for commands and one for
 * change notifications. Key layout in README.md.
 */
export class RedisAdapter implements Adapter {
  readonly name = ADAPTER_NAME;
  readonly rank: number;
  /** The key prefix of this namespace: `<keyPrefix>:{<namespace>}:`. */
  readonly prefix: string;
  readonly namespace: string;
  /** The URL with any password replaced by `***`. */
  readonly redactedUrl: string;
  readonly #o: ResolvedOptions;
  readonly #life = new Lifecycle(ADAPTER_NAME);
  readonly #secrets: readonly string[];
  readonly #keys: { readonly t: string; readonly i: string; readonly b: string; readonly R: string; readonly channel: string };
  readonly #indexKeys: readonly string[];
  #caps: Capabilities;
  #client: RedisClient | null = null;
  #subscriber: RedisClient | null = null;
  #buffers: { typeMapping: Record<number, unknown> } = { typeMapping: {} };
  #events: AdapterEvents = NO_EVENTS;
  #persistence: Persistence = "unknown";
  #channel = "";
  /** This namespace's put script (its keys, channel and our origin written in), settled at open (it depends on whether we listen). */
  #put: Script;
  /** `P d:`, the start of every datum key. */
  readonly #datumKey: string;
  /** Native expiry: the margin (ms) added to a datum's expiry for its key's PXAT, or -1 when not armed. */
  #margin = -1;

  constructor(options: ResolvedOptions, rank: number) {
    this.#o = options;
    this.rank = rank;
    this.prefix = options.prefix;
    this.namespace = options.namespace;
    this.redactedUrl = redactUrl(options.url);
    this.#secrets = passwordsOf(options.url);
    const p = options.prefix;
    this.#keys = { t: `${p}t`, i: `${p}i`, b: `${p}b`, R: `${p}R`, channel: `${p}changes` };
    this.#indexKeys = [this.#keys.t, this.#keys.i, this.#keys.b];
    this.#caps = capabilities(options.persistent === true);
    this.#datumKey = `${p}d:`;
    this.#put = putScript(p, options.notify ? this.#keys.channel : "", ORIGIN);
  }

  /** Declared facts; `persistent` is what the server's own settings say, read at open (or the `persistent` option). */
  get capabilities(): Capabilities {
    return this.#caps;
  }

  /** What the server keeps on disk, as read at open (`"unknown"` before, or where CONFIG is disabled). */
  get persistence(): Persistence {
    return this.#persistence;
  }

  /**
   * Native expiry as settled at open: whether datums carrying `dgent.expiresAt` are written with
   * `PXAT <expiresAt + marginMs>`, and the margin (the grace plus the server clock's lead, if any).
   */
  get nativeExpiry(): { readonly armed: boolean; readonly marginMs: number } {
    return { armed: this.#margin >= 0, marginMs: Math.max(this.#margin, 0) };
  }

  /** The pub/sub channel this namespace's changes are announced on. */
  get channel(): string {
    return this.#keys.channel;
  }

  open(context?: AdapterContext): Promise<void> {
    return this.#life.open(() => this.#attach(context));
  }

  async #attach(context?: AdapterContext): Promise<void> {
    const o = this.#o;
    const redis = await loadClient();
    let connected = false;
    const socket: Record<string, unknown> = {
      connectTimeout: o.connectTimeoutMs,
      // Before the first connection: fail (open reports the outage and the router degrades).
      // After it: reconnect in the background with backoff; commands fail fast meanwhile.
      reconnectStrategy: (retries: number) => (connected ? Math.min(50 * 2 ** Math.min(retries, 6), 2_000) : false),
    };
    if (o.tls) socket.tls = true;
    if (o.tls) Object.assign(socket, o.tls);
    const client = redis.createClient({ url: o.url, RESP: 2, disableOfflineQueue: true, socket });
    client.on("error", () => undefined); // failures surface on the commands; the client reconnects by itself
    this.#buffers = { typeMapping: { [redis.RESP_TYPES.BLOB_STRING]: Buffer } };
    const what = `open the ${this.prefix} namespace at ${this.redactedUrl}`;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        (async () => {
          await client.connect();
          connected = true;
          this.#client = client;
          this.#persistence = await this.#readPersistence(client);
          this.#margin = this.#armsExpiry(context) ? o.expiryGraceMs + (await serverLead(client)) : -1;
          this.#put = putScript(this.prefix, o.notify ? this.#keys.channel : "", ORIGIN, o.listen && context !== undefined);
          await Promise.all([...Object.values(SCRIPTS), this.#put].map((s) => client.sendCommand(["SCRIPT", "LOAD", s.source])));
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(dgentError("DGENT_UNAVAILABLE", `${ADAPTER_NAME}: ${what}: no answer within ${o.connectTimeoutMs} ms`, { unit: ADAPTER_NAME })), o.connectTimeoutMs);
        }),
      ]);
    } catch (error) {
      this.#client = null;
      connected = false;
      destroy(client);
      throw wrapRedisError(error, ADAPTER_NAME, what, this.#secrets);
    } finally {
      clearTimeout(timer);
    }
    const persistent = o.persistent === "auto" ? this.#persistence !== "none" && this.#persistence !== "unknown" : o.persistent;
    this.#caps = capabilities(persistent);
    this.#events = context?.events ?? NO_EVENTS;
    this.#channel = o.notify ? this.#keys.channel : "";
    if (o.persistent === "auto" && this.#persistence === "unknown") {
      this.#events.warning(`${ADAPTER_NAME}: the server does not answer CONFIG GET, so its persistence is unknown; treated as not persistent (set the "persistent" option to say)`, {
        reason: "persistence-unknown",
      });
    }
    if (o.listen && context !== undefined) await this.#listen(client);
  }

  /** Whether native expiry is armed: `nativeExpiry`, and under `"auto"` whether the store's clock is the system clock. */
  #armsExpiry(context: AdapterContext | undefined): boolean {
    const mode = this.#o.nativeExpiry;
    if (mode !== "auto") return mode;
    return context?.clock === undefined || context.clock === Date.now;
  }

  async #readPersistence(client: RedisClient): Promise<Persistence> {
    try {
      const [save, aof] = await Promise.all([
        client.sendCommand<string[]>(["CONFIG", "GET", "save"]),
        client.sendCommand<string[]>(["CONFIG", "GET", "appendonly"]),
      ]);
      const rdb = typeof save[1] === "string" && save[1].trim() !== "";
      const appendOnly = aof[1] === "yes";
      return appendOnly && rdb ? "aof+rdb" : appendOnly ? "aof" : rdb ? "rdb" : "none";
    } catch (error) {
      if (isRetryable(error)) throw error;
      // CONFIG renamed or refused (managed services): INFO still says whether the AOF is on.
      try {
        const info = await client.sendCommand<string>(["INFO", "persistence"]);
        return /^aof_enabled:1\s*$/m.test(info) ? "aof" : "unknown";
      } catch {
        return "unknown";
      }
    }
  }

  async #listen(client: RedisClient): Promise<void> {
    const sub = client.duplicate();
    sub.on("error", () => undefined);
    let ready = 0;
    sub.on("ready", () => {
      if (++ready > 1) {
        this.#events.warning("the change listener reconnected; changes made by other processes while it was disconnected were not reported", {
          reason: "listener-reconnected",
        });
      }
    });
    try {
      await sub.connect();
      // One SUBSCRIBE, the namespace's channel first: whenever our own channel counts us, so does
      // the namespace's, which is what lets the scripts skip announcing to nobody but us (scripts.ts).
      await sub.subscribe([this.#keys.channel, ownChannel(this.#keys.channel, ORIGIN)], (message) => this.#heard(message));
    } catch (error) {
      destroy(sub);
      throw wrapRedisError(error, ADAPTER_NAME, `subscribe to ${this.#keys.channel}`, this.#secrets);
    }
    this.#subscriber = sub;
  }

  #heard(message: string): void {
    const tab = message.indexOf("\t");
    const op = message[0];
    if (tab < 0 || (op !== "p" && op !== "d")) {
      this.#events.warning("ignored an unreadable change message", { channel: this.#keys.channel });
      return;
    }
    const origin = message.slice(1, tab);
    if (origin === ORIGIN) return;
    this.#events.change({ op: op === "p" ? "put" : "delete", id: message.slice(tab + 1), origin });
  }

  close(): Promise<void> {
    return this.#life.close(async () => {
      const client = this.#client;
      const sub = this.#subscriber;
      this.#client = null;
      this.#subscriber = null;
      await Promise.all([sub, client].map(async (c) => {
        if (!c) return;
        await c.close().catch(() => destroy(c));
      }));
    });
  }

  async put(datum: Datum): Promise<string> {
    this.#life.check();
    // The hot path: one EVALSHA of five arguments (six with a deadline; see putScript), no spreading, no extra await.
    const argv: Arg[] = ["EVALSHA", this.#put.sha, "1", this.#datumKey + datum.id, encodeDatum(datum)];
    const tag = datum.metadata[EXPIRES_AT];
    if (tag !== undefined && this.#margin >= 0) argv.push(String(Number(tag) + this.#margin));
    let r: number;
    try {
      r = await (this.#client as RedisClient).sendCommand<number>(argv); // an integer reply: no type mapping
    } catch (error) {
      r = await this.#reload<number>(error, this.#put, argv, "put", datum.id);
    }
    if (r === -1) throw conflictError(datum.id, ADAPTER_NAME);
    return datum.id;
  }

  async putMany(datums: readonly Datum[]): Promise<string[]> {
    this.#life.check();
    const ids = datums.map((d) => d.id);
    if (datums.length === 0) return ids;
    const args: Arg[] = [this.prefix, this.#channel, ORIGIN];
    for (const d of datums) args.push(d.id, encodeDatum(d), String(d.createdAt), this.#deadline(d));
    const r = await this.#eval<number[]>(SCRIPTS.putMany, this.#indexKeys, args, "putMany", `${datums.length} datums`);
    if (r[0] === -1) throw conflictError((datums[r[1] as number] as Datum).id, ADAPTER_NAME);
    return ids;
  }

  async get(id: string): Promise<Datum | null> {
    this.#life.check();
    let value: Buffer | null;
    try {
      value = await (this.#client as RedisClient).sendCommand<Buffer | null>(["GET", this.prefix + "d:" + id], this.#buffers);
    } catch (error) {
      throw this.#wrap(error, "get", id);
    }
    return value === null ? null : decodeDatum(id, value, ADAPTER_NAME);
  }

  async delete(id: string): Promise<boolean> {
    this.#life.check();
    const r = await this.#eval<number[]>(SCRIPTS.delete, this.#indexKeys, [this.prefix, this.#channel, ORIGIN, id], "delete", id);
    return r.length === 1;
  }

  /** Deletes many ids in one script (journaled deletes, promotions); resolves to those that existed. */
  async deleteIds(ids: readonly string[]): Promise<string[]> {
    this.#life.check();
    if (ids.length === 0) return [];
    const r = await this.#eval<number[]>(SCRIPTS.delete, this.#indexKeys, [this.prefix, this.#channel, ORIGIN, ...ids], "deleteIds", `${ids.length} ids`);
    return r.map((i) => ids[i] as string);
  }

  async list(options: ResolvedListOptions): Promise<Datum[]> {
    this.#life.check();
    const { prefix, after, limit } = options;
    if (limit === 0) return [];
    const r = await this.#eval<Buffer[]>(SCRIPTS.list, this.#indexKeys, [this.prefix, prefix, String(after), String(limit)], "list", prefix);
    return this.#pairs(r);
  }

  async causalChain(id: string, maxDepth: number): Promise<Datum[]> {
    this.#life.check();
    const r = await this.#eval<[Buffer, Buffer[] | Buffer]>(SCRIPTS.chain, this.#indexKeys, [this.prefix, id, String(maxDepth)], "causalChain", id);
    const status = r[0].toString();
    if (status === "cycle") throw cycleError(id, (r[1] as Buffer).toString(), ADAPTER_NAME);
    if (status === "deep") throw depthError(id, maxDepth, ADAPTER_NAME);
    return this.#pairs(r[1] as Buffer[]).reverse();
  }

  async *scan(): AsyncIterable<Datum> {
    this.#life.check();
    let last = "";
    for (;;) {
      const r = await this.#eval<[Buffer, Buffer[]]>(SCRIPTS.scan, this.#indexKeys, [this.prefix, last, String(SCAN_PAGE)], "scan", last);
      yield* this.#pairs(r[1]);
      last = r[0].toString();
      if (last === "") return;
    }
  }

  async stats(): Promise<AdapterStats> {
    this.#life.check();
    // One script: the index entries of datums Redis removed at their deadline go first, so the figures are exact.
    const [count, bytes, refs] = await this.#eval<[number, Buffer, number]>(SCRIPTS.stats, [...this.#indexKeys, this.#keys.R], [this.prefix], "stats", this.prefix);
    return { count, bytes: Number(String(bytes)), refs, namespace: this.namespace, prefix: this.prefix, url: this.redactedUrl, persistence: this.#persistence };
  }

  /** PING within `probeTimeoutMs`; true when the server answers. Never throws. */
  async probe(): Promise<boolean> {
    if (this.#life.isClosed) return false;
    const client = this.#client;
    const o = this.#o;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), o.probeTimeoutMs);
    });
    let once: RedisClient | null = null;
    const ask = (async () => {
      if (client) return (await client.sendCommand<string>(["PING"])) === "PONG";
      // Not open (the router probes before choosing a tier): a one-off connection.
      const redis = await loadClient();
      const socket: Record<string, unknown> = { connectTimeout: o.probeTimeoutMs, reconnectStrategy: false };
      if (o.tls) Object.assign(socket, { tls: true }, o.tls);
      once = redis.createClient({ url: o.url, RESP: 2, disableOfflineQueue: true, socket });
      once.on("error", () => undefined);
      await once.connect();
      return (await once.sendCommand<string>(["PING"])) === "PONG";
    })().catch(() => false);
    try {
      return await Promise.race([ask, timeout]);
    } finally {
      clearTimeout(timer);
      if (once) destroy(once);
    }
  }

  async getRef(name: string): Promise<Ref | null> {
    this.#life.check();
    try {
      const [t, v, u] = await (this.#client as RedisClient).sendCommand<Array<string | null>>(["HMGET", this.prefix + "r:" + name, "t", "v", "u"]);
      return t == null ? null : { name, target: t, version: Number(v), updatedAt: Number(u) };
    } catch (error) {
      throw this.#wrap(error, "getRef", name);
    }
  }

  async listRefs(prefix: string): Promise<Ref[]> {
    this.#life.check();
    const r = await this.#eval<Buffer[]>(SCRIPTS.listRefs, [this.#keys.R], [this.prefix, prefix], "listRefs", prefix);
    const refs: Ref[] = [];
    for (let k = 0; k < r.length; k += 4) {
      refs.push({ name: String(r[k]), target: String(r[k + 1]), version: Number(String(r[k + 2])), updatedAt: Number(String(r[k + 3])) });
    }
    return refs;
  }

  async reflog(name: string, limit: number): Promise<ReflogEntry[]> {
    this.#life.check();
    if (limit <= 0) return [];
    let lines: string[];
    try {
      lines = await (this.#client as RedisClient).sendCommand<string[]>(["LRANGE", this.prefix + "l:" + name, "0", String(limit - 1)]);
    } catch (error) {
      throw this.#wrap(error, "reflog", name);
    }
    return lines.map((line) => {
      const parts = line.split("\t");
      const [from = "", to = "", version = "0", at = "0"] = parts;
      return { name, from: from === "" ? null : from, to: to === "" ? null : to, version: Number(version), at: Number(at), by: parts.slice(4).join("\t") };
    });
  }

  async setRef(name: string, target: string, expect: RefExpectation | undefined, move: RefMove): Promise<Ref> {
    this.#life.check();
    const [kind, value] = expectation(expect);
    const r = await this.#eval<Reply[]>(SCRIPTS.setRef, [this.#keys.R], [this.prefix, name, target, kind, value, String(move.at), move.by], "setRef", name);
    if (r[0] === 1) return { name, target, version: r[1] as number, updatedAt: move.at };
    throw this.#refConflict(r, expect);
  }

  async deleteRef(name: string, expect: RefExpectation | undefined, move: RefMove): Promise<boolean> {
    this.#life.check();
    const [kind, value] = expectation(expect);
    const r = await this.#eval<Reply[]>(SCRIPTS.deleteRef, [this.#keys.R], [this.prefix, name, kind, value, String(move.at), move.by], "deleteRef", name);
    if (r[0] === 1) return r[1] === 1;
    throw this.#refConflict(r, expect);
  }

  /** Puts, deletes and ref moves in one script: checked in full, then applied; all or nothing. */
  async commit(ops: readonly TxOp[], move: RefMove): Promise<TxResult> {
    this.#life.check();
    const args: Arg[] = [this.prefix, this.#channel, ORIGIN, String(move.at), move.by];
    for (const op of ops) {
      if (op.op === "put") args.push("p", op.datum.id, encodeDatum(op.datum), String(op.datum.createdAt), this.#deadline(op.datum));
      else if (op.op === "delete") args.push("d", op.id);
      else if (op.op === "setRef") args.push("s", op.name, op.target, ...expectation(op.expect));
      else args.push("r", op.name, ...expectation(op.expect));
    }
    const r = await this.#eval<Reply[]>(SCRIPTS.commit, [...this.#indexKeys, this.#keys.R], args, "commit", `${ops.length} operations`);
    const status = String(r[0]);
    if (status === "conflict") throw conflictError((ops[r[1] as number] as { datum: Datum }).datum.id, ADAPTER_NAME);
    if (status.startsWith("ref:")) {
      const failed = ops[Number(status.slice(4))] as { expect?: RefExpectation };
      throw this.#refConflict(r, failed.expect);
    }
    const values = r[1] as number[];
    const results: TxOpResult[] = ops.map((op, k) => {
      const v = values[k] as number;
      if (op.op === "put") return { op: "put", id: op.datum.id };
      if (op.op === "delete") return { op: "delete", id: op.id, existed: v === 1 };
      if (op.op === "setRef") return { op: "setRef", ref: { name: op.name, target: op.target, version: v, updatedAt: move.at } };
      return { op: "deleteRef", name: op.name, existed: v === 1 };
    });
    return { results };
  }

  /** The PXAT of `d`'s key: its expiry plus the margin, or `""` (no expiry, or native expiry not armed). */
  #deadline(d: Datum): string {
    const tag = d.metadata[EXPIRES_AT];
    return tag === undefined || this.#margin < 0 ? "" : String(Number(tag) + this.#margin);
  }

  /** A conflict reply `{'ref', name, target?, version?, updatedAt?}` (every ref script's) as `DGENT_REF_CONFLICT`. */
  #refConflict(r: Reply[], expect: RefExpectation | undefined) {
    const name = String(r[1]);
    const [t, v, u] = [r[2], r[3], r[4]];
    const actual: Ref | null = t == null ? null : { name, target: String(t), version: Number(String(v)), updatedAt: Number(String(u)) };
    return refConflict(name, expect, actual, ADAPTER_NAME);
  }

  #pairs(r: readonly (Buffer | Reply)[]): Datum[] {
    const out: Datum[] = new Array(r.length >> 1);
    for (let k = 0, j = 0; k < r.length; k += 2, j++) {
      const id = (r[k] as Buffer).toString("utf8");
      out[j] = decodeDatum(id, r[k + 1] as Buffer, ADAPTER_NAME);
    }
    return out;
  }

  /** EVALSHA, loading the script again if the server forgot it (restart, SCRIPT FLUSH). */
  async #eval<T>(script: Script, keys: readonly string[], args: readonly Arg[], op: string, subject: string): Promise<T> {
    return this.#send<T>(script, ["EVALSHA", script.sha, String(keys.length), ...keys, ...args], op, subject);
  }

  async #send<T>(script: Script, argv: readonly Arg[], op: string, subject: string): Promise<T> {
    try {
      return await (this.#client as RedisClient).sendCommand<T>(argv, this.#buffers);
    } catch (error) {
      return this.#reload<T>(error, script, argv, op, subject);
    }
  }

  /** After a failed call of `script`: on `NOSCRIPT`, loads it again and calls once more; else the error, wrapped. */
  async #reload<T>(error: unknown, script: Script, argv: readonly Arg[], op: string, subject: string): Promise<T> {
    if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw this.#wrap(error, op, subject);
    const client = this.#client as RedisClient;
    try {
      await client.sendCommand(["SCRIPT", "LOAD", script.source]);
      return await client.sendCommand<T>(argv, this.#buffers);
    } catch (error) {
      throw this.#wrap(error, op, subject);
    }
  }

  #wrap(error: unknown, op: string, subject: string) {
    return wrapRedisError(error, ADAPTER_NAME, `${op} ${JSON.stringify(subject)} in ${this.prefix}`, this.#secrets);
  }
}

/**
 * How far the server's clock runs ahead of ours (ms, 0 when it does not), read with `TIME`
 * against the midpoint of the round trip, rounded up to whole milliseconds plus the round trip.
 */
async function serverLead(client: RedisClient): Promise<number> {
  const t0 = Date.now();
  const [sec, usec] = await client.sendCommand<[string, string]>(["TIME"]);
  const t1 = Date.now();
  const lead = Number(sec) * 1000 + Number(usec) / 1000 - (t0 + t1) / 2;
  return Math.max(0, Math.ceil(lead + (t1 - t0)));
}

/** Drops a client's connection; one that already closed itself (a failed connect) throws, which is moot. */
function destroy(client: RedisClient): void {
  try {
    client.destroy();
  } catch {
    // already closed
  }
}

/** An expectation as two script arguments: kind ('' none, 'v' version, 't' target, 'a' absent) and value. */
function expectation(expect: RefExpectation | undefined): [string, string] {
  if (expect === undefined) return ["", ""];
  if ("version" in expect) return ["v", String(expect.version)];
  if ("target" in expect) return ["t", expect.target];
  return ["a", ""];
}
