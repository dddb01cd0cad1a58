/** Helpers shared by the sqlite tier's own tests (not part of the published adapter). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeDatum, type Datum } from "../../core/datum.js";
import { isDgentError, type DgentError } from "../../core/errors.js";
import type { ErrorCode } from "../../core/error-codes.js";

/** A fresh temporary directory; `cleanup()` removes every one made. */
const made: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dgent-sqlite-"));
  made.push(dir);
  return dir;
}
export function cleanup(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function datum(
  id: string,
  extra: Partial<Omit<Datum, "id" | "content">> & { content?: Uint8Array | string } = {},
): Datum {
  return makeDatum({
    id,
    content: extra.content ?? `content of ${id}`,
    createdAt: extra.createdAt ?? 1_000,
    causalParent: extra.causalParent ?? null,
    metadata: { ...(extra.metadata ?? {}) },
  });
}

/** The coded error `fn` rejects (or throws) with; fails the test when it succeeds or is uncoded. */
export async function codeOf(fn: () => unknown): Promise<DgentError> {
  try {
    await fn();
  } catch (error) {
    if (isDgentError(error)) return error;
    throw new Error(`expected a DgentError, got ${String(error)}`, { cause: error });
  }
  throw new Error("expected a rejection, but the call succeeded");
}

export function codeIs(error: DgentError, code: ErrorCode): boolean {
  return error.code === code;
}
