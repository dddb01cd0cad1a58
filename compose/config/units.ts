/** Durations and sizes as a config file may write them (the schema has already checked the shape). */

const MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const BYTES: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  kib: 2 ** 10,
  mb: 1e6,
  mib: 2 ** 20,
  gb: 1e9,
  gib: 2 ** 30,
  tb: 1e12,
  tib: 2 ** 40,
};

/** `250`, `"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"` → milliseconds. */
export function parseDuration(value: number | string): number {
  return scaled(value, MS, "ms");
}

/** `1024`, `"512kB"`, `"10MB"`, `"1GiB"` → bytes (kB = 1000, KiB = 1024). */
export function parseSize(value: number | string): number {
  return scaled(value, BYTES, "b");
}

function scaled(value: number | string, units: Readonly<Record<string, number>>, unit: string): number {
  if (typeof value === "number") return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  if (!m) throw new TypeError(`not a quantity: ${JSON.stringify(value)}`);
  const factor = units[(m[2] || unit).toLowerCase()];
  if (factor === undefined) throw new TypeError(`unknown unit in ${JSON.stringify(value)}`);
  return Math.round(Number(m[1]) * factor);
}
