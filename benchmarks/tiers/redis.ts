/**
 * The Redis tier, in the tiers part (the five operations) and the concurrency section (also
 * `benchmarks/redis.mjs`, which uses the same raw baseline): dgent's `redisAdapter` next to raw
 * node-redis doing the same work and the peers on the same server, Keyv (`@keyv/redis`) and
 * unstorage (its redis driver).
 */
import { randomBytes } from "node:crypto";
import type { Datum } from "../../core/datum.js";
import { redisAdapter } from "../../adapters/redis/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, mustRun, keyvRedis, unstorageRedis, type PeerResult } from "../peers.js";
import type { RedisServerHandle } from "../servers.js";
import { dgentContender } from "./dgent.js";

/** The part of a node-redis client the raw baseline uses. */
export interface RedisCommands {
  sendCommand(args: Array<string | Buffer>, options?: unknown): Promise<unknown>;
}

/**
 * The tier's put by hand: one Lua script that checks the id is free, then HSET (content,
 * createdAt, parent, metadata) + ZADD to the time index and the id index.
 */
export const RAW_PUT_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'c', ARGV[1], 't', ARGV[2], 'p', ARGV[3], 'm', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('ZADD', KEYS[3], 0, ARGV[5])
return 1`;

/**
 * The chain by hand: one script that follows the `p` field from `ARGV[1]` up to `ARGV[2]` steps
 * and returns each datum's id and hash, newest first (dgent's causalChain is one script too).
 */
export const RAW_CHAIN_SCRIPT = `
local out = {}
local id = ARGV[1]
local depth = 0
while id ~= '' and depth < tonumber(ARGV[2]) do
  local h = redis.call('HGETALL', KEYS[1] .. id)
  if #h == 0 then break end
  out[#out + 1] = id
  out[#out + 1] = h
  local p = ''
  for k = 1, #h, 2 do if h[k] == 'p' then p = h[k + 1] end end
  id = p
  depth = depth + 1
end
return out`;

/** RESP blob strings as Buffers, as dgent reads them. */
const BUFFERS = { typeMapping: { [0x24]: Buffer } };

/**
 * The raw baseline on a connected client, its keys under `prefix` (`<prefix>:d:<id>`, the time
 * index `<prefix>:t`, the id index `<prefix>:i`): put = the script above (EVALSHA), get = HGETALL,
 * list(100) = ZRANGE … REV LIMIT 0 100 then 100 HGETALL pipelined.
 */
export async function rawRedis(
  client: RedisCommands,
  prefix: string,
): Promise<{ put(d: Datum): Promise<unknown>; putMany(ds: readonly Datum[]): Promise<unknown>; get(id: string): Promise<Datum>; list(limit: number): Promise<Datum[]>; chain(id: string): Promise<Datum[]> }> {
  const sha = (await client.sendCommand(["SCRIPT", "LOAD", RAW_PUT_SCRIPT])) as string;
  const chainSha = (await client.sendCommand(["SCRIPT", "LOAD", RAW_CHAIN_SCRIPT])) as string;
  const toDatum = (id: string, h: Buffer[]): Datum => {
    const m: Record<string, Buffer> = {};
    for (let k = 0; k < h.length; k += 2) m[(h[k] as Buffer).toString()] = h[k + 1] as Buffer;
    const p = m.p as Buffer;
    return { id, content: m.c as Buffer, createdAt: Number((m.t as Buffer).toString()), causalParent: p.length ? p.toString() : null, metadata: JSON.parse((m.m as Buffer).toString()) as Record<string, string> };
  };
  const get = async (id: string) => toDatum(id, (await client.sendCommand(["HGETALL", `${prefix}:d:${id}`], BUFFERS)) as Buffer[]);
  const put = (d: Datum) =>
    client.sendCommand(["EVALSHA", sha, "3", `${prefix}:d:${d.id}`, `${prefix}:t`, `${prefix}:i`, Buffer.from(d.content), String(d.createdAt), d.causalParent ?? "", JSON.stringify(d.metadata), d.id]);
  return {
    put,
    // One script call per datum, sent together: the client pipelines them on its connection.
    putMany: (ds) => Promise.all(ds.map(put)),
    get,
    chain: async (id) => {
      const flat = (await client.sendCommand(["EVALSHA", chainSha, "1", `${prefix}:d:`, id, "10000"], BUFFERS)) as Array<Buffer | Buffer[]>;
      const out: Datum[] = [];
      for (let k = 0; k < flat.length; k += 2) out.push(toDatum((flat[k] as Buffer).toString(), flat[k + 1] as Buffer[]));
      return out.reverse();
    },
    list: async (limit) => {
      const ids = (await client.sendCommand(["ZRANGE", `${prefix}:t`, "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", String(limit)])) as string[];
      return Promise.all(ids.map((id) => get(id)));
    },
  };
}

async function rawRedisContender(url: string, prefix: string): Promise<Contender> {
  const { createClient } = (await import("@redis/client")) as unknown as { createClient(options: Record<string, unknown>): RedisCommands & { connect(): Promise<unknown>; close?(): Promise<void>; quit?(): Promise<void>; on(e: string, f: () => void): unknown } };
  const client = createClient({ url, RESP: 2 });
  client.on("error", () => undefined);
  await client.connect();
  const raw = await rawRedis(client, prefix);
  return {
    name: "raw node-redis",
    kind: "raw",
    description:
      "@redis/client (the client the tier loads), one connection: put = one Lua script (id free? HSET + two ZADD), putMany = that script per datum, pipelined; get = HGETALL; list = ZRANGE REV then HGETALLs pipelined; chain = one Lua script following the parents",
    ...raw,
    prefill: async (ds) => {
      for (let i = 0; i < ds.length; i += 100) await raw.putMany(ds.slice(i, i + 100));
    },
    close: async () => void (await (client.close ?? client.quit)?.call(client)),
  };
}

const names = (tag: string) => ({ dgent: `bench-dgent-${tag}`, raw: `bench-raw-${tag}`, keyv: `bench-keyv-${tag}`, unstorage: `bench-unstorage-${tag}` });
const dgentRedis = (url: string, tag: string) => dgentContender(redisAdapter({ url, namespace: names(tag).dgent }), "createStore({ tiers: [redisAdapter({ url, namespace })] }) (change events on)");

/** One contender of a Redis tier made earlier (with `tag`), opened by another process. */
export async function redisContenderFor(name: string, url: string, tag: string): Promise<Contender> {
  if (name === "dgent") return dgentRedis(url, tag);
  if (name === "raw node-redis") return rawRedisContender(url, names(tag).raw);
  return mustRun(name.startsWith("keyv") ? await keyvRedis(url, names(tag).keyv) : await unstorageRedis(url, names(tag).unstorage));
}

/** The Redis tier on `redis()`'s server (`sharedRedis` in servers.ts), each contender under keys of its own. */
export async function redisTier(redis: () => Promise<RedisServerHandle>, withPeers: boolean): Promise<TierSetup & { tag: string; url: string }> {
  const server = await redis();
  const tag = randomBytes(4).toString("hex");
  try {
    const contenders: Contender[] = [dgentRedis(server.url, tag), await rawRedisContender(server.url, names(tag).raw)];
    const skipped: { name: string; reason: string }[] = [];
    const peers: PeerResult[] = withPeers ? [await keyvRedis(server.url, names(tag).keyv), await unstorageRedis(server.url, names(tag).unstorage)] : [];
    for (const p of peers) {
      if (isSkipped(p)) skipped.push({ name: p.name, reason: p.skipped });
      else contenders.push(p);
    }
    return { tier: "redis", tag, url: server.url, label: `redis (${server.origin})`, contenders, ...(skipped.length ? { skipped } : {}), dispose: () => server.close() };
  } catch (error) {
    await server.close();
    throw error;
  }
}
