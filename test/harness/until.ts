/**
 * The suite's one poll: waits until `predicate` holds, checking every `intervalMs`, and fails
 * naming `what` once `timeoutMs` has passed. The deadline is a guard against a hang, never a claim
 * about speed (speed is the benchmark's business), so it is far longer than any loaded machine
 * needs; a test that polls must give itself a Vitest timeout longer still.
 */
export const POLL_DEADLINE_MS = 120_000;

export async function until(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = POLL_DEADLINE_MS,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
