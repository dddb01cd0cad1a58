/**
 * Access control for `dgent serve`: bearer tokens kept as SHA-256 hashes, compared in constant
 * time, each scoped to namespaces and rights; and a token-bucket rate limit per token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { dgentError, type DgentError } from "../core/errors.js";

/** What a request may do in a namespace: `admin` includes `write`, which includes `read`. */
export type Right = "read" | "write" | "admin";

const LEVEL: Readonly<Record<Right, number>> = { read: 1, write: 2, admin: 3 };

export interface TokenScope {
  /** A namespace, `"*"` for every one, or a prefix ending in `*` (`"team-a.*"`). */
  readonly namespace: string;
  readonly right: Right;
}

export interface TokenConfig {
  /** A label for logs and metrics (never the token). */
  readonly name: string;
  /** The token's SHA-256, hex (`hashToken(token)`; `dgent serve --hash-token`). The token itself is never stored. */
  readonly sha256: string;
  readonly scopes: readonly TokenScope[];
  /** After this instant (ISO 8601 or epoch ms) the token is refused like an unknown one. */
  readonly expires?: string | number;
}

export interface RateLimit {
  /** Requests per second each token may make on average. */
  readonly perSecond: number;
  /** How many it may make at once after a pause (the bucket's size); default `perSecond`. */
  readonly burst?: number;
}

/** `null` turns access control off (a loopback-only development server). */
export interface AuthOptions {
  readonly tokens: readonly TokenConfig[];
  readonly rateLimit?: RateLimit;
}

/** The SHA-256 of a token, hex: what a config holds instead of the token. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

interface Entry {
  readonly name: string;
  readonly hash: Buffer;
  readonly scopes: readonly TokenScope[];
  readonly expires: number;
}

/** Who made a request: the token's name and scopes (or everything, without access control). */
export interface Principal {
  readonly name: string;
  readonly scopes: readonly TokenScope[];
}

export const ANONYMOUS: Principal = Object.freeze({ name: "anonymous", scopes: Object.freeze([{ namespace: "*", right: "admin" as const }]) });

export class Authenticator {
  readonly #entries: readonly Entry[];
  readonly #now: () => number;

  constructor(options: AuthOptions, now: () => number = Date.now) {
    if (options === null || typeof options !== "object" || !Array.isArray(options.tokens)) {
      throw dgentError("DGENT_INVALID_OPTIONS", "auth must be { tokens: [{ name, sha256, scopes }] } or null", { unit: "server" });
    }
    this.#now = now;
    this.#entries = options.tokens.map((t, i) => {
      if (typeof t.name !== "string" || t.name === "") throw invalid(i, "name must be a non-empty string");
      if (typeof t.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(t.sha256)) throw invalid(i, "sha256 must be 64 lowercase hex digits (the SHA-256 of the token, never the token)");
      if (!Array.isArray(t.scopes) || t.scopes.length === 0) throw invalid(i, "scopes must be a non-empty array of { namespace, right }");
      for (const s of t.scopes) {
        if (typeof s?.namespace !== "string" || s.namespace === "" || !(s.right in LEVEL)) throw invalid(i, "each scope is { namespace, right: read | write | admin }");
      }
      const expires = t.expires === undefined ? Infinity : typeof t.expires === "number" ? t.expires : Date.parse(t.expires);
      if (Number.isNaN(expires)) throw invalid(i, "expires must be an ISO 8601 date or epoch milliseconds");
      return { name: t.name, hash: Buffer.from(t.sha256, "hex"), scopes: t.scopes, expires };
    });
  }

  /** The principal for an `Authorization` header value, or `DGENT_UNAUTHORIZED`. */
  authenticate(token: string | undefined): Principal {
    if (token === undefined || token === "") throw unauthorized();
    const presented = createHash("sha256").update(token, "utf8").digest();
    let found: Entry | null = null;
    // Every entry is compared, so the time taken does not say which one matched, or how early.
    for (const entry of this.#entries) {
      if (timingSafeEqual(presented, entry.hash) && found === null) found = entry;
    }
    if (found === null || found.expires <= this.#now()) throw unauthorized();
    return found;
  }
}

/** Throws `DGENT_FORBIDDEN` unless `principal` holds `right` (or more) on `namespace`. */
export function authorize(principal: Principal, namespace: string, right: Right): void {
  for (const s of principal.scopes) {
    const matches = s.namespace === "*" || s.namespace === namespace || (s.namespace.endsWith("*") && namespace.startsWith(s.namespace.slice(0, -1)));
    if (matches && LEVEL[s.right] >= LEVEL[right]) return;
  }
  throw dgentError("DGENT_FORBIDDEN", "this token may not do that here", { unit: "server" });
}

function unauthorized(): DgentError {
  return dgentError("DGENT_UNAUTHORIZED", "a valid bearer token is required", { unit: "server" });
}

function invalid(index: number, message: string): DgentError {
  return dgentError("DGENT_INVALID_OPTIONS", `auth.tokens[${index}]: ${message}`, { unit: "server" });
}

/** The bearer token of an `Authorization` header, or `undefined`. */
export function bearer(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

/** A token bucket per key (a token's name, or a client address without access control). */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limit: RateLimit, now: () => number = Date.now) {
    if (!(limit.perSecond > 0) || (limit.burst !== undefined && !(limit.burst >= 1))) {
      throw dgentError("DGENT_INVALID_OPTIONS", "rateLimit is { perSecond > 0, burst >= 1 }", { unit: "server" });
    }
    this.#rate = limit.perSecond;
    this.#burst = limit.burst ?? Math.max(1, limit.perSecond);
    this.#now = now;
  }

  /** Takes one request from `key`'s bucket, or throws `DGENT_RATE_LIMITED`. */
  take(key: string): void {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= 10_000) this.#buckets.clear();
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
    bucket.at = now;
    if (bucket.tokens < 1) {
      const retryAfterSeconds = Math.ceil((1 - bucket.tokens) / this.#rate);
      throw dgentError("DGENT_RATE_LIMITED", "too many requests for this token; slow down", { unit: "server", details: { retryAfterSeconds } });
    }
    bucket.tokens -= 1;
  }
}
