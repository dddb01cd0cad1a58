/**
 * The recall benchmarks' data (bench.mjs, bench-1m.mjs, bench-ab.mjs, bench-params.mjs,
 * bench-quant.mjs, bench-sqlite-vec.mjs): the same vectors for the same seed in every script.
 */

/** mulberry32 + Box–Muller: standard normal draws, the same for the same seed. */
export function generator(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform() || 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/**
 * `n` vectors of `dims` dimensions in one matrix (row i at i × dims): Gaussian, or with
 * `clustered` around 100 Gaussian centres (the centres from seed 12345, spread 0.5 of a centre's scale).
 */
export function vectors(n, dims, seed, clustered) {
  const gauss = generator(seed);
  const centreGauss = generator(12345);
  const centres = clustered ? Array.from({ length: 100 }, () => Float32Array.from({ length: dims }, centreGauss)) : [];
  const m = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const c = clustered ? centres[Math.floor(gauss() * 1e6 + 1e9) % 100] : null;
    for (let j = 0; j < dims; j++) m[i * dims + j] = (c ? c[j] : 0) + (clustered ? 0.5 : 1) * gauss();
  }
  return m;
}

/** recall@k of `got` (ids per query) against `truth` (the exact ids per query). */
export function recallOf(got, truth, k) {
  let hit = 0;
  got.forEach((ids, i) => {
    const t = new Set(truth[i]);
    for (const id of ids.slice(0, k)) if (t.has(id)) hit++;
  });
  return hit / (got.length * k);
}
