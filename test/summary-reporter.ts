import type { Reporter } from "vitest/reporters";

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

/**
 * Ends the run with one plain line, `Tests: N passed, N failed, N skipped`, which any CI log
 * reader understands (Vitest's own summary is decorated for terminals).
 */
export default class SummaryReporter implements Reporter {
  onFinished(files: readonly TaskLike[] = [], errors: readonly unknown[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (task: TaskLike): void => {
      if (task.type === "test") {
        const state = task.result?.state;
        if (state === "pass") passed++;
        else if (state === "fail") failed++;
        else if (task.mode === "skip" || task.mode === "todo" || state === "skip") skipped++;
        else failed++; // never ran although it should have
      }
      for (const child of task.tasks ?? []) walk(child);
    };
    for (const file of files) {
      if (file.result?.state === "fail" && !(file.tasks ?? []).length) failed++; // a file that failed to load
      walk(file);
    }
    failed += errors.length;
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
