/**
 * Expiry (EXPIRY.md): a datum may carry the reserved tag `dgent.expiresAt`, the epoch
 * millisecond (a decimal string) from which no read returns it. The tag travels with the datum
 * like any other, so every tier stores it and promotion carries it; the store hides expired
 * datums on tiers that do not (core/expiry-view.ts), and reclaims their space.
 */
import { dgentError } from "./errors.js";

/** The reserved metadata tag holding a datum's expiry: epoch milliseconds as a decimal string. */
export const EXPIRES_AT = "dgent.expiresAt";

/** A clock in epoch milliseconds (`Date.now` unless a store is given another, e.g. in tests). */
export type Clock = () => number;

/** What `makeDatum` takes to set an expiry: one of the two. */
export interface ExpiryInput {
  /** Expires this many milliseconds after `createdAt`. */
  ttlMs?: number;
  /** Expires at this epoch millisecond (or `Date`). */
  expiresAt?: number | Date;
}

/**
 * The expiry of a datum, epoch ms, or `undefined` when it has none. A tag that is not a
 * non-negative integer is refused at `put` (`assertExpiryTag`), so every stored one parses.
 */
export function expiresAtOf(d: { readonly metadata: Readonly<Record<string, string>> }): number | undefined {
  const tag = d.metadata[EXPIRES_AT];
  return tag === undefined ? undefined : Number(tag);
}

/** True when `d` has expired at `now`: from its expiry on (inclusive), it is absent. */
export function isExpired(d: { readonly metadata: Readonly<Record<string, string>> }, now: number): boolean {
  const tag = d.metadata[EXPIRES_AT];
  return tag !== undefined && Number(tag) <= now;
}

const DIGITS = /^(0|[1-9][0-9]{0,15})$/;

/** Throws `DGENT_INVALID_METADATA` unless the datum's expiry tag (if any) is a safe integer of epoch ms. */
export function assertExpiryTag(metadata: Readonly<Record<string, string>>, id: string): void {
  const tag = metadata[EXPIRES_AT];
  if (tag === undefined) return;
  if (!DIGITS.test(tag) || !Number.isSafeInteger(Number(tag))) {
    throw dgentError(
      "DGENT_INVALID_METADATA",
      `metadata ${JSON.stringify(EXPIRES_AT)} of datum ${JSON.stringify(id)} must be epoch milliseconds as a decimal integer, got ${JSON.stringify(tag)}`,
      { details: { id, key: EXPIRES_AT } },
    );
  }
}

/** The expiry tag's value for `makeDatum`'s `ttlMs` / `expiresAt`, or `undefined` for neither. */
export function expiryTag(input: ExpiryInput, createdAt: number): string | undefined {
  const { ttlMs, expiresAt } = input;
  if (ttlMs !== undefined && expiresAt !== undefined) {
    throw dgentError("DGENT_INVALID_OPTIONS", "give a datum ttlMs or expiresAt, not both");
  }
  if (ttlMs !== undefined) {
    if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs < 0) {
      throw dgentError("DGENT_INVALID_OPTIONS", `ttlMs must be a finite, non-negative number of milliseconds, got ${String(ttlMs)}`);
    }
    return String(Math.ceil(createdAt + ttlMs));
  }
  if (expiresAt !== undefined) {
    const ms = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt;
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw dgentError("DGENT_INVALID_OPTIONS", `expiresAt must be a Date or a finite, non-negative number of epoch milliseconds, got ${String(expiresAt)}`);
    }
    return String(Math.ceil(ms));
  }
  return undefined;
}

/** `datum` with an expiry `ttlMs` from `now` (a new object; the original is left as it was). */
export function withTtl<D extends { readonly metadata: Readonly<Record<string, string>> }>(datum: D, ttlMs: number, now: number = Date.now()): D {
  return { ...datum, metadata: { ...datum.metadata, [EXPIRES_AT]: expiryTag({ ttlMs }, now) as string } };
}
