import { nodeCrypto } from "./lazy.js";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const POOL_SIZE = 16 * 256;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let counter = 0;

function random10(): Uint8Array {
  if (poolOffset + 10 > POOL_SIZE) {
    nodeCrypto().randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return out;
}

/**
 * A UUIDv7 (RFC 9562) whose string form sorts by creation time, also within one millisecond in
 * one process: the 12-bit `rand_a` field is a counter seeded randomly each millisecond (method 1
 * of the RFC); on overflow the timestamp is advanced by one millisecond rather than going back.
 */
export function uuidv7(now: number = Date.now()): string {
  const r = random10();
  if (now > lastMs) {
    lastMs = now;
    counter = ((r[0] as number) << 4) | ((r[1] as number) >> 4); // 12 random bits
    counter &= 0x7ff; // leave headroom for increments
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const b = new Uint8Array(16);
  b[0] = Math.floor(ms / 2 ** 40) & 0xff;
  b[1] = Math.floor(ms / 2 ** 32) & 0xff;
  b[2] = (ms >>> 24) & 0xff;
  b[3] = (ms >>> 16) & 0xff;
  b[4] = (ms >>> 8) & 0xff;
  b[5] = ms & 0xff;
  b[6] = 0x70 | ((counter >> 8) & 0x0f);
  b[7] = counter & 0xff;
  b[8] = 0x80 | ((r[2] as number) & 0x3f);
  for (let i = 9; i < 16; i++) b[i] = r[i - 6] as number;
  let s = "";
  for (let i = 0; i < 16; i++) {
    s += HEX[b[i] as number];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += "-";
  }
  return s;
}

/** The creation time (epoch ms) encoded in a UUIDv7, or null when `id` is not one. */
export function uuidv7Time(id: string): number | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)) return null;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
