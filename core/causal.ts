import type { Datum } from "./datum.js";
import { dgentError } from "./errors.js";

/**
 * The default `causalChain`: walks parents with `get`, then returns oldest first ending with the
 * datum itself. A missing id gives `[]`; a missing ancestor ends the chain there; a repeated id
 * throws `DGENT_CAUSAL_CYCLE`; more than `maxDepth` datums throws `DGENT_CAUSAL_DEPTH`.
 */
export async function walkCausalChain(
  id: string,
  get: (id: string) => Promise<Datum | null>,
  maxDepth: number,
  unit = "core",
): Promise<Datum[]> {
  const chain: Datum[] = [];
  const seen = new Set<string>();
  let next: string | null = id;
  while (next !== null) {
    if (seen.has(next)) throw cycleError(id, next, unit);
    seen.add(next);
    const datum = await get(next);
    if (datum === null) break;
    if (chain.length >= maxDepth) throw depthError(id, maxDepth, unit);
    chain.push(datum);
    next = datum.causalParent;
  }
  return chain.reverse();
}

/**
 * `walkCausalChain` for a `get` that answers synchronously (an in-memory index): the same
 * results and errors, without a promise per ancestor. The loop is written out twice on purpose:
 * one generator driving both walks costs ~30 % of a memory-tier chain. test/core.test.ts checks
 * that the two agree.
 */
export function walkCausalChainSync(id: string, get: (id: string) => Datum | null, maxDepth: number, unit = "core"): Datum[] {
  const chain: Datum[] = [];
  const seen = new Set<string>();
  let next: string | null = id;
  while (next !== null) {
    if (seen.has(next)) throw cycleError(id, next, unit);
    seen.add(next);
    const datum = get(next);
    if (datum === null) break;
    if (chain.length >= maxDepth) throw depthError(id, maxDepth, unit);
    chain.push(datum);
    next = datum.causalParent;
  }
  return chain.reverse();
}

export function cycleError(id: string, repeated: string, unit = "core") {
  return dgentError(
    "DGENT_CAUSAL_CYCLE",
    `the causal chain of ${JSON.stringify(id)} loops: ${JSON.stringify(repeated)} is its own ancestor`,
    { unit, details: { id, repeated } },
  );
}

export function depthError(id: string, maxDepth: number, unit = "core") {
  return dgentError(
    "DGENT_CAUSAL_DEPTH",
    `the causal chain of ${JSON.stringify(id)} is deeper than the maximum of ${maxDepth}`,
    { unit, details: { id, maxDepth } },
  );
}
