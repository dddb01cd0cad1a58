import type { Datum } from "./datum.js";
import { dgentError } from "./errors.js";
import type { Adapter } from "./protocol.js";

export { compareIds, compareNewestFirst } from "./order.js";

/** A tier's `scan`, or a fallback that pages through `list` by creation time. */
export async function* scanTier(tier: Adapter): AsyncIterable<Datum> {
  if (tier.scan) {
    yield* tier.scan();
    return;
  }
  // Fallback: everything in one list call at the largest limit; adapters that can hold more
  // than that must implement scan (the conformance kit checks scan where declared).
  yield* await tier.list({ prefix: "", after: -1, limit: Number.MAX_SAFE_INTEGER });
}

export function conflict(id: string, unit: string) {
  return dgentError(
    "DGENT_CONFLICT",
    `datum ${JSON.stringify(id)} already exists with different content, parent or metadata; datums are immutable`,
    { unit, details: { id } },
  );
}
