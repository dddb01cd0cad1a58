import { createHash } from "node:crypto";

/**
 * The server-side Lua scripts of the Redis tier. Every operation that reads and then writes runs
 * as one script, so Redis executes it atomically with respect to every other client: the
 * append-only law, deletes, ref compare-and-set and transactions never interleave with another
 * process's. Scripts are loaded once (`SCRIPT LOAD`) and called by SHA-1 (`EVALSHA`); a server
 * that forgot them (restart, `SCRIPT FLUSH`) gets them again on the first `NOSCRIPT`.
 *
 * Calling convention: `KEYS` are the namespace's index keys (declared, so Redis and proxies know
 * which slot a call touches); `ARGV[1]` is the key prefix `dgent:{<namespace>}:`, from which the
 * per-datum and per-ref keys are made. The put script, the hot path, is the exception: made per
 * namespace (`putScript`), it declares the datum's key and has the rest written in. Every key of a namespace carries the same hash tag, so on
 * a cluster they all live in one slot and the scripts stay atomic there too.
 *
 * Key layout (README.md): `d:<id>` the datum (encoded by codec.ts), `t` sorted set id → createdAt
 * (newest-first listing), `i` sorted set id → 0 (lexicographic prefix ranges), `b` content bytes
 * counter, `r:<name>` ref hash (t target, v version, u updatedAt), `R` sorted set of ref names,
 * `l:<name>` reflog list (newest first, REFLOG_LIMIT entries), `s` scratch set (exists only inside
 * one script run), and the channel `changes`.
 */

/** How many removed datums' index entries one `stats()` reaps at most (the rest: the next call, reads, the sweeper). */
export const STATS_REAP = 10_000;

/**
 * Whether a change on `channel` would reach anyone outside this process: this process's change
 * listeners subscribe to `own` (`<channel>:<origin>`, never published on) in the same `SUBSCRIBE`
 * as `channel`, so `PUBSUB NUMSUB` counting more subscribers on `channel` than on `own` means a
 * listener elsewhere; a pattern subscription anywhere (`PUBSUB NUMPAT`, which cannot say whose)
 * counts as one too, and so does a server that refuses either question. Both are asked within the
 * script, so the answer holds when the script publishes. The listener of this process drops its
 * own changes anyway, so skipping them saves the server the message and this process a wakeup.
 */
const HEARD_ELSEWHERE = String.raw`
local function heard_elsewhere(channel, own)
  local n = redis.pcall('PUBSUB', 'NUMSUB', channel, own)
  return n.err ~= nil or n[2] > n[4] or redis.pcall('PUBSUB', 'NUMPAT') ~= 0
end
`;

