/**
 * The value of one sample in Prometheus text: `name` with exactly `labels` (in any order), or
 * `undefined` when the text has no such sample. For checks and scripts that read one number.
 */
export function sampleValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const want = Object.keys(labels);
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1] as string, l[2] as string]));
    if (want.length === have.size && want.every((k) => have.get(k) === labels[k])) return Number(m[3]);
  }
  return undefined;
}
