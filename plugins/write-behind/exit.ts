/**
 * One `beforeExit` listener for every write buffer of the process. `beforeExit` fires when the
 * event loop is empty and the process is about to end by itself (not on `process.exit()`, a
 * signal or a crash); a flush started there keeps it alive until the flush ends, and then the
 * event fires again. Each buffer gets one attempt per exit, so a failing tier cannot loop forever.
 */
/** Starts a flush (null when there is nothing to flush); resolves true when everything was written. */
type Flusher = () => Promise<boolean> | null;

const flushers = new Map<Flusher, { tried: boolean }>();
let listening = false;

function beforeExit(): void {
  for (const [flusher, state] of flushers) {
    if (state.tried) continue;
    const running = flusher();
    if (running) {
      state.tried = true;
      // A flush that left datums behind (tiers down) is not retried at this exit: no endless loop.
      void running.then(
        (emptied) => (state.tried = !emptied),
        () => undefined,
      );
    }
  }
}

/** Registers a flush to run before a natural exit; returns the unregister. */
export function onExit(flusher: Flusher): () => void {
  flushers.set(flusher, { tried: false });
  if (!listening) {
    listening = true;
    process.on("beforeExit", beforeExit);
  }
  return () => {
    flushers.delete(flusher);
    if (flushers.size === 0 && listening) {
      listening = false;
      process.off("beforeExit", beforeExit);
    }
  };
}