/** Shared Lua helpers, prepended to every script. */
const PRELUDE = HEARD_ELSEWHERE + String.raw`
local P = ARGV[1]
local function body(v) return string.sub(v, (string.find(v, '\t', 1, true))) end
local function same(a, b) return a == b or body(a) == body(b) end
local function header_end(v) return (string.find(v, '\n', 1, true)) end
local function parent_of(v)
  local a = string.find(v, '\t', 1, true)
  local b = string.find(v, '\t', a + 1, true)
  if b == a + 1 then return nil end
  return string.sub(v, a + 1, b - 1)
end
-- Published only when someone outside this process listens (see heard_elsewhere); asked once per run.
local elsewhere
local function announce(channel, origin, op, id)
  if channel == '' then return end
  if elsewhere == nil then elsewhere = heard_elsewhere(channel, channel .. ':' .. origin) end
  if elsewhere then redis.call('PUBLISH', channel, op .. origin .. '\t' .. id) end
end
-- KEYS[1] = t, KEYS[2] = i, KEYS[3] = b. A datum whose key carries a deadline (PXAT, native
-- expiry) is also in x (id → deadline, ms) with its content bytes in e (id → bytes), so that when
-- Redis removes the key by itself, whoever meets its index entries takes them and its bytes off.
local X, E = P .. 'x', P .. 'e'
-- The index entries of an id whose datum key is gone (Redis removed it at its deadline): removed,
-- and its bytes taken off the count when they were recorded.
local function forget(id)
  local size = redis.call('HGET', E, id)
  if size then
    redis.call('DECRBY', KEYS[3], size)
    redis.call('HDEL', E, id)
    redis.call('ZREM', X, id)
  end
end
local function reap(id)
  if redis.call('ZREM', KEYS[1], id) == 0 then return end
  redis.call('ZREM', KEYS[2], id)
  forget(id)
end
-- Ids met with index entries but no datum key, reaped when the script has read what it needs.
local dead = {}
local function bury()
  for _, id in ipairs(dead) do reap(id) end
end
local function write_datum(id, value, created, deadline)
  local n = #value - header_end(value)
  if deadline ~= '' then
    redis.call('SET', P .. 'd:' .. id, value, 'PXAT', deadline)
  else
    redis.call('SET', P .. 'd:' .. id, value)
  end
  -- Already indexed although the key was absent: entries left by a datum Redis removed.
  if redis.call('ZADD', KEYS[1], created, id) == 0 then forget(id) end
  redis.call('ZADD', KEYS[2], 0, id)
  if deadline ~= '' then
    redis.call('ZADD', X, deadline, id)
    redis.call('HSET', E, id, n)
  end
  redis.call('INCRBY', KEYS[3], n)
end
local function remove_datum(id, value)
  redis.call('DEL', P .. 'd:' .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('DECRBY', KEYS[3], #value - header_end(value))
  if redis.call('HDEL', E, id) == 1 then redis.call('ZREM', X, id) end
end
local function mget_pairs(ids, out, limit)
  for s = 1, #ids, 500 do
    local keys = {}
    local e = math.min(s + 499, #ids)
    for k = s, e do keys[#keys + 1] = P .. 'd:' .. ids[k] end
    local vals = redis.call('MGET', unpack(keys))
    for k = s, e do
      local v = vals[k - s + 1]
      if not v then
        dead[#dead + 1] = ids[k]
      else
        out[#out + 1] = ids[k]
        out[#out + 1] = v
        if limit and #out >= 2 * limit then return true end
      end
    end
  end
  return false
end
-- refs: KEYS[1] = R (sorted set of names)
local function ref_of(name)
  local cur = redis.call('HMGET', P .. 'r:' .. name, 't', 'v', 'u')
  if not cur[1] then return false end
  return { t = cur[1], v = tonumber(cur[2]), u = cur[3] }
end
local function meets(cur, ek, ev)
  if ek == '' then return true end
  if ek == 'a' then return not cur end
  if not cur then return false end
  if ek == 'v' then return cur.v == tonumber(ev) end
  return cur.t == ev
end
local function log_move(name, from, to, version, at, by)
  local lk = P .. 'l:' .. name
  redis.call('LPUSH', lk, (from or '') .. '\t' .. (to or '') .. '\t' .. version .. '\t' .. at .. '\t' .. by)
  redis.call('LTRIM', lk, 0, 99)
end
local function ref_set(rkeys, name, target, version, at)
  redis.call('HSET', P .. 'r:' .. name, 't', target, 'v', version, 'u', at)
  redis.call('ZADD', rkeys, 0, name)
end
local function ref_del(rkeys, name)
  redis.call('DEL', P .. 'r:' .. name)
  redis.call('ZREM', rkeys, name)
end
local function conflict_reply(name, cur)
  if not cur then return { 'ref', name } end
  return { 'ref', name, cur.t, tostring(cur.v), cur.u }
end
`;

/**
 * ARGV: P, channel, origin, then (id, value, createdAt, deadline or '') per datum. Checks every datum against
 * what is stored and against earlier datums of the batch first; writes only if all pass.
 * Returns {1} or {-1, index (0-based)} of the first conflict. Batched, 500 datums a call: the keys
 * read with one `MGET`; the fresh datums written with one `MSET` (those with a deadline: a `SET …
 * PXAT` each), one `ZMSCORE t` finding ids whose key Redis removed (their leftovers forgotten
 * first), one `ZADD` each to `t` and `i`, one `INCRBY b` in all: a few calls per 500 datums
 * rather than five per datum.
 */
