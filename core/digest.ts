import { createHash, type Hash } from "node:crypto";
import type { Datum } from "./datum.js";

/**
 * The content digest of a datum: SHA-256 (hex) over a canonical encoding of every field — the id,
 * `createdAt`, the causal parent, the metadata sorted by key, then the content bytes. Two tiers
 * hold the same datum exactly when their digests agree, whatever their storage format; the
 * scrub (`dgent verify`) and backups compare tiers and archives by it.
 */
export function datumDigest(d: Datum): string {
  return updateDigest(createHash("sha256"), d).digest("hex");
}

/** Feeds the canonical encoding of `d` to `hash` (to digest many datums in one pass). */
export function updateDigest(hash: Hash, d: Datum): Hash {
  const keys = Object.keys(d.metadata).sort();
  const head = JSON.stringify([d.id, d.createdAt, d.causalParent, keys.map((k) => [k, d.metadata[k]])]);
  const len = Buffer.allocUnsafe(8);
  len.writeBigUInt64BE(BigInt(d.content.byteLength));
  return hash.update(head, "utf8").update("\n").update(len).update(d.content);
}
