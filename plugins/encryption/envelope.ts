import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { PLUGIN_NAME, type DerivedKey, type LoadedKeyring } from "./keys.js";

/**
 * How an encrypted datum is stored (envelope version 1):
 *
 * - `id`, `createdAt`, `causalParent`: as the caller gave them (tiers order, list and chain by them).
 * - `metadata`: only the keys marked queryable, plus `dgent.encryption: <key id>`.
 * - `content`: `0x01` ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes), where the
 *   plaintext is `u32 n` ‖ the other metadata as JSON (n bytes) ‖ the content.
 * - the additional authenticated data binds the namespace, id, causal parent and the clear
 *   metadata (key id included): change any of them, or move the bytes to another id, and the
 *   tag no longer verifies.
 */
export const KEY_ID_KEY = "dgent.encryption";
export const ENVELOPE_VERSION = 1;
const NONCE = 12;
const TAG = 16;
const HEAD = 1 + NONCE;

export type NonceMode = "synthetic" | "random";

export interface SealContext {
  readonly namespace: string;
  /** Metadata keys left in the clear (queryable). */
  readonly queryable: ReadonlySet<string>;
  readonly nonce: NonceMode;
}

function aad(namespace: string, d: Pick<Datum, "id" | "causalParent">, clear: Readonly<Record<string, string>>): Buffer {
  const pairs = Object.keys(clear)
    .sort()
    .map((k) => [k, clear[k]]);
  return Buffer.from(JSON.stringify(["dgent-encryption/1", namespace, d.id, d.causalParent, pairs]), "utf8");
}

/** True when `d` is stored encrypted (it carries a key id). */
export function isSealed(d: Datum): boolean {
  return d.metadata[KEY_ID_KEY] !== undefined;
}

/** Encrypts a datum with `key`: what the tiers store. */
export function seal(d: Datum, key: DerivedKey, ctx: SealContext): Datum {
  // Pairs, then Object.fromEntries: an own "__proto__" key stays a key (assignment would not).
  const clearPairs: Array<[string, string]> = [];
  const hiddenPairs: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(d.metadata)) (ctx.queryable.has(k) ? clearPairs : hiddenPairs).push([k, v]);
  clearPairs.push([KEY_ID_KEY, key.id]);
  const clear = Object.fromEntries(clearPairs) as Record<string, string>;
  const meta = hiddenPairs.length === 0 ? Buffer.alloc(0) : Buffer.from(JSON.stringify(Object.fromEntries(hiddenPairs)), "utf8");
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(meta.byteLength, 0);
  const content = Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength);
  const ad = aad(ctx.namespace, d, clear);
  const nonce =
    ctx.nonce === "random"
      ? randomBytes(NONCE)
      : createHmac("sha256", key.nonce).update(ad).update(head).update(meta).update(content).digest().subarray(0, NONCE);
  const cipher = createCipheriv("aes-256-gcm", key.aes, nonce);
  cipher.setAAD(ad);
  const out = Buffer.allocUnsafe(HEAD + 4 + meta.byteLength + content.byteLength + TAG);
  out[0] = ENVELOPE_VERSION;
  nonce.copy(out, 1);
  let at = HEAD;
  at += cipher.update(head).copy(out, at);
  if (meta.byteLength) at += cipher.update(meta).copy(out, at);
  if (content.byteLength) at += cipher.update(content).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: clear, content: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
}

/** Decrypts a stored datum; a datum without a key id is returned as it is (stored before encryption). */
export function open(d: Datum, ring: LoadedKeyring, namespace: string): Datum {
  const keyId = d.metadata[KEY_ID_KEY];
  if (keyId === undefined) return d;
  const key = ring.byId.get(keyId);
  if (key === undefined) {
    throw dgentError("DGENT_KEY_MISSING", `datum ${JSON.stringify(d.id)} is sealed with key ${JSON.stringify(keyId)}, which the keyring does not hold`, {
      unit: PLUGIN_NAME,
      details: { id: d.id, keyId },
    });
  }
  const body = Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength);
  const fail = (why: string) =>
    dgentError("DGENT_DECRYPT_FAILED", `datum ${JSON.stringify(d.id)} does not decrypt with key ${JSON.stringify(keyId)}: ${why}`, {
      unit: PLUGIN_NAME,
      details: { id: d.id, keyId },
    });
  if (body.byteLength < HEAD + 4 + TAG) throw fail("too short to be an envelope");
  if (body[0] !== ENVELOPE_VERSION) throw fail(`unknown envelope version ${body[0]}`);
  const { [KEY_ID_KEY]: _, ...rest } = d.metadata;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.aes, body.subarray(1, HEAD));
    decipher.setAAD(aad(namespace, d, d.metadata));
    decipher.setAuthTag(body.subarray(body.byteLength - TAG));
    const a = decipher.update(body.subarray(HEAD, body.byteLength - TAG));
    const b = decipher.final();
    plain = b.byteLength ? Buffer.concat([a, b]) : a;
  } catch {
    throw fail("the authentication tag does not match (the bytes, id, parent, namespace or clear metadata changed)");
  }
  const n = plain.readUInt32BE(0);
  let metadata: Record<string, string> = rest;
  if (n > 0) {
    const hidden = JSON.parse(plain.toString("utf8", 4, 4 + n)) as Record<string, string>;
    metadata = Object.keys(rest).length ? { ...rest, ...hidden } : hidden;
  }
  const content = plain.subarray(4 + n);
  return { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata, content: new Uint8Array(content.buffer, content.byteOffset, content.byteLength) };
}