const PUT_MANY = String.raw`
local seen = {}
local fresh = {}
local n = (#ARGV - 3) / 4
local stored = {}
for s = 0, n - 1, 500 do
  local e = math.min(s + 499, n - 1)
  local keys = {}
  for j = s, e do keys[#keys + 1] = P .. 'd:' .. ARGV[4 + j * 4] end
  local vals = redis.call('MGET', unpack(keys))
  for j = s, e do stored[j] = vals[j - s + 1] end
end
for j = 0, n - 1 do
  local b = 4 + j * 4
  local id, value = ARGV[b], ARGV[b + 1]
  local prev = seen[id]
  if prev == nil then
    prev = stored[j]
    if not prev then fresh[#fresh + 1] = b end
  end
  if prev and not same(prev, value) then return { -1, j } end
  if not prev then seen[id] = value end
end
local total = 0
for s = 1, #fresh, 500 do
  local e = math.min(s + 499, #fresh)
  local ids, plain, tz, iz = {}, {}, {}, {}
  for k = s, e do ids[#ids + 1] = ARGV[fresh[k]] end
  -- Already indexed although the key was absent: entries left by a datum Redis removed.
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))
  for k = 1, #ids do
    if scores[k] then forget(ids[k]) end
  end
  for k = s, e do
    local b = fresh[k]
    local id, value, deadline = ARGV[b], ARGV[b + 1], ARGV[b + 3]
    local size = #value - header_end(value)
    total = total + size
    if deadline ~= '' then
      redis.call('SET', P .. 'd:' .. id, value, 'PXAT', deadline)
      redis.call('ZADD', X, deadline, id)
      redis.call('HSET', E, id, size)
    else
      plain[#plain + 1] = P .. 'd:' .. id
      plain[#plain + 1] = value
    end
    tz[#tz + 1] = ARGV[b + 2]
    tz[#tz + 1] = id
    iz[#iz + 1] = 0
    iz[#iz + 1] = id
  end
  if #plain > 0 then redis.call('MSET', unpack(plain)) end
  redis.call('ZADD', KEYS[1], unpack(tz))
  redis.call('ZADD', KEYS[2], unpack(iz))
end
if total ~= 0 then redis.call('INCRBY', KEYS[3], total) end
for _, b in ipairs(fresh) do announce(ARGV[2], ARGV[3], 'p', ARGV[b]) end
return { 1 }
`;

/**
 * ARGV: P, channel, origin, ids… Deletes them; returns the 0-based indexes of the ids that existed.
 * An id whose key Redis removed at its deadline did not exist; its index entries go.
 */
const DELETE = String.raw`
local existed = {}
for j = 4, #ARGV do
  local id = ARGV[j]
  local v = redis.call('GET', P .. 'd:' .. id)
  if v then
    remove_datum(id, v)
    announce(ARGV[2], ARGV[3], 'd', id)
    existed[#existed + 1] = j - 4
  else
    reap(id)
  end
end
return existed
`;

/**
 * ARGV: P, prefix, after, limit. Newest first (createdAt desc, then id desc: Redis orders equal
 * scores by bytes, which is code point order for UTF-8). Returns a flat list id, value, id, value…
 * Without a prefix: a reverse range of the time index. With one: the prefix's ids come from the
 * lexicographic index (ZLEXCOUNT tells how many); when they are few next to the namespace, they
 * are copied to the scratch set, given their createdAt by ZINTERSTORE with the time index, and
 * ranged there; when the prefix covers much of the namespace, the time index is walked newest
 * first and filtered, which finds `limit` matches sooner. Index entries whose datum Redis removed
 * are skipped, and reaped once the page is read (so the walk's offsets stay put meanwhile).
 */
const LIST = String.raw`
local function page()
local prefix, after, limit = ARGV[2], '(' .. ARGV[3], tonumber(ARGV[4])
local out = {}
if prefix == '' then
  local offset = 0
  while true do
    local ids = redis.call('ZRANGE', KEYS[1], '+inf', after, 'BYSCORE', 'REV', 'LIMIT', offset, limit)
    if mget_pairs(ids, out, limit) or #ids < limit then return out end
    offset = offset + #ids
  end
end
local lo, hi = '[' .. prefix, '(' .. prefix .. '\255'
local k = redis.call('ZLEXCOUNT', KEYS[2], lo, hi)
if k == 0 then return out end
local n = redis.call('ZCARD', KEYS[1])
if k <= 4 * limit or k * k <= 16 * limit * n then
  local scratch = P .. 's'
  redis.call('ZRANGESTORE', scratch, KEYS[2], lo, hi, 'BYLEX')
  redis.call('ZINTERSTORE', scratch, 2, scratch, KEYS[1], 'WEIGHTS', 0, 1)
  local ids = redis.call('ZRANGE', scratch, '+inf', after, 'BYSCORE', 'REV')
  redis.call('DEL', scratch)
  mget_pairs(ids, out, limit)
  return out
end
local offset, chunk, plen = 0, math.max(4 * limit, 256), #prefix
while true do
  local ids = redis.call('ZRANGE', KEYS[1], '+inf', after, 'BYSCORE', 'REV', 'LIMIT', offset, chunk)
  local hits = {}
  for _, id in ipairs(ids) do
    if string.sub(id, 1, plen) == prefix then hits[#hits + 1] = id end
  end
  if #hits > 0 and mget_pairs(hits, out, limit) then return out end
  if #ids < chunk then return out end
  offset = offset + #ids
end
end
local out = page()
bury()
return out
`;

