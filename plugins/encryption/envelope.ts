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
  /** `aadPrefix(namespace)`, made once per store (computed per call when absent). */
  readonly prefix?: string;
}

/**
 * The additional authenticated data: the UTF-8 of
 * `JSON.stringify(["dgent-encryption/1", namespace, id, causalParent, [[key, value], …sorted by key]])`.
 * Built as a string with the namespace's part made once per store (`aadPrefix`): byte for byte
 * what that `JSON.stringify` gives, so envelopes sealed before and after read alike.
 */
export function aadPrefix(namespace: string): string {
  return `["dgent-encryption/1",${JSON.stringify(namespace)},`;
}

/** What `JSON.stringify` escapes in a string: `"`, `\\`, controls, and (well-formed JSON.stringify) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** `JSON.stringify(s)` for a string, without the call when nothing needs escaping (ids, tag values). */
const quote = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);

function aad(prefix: string, d: Pick<Datum, "id" | "causalParent">, clear: Readonly<Record<string, string>>): Buffer {
  const keys = Object.keys(clear);
  if (keys.length > 1) keys.sort();
  let pairs = "";
  for (const k of keys) pairs += `${pairs === "" ? "" : ","}[${quote(k)},${quote(clear[k] as string)}]`;
  const parent = d.causalParent === null ? "null" : quote(d.causalParent);
  return Buffer.from(`${prefix}${quote(d.id)},${parent},[${pairs}]]`, "utf8");
}

// Random nonces are cut from a pool filled 4 KiB at a time (one call to the CSPRNG per 341
// nonces, not one per seal); each slice is used once.
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomNonce(): Buffer {
  if (poolAt + NONCE > pool.byteLength) {
    pool = randomBytes(NONCE * 341);
    poolAt = 0;
  }
  poolAt += NONCE;
  return pool.subarray(poolAt - NONCE, poolAt);
}

/** `o[k] = v`, except that an own "__proto__" key stays a key (assignment would set the prototype). */
function setKey(o: Record<string, string>, k: string, v: string): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** True when `d` is stored encrypted (it carries a key id). */
export function isSealed(d: Datum): boolean {
  return d.metadata[KEY_ID_KEY] !== undefined;
}

/** Encrypts a datum with `key`: what the tiers store. */
export function seal(d: Datum, key: DerivedKey, ctx: SealContext): Datum {
  const clear: Record<string, string> = {};
  let hidden: Record<string, string> | null = null;
  for (const k of Object.keys(d.metadata)) {
    const v = d.metadata[k] as string;
    if (ctx.queryable.has(k)) setKey(clear, k, v);
    else setKey((hidden ??= {}), k, v);
  }
  clear[KEY_ID_KEY] = key.id;
  const metaJson = hidden === null ? "" : JSON.stringify(hidden);
  const metaBytes = metaJson === "" ? 0 : Buffer.byteLength(metaJson, "utf8");
  // The plaintext in one buffer (u32 n ‖ metadata JSON ‖ content): one cipher call, one HMAC input.
  const plain = Buffer.allocUnsafe(4 + metaBytes + d.content.byteLength);
  plain.writeUInt32BE(metaBytes, 0);
  if (metaBytes) plain.write(metaJson, 4, "utf8");
  plain.set(d.content, 4 + metaBytes);
  const ad = aad(ctx.prefix ?? aadPrefix(ctx.namespace), d, clear);
  const nonce = ctx.nonce === "random" ? randomNonce() : createHmac("sha256", key.nonceRaw).update(ad).update(plain).digest();
  const cipher = createCipheriv("aes-256-gcm", key.aes, nonce.subarray(0, NONCE));
  cipher.setAAD(ad);
  const body = cipher.update(plain);
  cipher.final(); // GCM is a stream mode: nothing is held back
  const out = Buffer.allocUnsafe(HEAD + body.byteLength + TAG);
  out[0] = ENVELOPE_VERSION;
  nonce.copy(out, 1, 0, NONCE);
  body.copy(out, HEAD);
  cipher.getAuthTag().copy(out, HEAD + body.byteLength);
  return { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: clear, content: new Uint8Array(out.buffer, out.byteOffset, out.byteLength) };
}

function failure(d: Datum, keyId: string, why: string) {
  return dgentError("DGENT_DECRYPT_FAILED", `datum ${JSON.stringify(d.id)} does not decrypt with key ${JSON.stringify(keyId)}: ${why}`, {
    unit: PLUGIN_NAME,
    details: { id: d.id, keyId },
  });
}

/** Decrypts a stored datum; a datum without a key id is returned as it is (stored before encryption). */
export function open(d: Datum, ring: LoadedKeyring, namespace: string, prefix: string = aadPrefix(namespace)): Datum {
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
  if (body.byteLength < HEAD + 4 + TAG) throw failure(d, keyId, "too short to be an envelope");
  if (body[0] !== ENVELOPE_VERSION) throw failure(d, keyId, `unknown envelope version ${body[0]}`);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key.aes, body.subarray(1, HEAD));
    decipher.setAAD(aad(prefix, d, d.metadata));
    decipher.setAuthTag(body.subarray(body.byteLength - TAG));
    plain = decipher.update(body.subarray(HEAD, body.byteLength - TAG));
    decipher.final(); // verifies the tag; GCM holds nothing back
  } catch {
    throw failure(d, keyId, "the authentication tag does not match (the bytes, id, parent, namespace or clear metadata changed)");
  }
  const n = plain.readUInt32BE(0);
  const metadata: Record<string, string> = {};
  for (const k of Object.keys(d.metadata)) if (k !== KEY_ID_KEY) setKey(metadata, k, d.metadata[k] as string);
  if (n > 0) {
    const hidden = JSON.parse(plain.toString("utf8", 4, 4 + n)) as Record<string, string>;
    for (const k of Object.keys(hidden)) setKey(metadata, k, hidden[k] as string);
  }
  const content = plain.subarray(4 + n);
  return { id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata, content: new Uint8Array(content.buffer, content.byteOffset, content.byteLength) };
}
