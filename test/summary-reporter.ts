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
    let failedSuites = 0;
    const walk = (task: TaskLike): void => {
      // A suite whose own hook failed (beforeAll, afterAll) fails the run even when its tests passed.
      if (task.type === "suite" && task.result?.state === "fail" && (task.tasks ?? []).length > 0 && (task.tasks ?? []).every((t) => t.result?.state !== "fail")) failedSuites++;
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
    const suites = failedSuites ? `, ${failedSuites} suite${failedSuites === 1 ? "" : "s"} failed in a hook` : "";
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped${suites}\n`);
  }
}