/**
 * ARGV: P, id, maxDepth. Walks parents from the datum on the server: one round trip for a whole
 * chain. Returns {'ok', {id, value, …}} newest first, {'cycle', repeatedId} or {'deep'}.
 */
const CHAIN = String.raw`
local max = tonumber(ARGV[3])
local out, seen, count = {}, {}, 0
local cur = ARGV[2]
while cur do
  if seen[cur] then return { 'cycle', cur } end
  seen[cur] = true
  local v = redis.call('GET', P .. 'd:' .. cur)
  if not v then
    dead[1] = cur
    break
  end
  if count >= max then return { 'deep' } end
  count = count + 1
  out[#out + 1] = cur
  out[#out + 1] = v
  cur = parent_of(v)
end
bury()
return { 'ok', out }
`;

/** ARGV: P, after-id ('' for the start), count. One page of every datum by id: {lastId, {id, value, …}}. */
const SCAN = String.raw`
local from = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local ids = redis.call('ZRANGE', KEYS[2], from, '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
mget_pairs(ids, out, nil)
bury()
return { ids[#ids] or '', out }
`;

/** KEYS[1] = R. ARGV: P, name, target, expectKind ('' | 'v' | 't' | 'a'), expectValue, at, by. {1, version} or a conflict reply. */
const SET_REF = String.raw`
local name = ARGV[2]
local cur = ref_of(name)
if not meets(cur, ARGV[4], ARGV[5]) then return conflict_reply(name, cur) end
local version = cur and cur.v + 1 or 1
ref_set(KEYS[1], name, ARGV[3], version, ARGV[6])
log_move(name, cur and cur.t, ARGV[3], version, ARGV[6], ARGV[7])
return { 1, version }
`;

/** KEYS[1] = R. ARGV: P, name, expectKind, expectValue, at, by. {1, existed (0|1)} or a conflict reply. */
const DELETE_REF = String.raw`
local name = ARGV[2]
local cur = ref_of(name)
if not meets(cur, ARGV[3], ARGV[4]) then return conflict_reply(name, cur) end
if not cur then return { 1, 0 } end
ref_del(KEYS[1], name)
log_move(name, cur.t, nil, cur.v, ARGV[5], ARGV[6])
return { 1, 1 }
`;

/** KEYS[1] = R. ARGV: P, prefix. Refs by name: {name, target, version, updatedAt, …}. */
const LIST_REFS = String.raw`
local prefix = ARGV[2]
local names
if prefix == '' then
  names = redis.call('ZRANGE', KEYS[1], '-', '+', 'BYLEX')
else
  names = redis.call('ZRANGE', KEYS[1], '[' .. prefix, '(' .. prefix .. '\255', 'BYLEX')
end
local out = {}
for _, name in ipairs(names) do
  local cur = ref_of(name)
  if cur then
    out[#out + 1] = name
    out[#out + 1] = cur.t
    out[#out + 1] = tostring(cur.v)
    out[#out + 1] = cur.u
  end
end
return out
`;

/**
 * KEYS: t, i, b, R. ARGV: P, channel, origin, at, by, then the operations, each a kind followed
 * by its fields: 'p' id value createdAt deadline | 'd' id | 's' name target expectKind expectValue |
 * 'r' name expectKind expectValue. Everything is checked first against a view that earlier
 * operations update (the append-only law, ref expectations); only if all pass is anything
 * written. Returns {'ok', {per-operation result}} (put 1, delete existed, setRef version,
 * deleteRef existed), {'conflict', index} or {'ref:<index>', name, target, version, updatedAt}.
 */
