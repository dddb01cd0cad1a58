import { cycleError } from "../../core/causal.js";

/**
 * The last `n` steps of a causal chain through a synchronous lookup: the datum and its `n − 1`
 * nearest ancestors, oldest first; `[]` when the datum is absent; a missing ancestor ends the
 * chain. Visits at most `n` datums, so a long chain costs no more than a short one and never meets
 * the depth limit; a cycle within those steps is `DGENT_CAUSAL_CYCLE`.
 */
export function chainTail<D extends { readonly causalParent: string | null }>(id: string, n: number, get: (id: string) => D | undefined, unit: string): D[] {
  const chain: D[] = [];
  const seen = new Set<string>();
  let next: string | null = id;
  while (next !== null && chain.length < n) {
    if (seen.has(next)) throw cycleError(id, next, unit);
    seen.add(next);
    const step = get(next);
    if (step === undefined) break;
    chain.push(step);
    next = step.causalParent;
  }
  return chain.reverse();
}
