import { setTimeout as sleep } from "node:timers/promises";
import { isDgentError } from "../../core/errors.js";

export interface RetryPolicy {
  /** Tries in all, the first included (1 = no retry). */
  readonly maxAttempts: number;
  /** First backoff ceiling; doubles per attempt ("full jitter": a random wait up to the ceiling). */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Runs `fn`, retrying with exponential backoff and full jitter only while it throws a retryable
 * `DgentError` (`DGENT_UNAVAILABLE`: throttling, 5xx, network). Anything else, and the last
 * failure, is thrown as is. `onRetry` sees each failure that is retried.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  fn: () => Promise<T>,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= policy.maxAttempts || !isDgentError(error) || !error.retryable) throw error;
      onRetry?.(error, attempt);
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
}