const COMMIT = String.raw`
local at, by = ARGV[4], ARGV[5]
local dview, rview = {}, {}
local function datum_now(id)
  local v = dview[id]
  if v == nil then
    v = redis.call('GET', P .. 'd:' .. id)
    dview[id] = v
  end
  return v
end
local function ref_now(name)
  local r = rview[name]
  if r == nil then
    r = ref_of(name)
    rview[name] = r
  end
  return r
end
local function failed_at(index, reply)
  reply[1] = 'ref:' .. index
  return reply
end
local results = {}
local j, index = 6, 0
while j <= #ARGV do
  local kind = ARGV[j]
  if kind == 'p' then
    local prev = datum_now(ARGV[j + 1])
    if prev and not same(prev, ARGV[j + 2]) then return { 'conflict', index } end
    if not prev then dview[ARGV[j + 1]] = ARGV[j + 2] end
    results[#results + 1] = 1
    j = j + 5
  elseif kind == 'd' then
    results[#results + 1] = datum_now(ARGV[j + 1]) and 1 or 0
    dview[ARGV[j + 1]] = false
    j = j + 2
  elseif kind == 's' then
    local cur = ref_now(ARGV[j + 1])
    if not meets(cur, ARGV[j + 3], ARGV[j + 4]) then return failed_at(index, conflict_reply(ARGV[j + 1], cur)) end
    local version = cur and cur.v + 1 or 1
    rview[ARGV[j + 1]] = { t = ARGV[j + 2], v = version, u = at }
    results[#results + 1] = version
    j = j + 5
  else
    local cur = ref_now(ARGV[j + 1])
    if not meets(cur, ARGV[j + 2], ARGV[j + 3]) then return failed_at(index, conflict_reply(ARGV[j + 1], cur)) end
    rview[ARGV[j + 1]] = false
    results[#results + 1] = cur and 1 or 0
    j = j + 4
  end
  index = index + 1
end
j = 6
while j <= #ARGV do
  local kind = ARGV[j]
  if kind == 'p' then
    local id = ARGV[j + 1]
    if not redis.call('GET', P .. 'd:' .. id) then
      write_datum(id, ARGV[j + 2], ARGV[j + 3], ARGV[j + 4])
      announce(ARGV[2], ARGV[3], 'p', id)
    end
    j = j + 5
  elseif kind == 'd' then
    local id = ARGV[j + 1]
    local v = redis.call('GET', P .. 'd:' .. id)
    if v then
      remove_datum(id, v)
      announce(ARGV[2], ARGV[3], 'd', id)
    else
      reap(id)
    end
    j = j + 2
  elseif kind == 's' then
    local name = ARGV[j + 1]
    local cur = ref_of(name)
    local version = cur and cur.v + 1 or 1
    ref_set(KEYS[4], name, ARGV[j + 2], version, at)
    log_move(name, cur and cur.t, ARGV[j + 2], version, at, by)
    j = j + 5
  else
    local name = ARGV[j + 1]
    local cur = ref_of(name)
    if cur then
      ref_del(KEYS[4], name)
      log_move(name, cur.t, nil, cur.v, at, by)
    end
    j = j + 4
  end
end
return { 'ok', results }
`;

/**
 * KEYS: t, i, b, R. ARGV: P. The index entries of datums Redis removed at their deadline (due by
 * the server's clock) are reaped first, up to STATS_REAP of them, so the figures count what the
 * namespace holds: {datums, content bytes, refs}.
 */
const STATS = String.raw`
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local left = ${STATS_REAP}
while left > 0 do
  local due = redis.call('ZRANGE', X, '-inf', ms, 'BYSCORE', 'LIMIT', 0, math.min(left, 500))
  for _, id in ipairs(due) do
    if redis.call('EXISTS', P .. 'd:' .. id) == 0 then reap(id) end
    -- Whatever reap did, the entry leaves x (so the next range moves on).
    redis.call('ZREM', X, id)
    redis.call('HDEL', E, id)
  end
  if #due < 500 then break end
  left = left - #due
end
return { redis.call('ZCARD', KEYS[1]), redis.call('GET', KEYS[3]) or '0', redis.call('ZCARD', KEYS[4]) }
`;

