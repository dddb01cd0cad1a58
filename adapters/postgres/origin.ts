import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * Who this process is in the change log (notify.ts): our own changes are not reported back to
 * us. Every pool session carries it as the setting `dgent.origin` (profiles.ts), which the tags
 * triggers write into the log rows (migration 10).
 */
export const ORIGIN = `${hostname()}/${process.pid}/${randomBytes(4).toString("hex")}`;

/** `value` as one word of libpq's `options` startup parameter (backslash and space escaped). */
export function optionWord(value: string): string {
  return value.replace(/[\\\s]/g, (c) => `\\${c}`);
}