export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, text: string, prelude = true): Script {
  // The ref helpers take the ref index as an argument: KEYS[1] in the ref scripts, KEYS[4] in COMMIT.
  const source = prelude ? PRELUDE + text : text;
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

export const SCRIPTS = Object.freeze({
  putMany: script("putMany", PUT_MANY),
  delete: script("delete", DELETE),
  list: script("list", LIST),
  chain: script("causalChain", CHAIN),
  scan: script("scan", SCAN),
  setRef: script("setRef", SET_REF),
  deleteRef: script("deleteRef", DELETE_REF),
  listRefs: script("listRefs", LIST_REFS),
  commit: script("commit", COMMIT),
  stats: script("stats", STATS),
});

export type ScriptName = keyof typeof SCRIPTS;

/** `text` as a Lua string literal: every byte outside a safe set written as a three-digit decimal escape (so a digit after it is not read as part of it). */
function luaString(text: string): string {
  let out = "'";
  for (const byte of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && /[A-Za-z0-9 ._:{}/-]/.test(c) ? c : `\\${String(byte).padStart(3, "0")}`;
  }
  return out + "'";
}

/**
 * The put script of one namespace, the hot path, with the namespace's key names, its channel
 * and this process's origin written into the script (SCRIPT LOAD once per adapter), so a call
 * carries only what changes: `EVALSHA <sha> 1 <P d:id> <value> [deadline]`. `KEYS[1]` is the
 * datum's key; the id is its tail and createdAt the value's first header field. What the key
 * holds decides: none → the datum is written (`SET … NX`, with `PXAT <deadline>` when one is
 * given: native expiry, README.md), the indexes and byte count updated, the put announced (when
 * `channel` is not empty; when `listening`, only if someone outside this process listens:
 * HEARD_ELSEWHERE), and 1; else the key is read: the same value → 0 (nothing written, nothing
 * announced), another → -1 (conflict, nothing written). A fresh id thus costs one call, not a
 * `GET` and a `SET` (`SET … NX GET` would fold both for every id, but needs Redis 7). An id
 * already in the time index although its key was absent is one whose datum Redis removed at its
 * deadline: its leftover bytes are taken off. Self-contained, without the prelude (a script
 * defines its local functions anew on every call).
 */
export function putScript(prefix: string, channel: string, origin: string, listening = false): Script {
  const x = luaString(prefix + "x");
  const e = luaString(prefix + "e");
  const b = luaString(prefix + "b");
  const source = (listening && channel !== "" ? HEARD_ELSEWHERE : "") + String.raw`
local key, value, at = KEYS[1], ARGV[1], ARGV[2]
local fresh
if at then fresh = redis.call('SET', key, value, 'NX', 'PXAT', at) else fresh = redis.call('SET', key, value, 'NX') end
if not fresh then
  local old = redis.call('GET', key)
  if old == value or string.sub(old, (string.find(old, '\t', 1, true))) == string.sub(value, (string.find(value, '\t', 1, true))) then return 0 end
  return -1
end
local id = string.sub(key, ${Buffer.byteLength(prefix) + 3})
local n = #value - string.find(value, '\n', 1, true)
if redis.call('ZADD', ${luaString(prefix + "t")}, string.sub(value, 1, string.find(value, '\t', 1, true) - 1), id) == 0 then
  local size = redis.call('HGET', ${e}, id)
  if size then
    redis.call('DECRBY', ${b}, size)
    redis.call('HDEL', ${e}, id)
    redis.call('ZREM', ${x}, id)
  end
end
redis.call('ZADD', ${luaString(prefix + "i")}, 0, id)
if at then
  redis.call('ZADD', ${x}, at, id)
  redis.call('HSET', ${e}, id, n)
end
redis.call('INCRBY', ${b}, n)
${announce(channel, origin, listening)}return 1
`;
  return { name: "put", source, sha: createHash("sha1").update(source).digest("hex") };
}

/** The put script's announcement: none without a channel; behind `heard_elsewhere` when this process listens on it (else its own listener is not there to skip). */
function announce(channel: string, origin: string, listening: boolean): string {
  if (channel === "") return "";
  const publish = `redis.call('PUBLISH', ${luaString(channel)}, ${luaString("p" + origin + "\t")} .. id)`;
  return listening ? `if heard_elsewhere(${luaString(channel)}, ${luaString(ownChannel(channel, origin))}) then ${publish} end\n` : `${publish}\n`;
}

/** The channel a listener of the process with `origin` subscribes to next to `channel`, so that scripts can tell its subscription from others' (never published on). */
export function ownChannel(channel: string, origin: string): string {
  return `${channel}:${origin}`;
}
