import { createHmac, createSecretKey, hkdfSync, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dgentError, wrapError } from "../../core/errors.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "encryption";

/** The active key and every key that may still be needed to read: key ids → 32-byte keys. */
export interface Keyring {
  /** The key id new datums are sealed with; must be in `keys`. */
  readonly active: string;
  /** 32 raw bytes, or their base64 (or hex, 64 characters). */
  readonly keys: Readonly<Record<string, Uint8Array | string>>;
}

/** A function that returns the keyring (e.g. from a KMS or a secrets manager); called once per store open. */
export type KeyProvider = () => Keyring | Promise<Keyring>;

/** Key ids: short, printable, no separator characters (they are recorded in each datum). */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A key ready to use: the AES key and the key of the synthetic nonce, both derived from the
 * secret. The AES key is a KeyObject (`createCipheriv` then skips importing raw key bytes on every
 * call); the nonce key stays raw bytes, which `createHmac` takes faster than a KeyObject
 * (measured: about 7.8 against 11 µs per 1 KiB HMAC on Node 20).
 */
export interface DerivedKey {
  readonly id: string;
  readonly aes: KeyObject;
  readonly nonceRaw: Buffer;
}

export interface LoadedKeyring {
  readonly active: DerivedKey;
  readonly byId: ReadonlyMap<string, DerivedKey>;
}

function derive(id: string, secret: Buffer): DerivedKey {
  const part = (info: string) => Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), `dgent-encryption/1 ${info}`, 32));
  return { id, aes: createSecretKey(part("aes-256-gcm")), nonceRaw: part("nonce") };
}

function decodeSecret(id: string, value: Uint8Array | string): Buffer {
  let bytes: Buffer;
  if (typeof value === "string") {
    const v = value.trim();
    bytes = /^[0-9a-fA-F]{64}$/.test(v) ? Buffer.from(v, "hex") : Buffer.from(v, "base64");
  } else {
    bytes = Buffer.from(value);
  }
  if (bytes.byteLength !== 32) {
    throw dgentError("DGENT_INVALID_OPTIONS", `encryption key ${JSON.stringify(id)} must be 32 bytes (base64 or 64 hex digits), got ${bytes.byteLength}`, {
      unit: PLUGIN_NAME,
    });
  }
  return bytes;
}

/** Validates a keyring and derives its keys. The secrets themselves never appear in an error. */
export function loadKeyring(ring: Keyring, source: string): LoadedKeyring {
  if (ring === null || typeof ring !== "object" || typeof ring.active !== "string" || ring.keys === null || typeof ring.keys !== "object") {
    throw dgentError("DGENT_INVALID_OPTIONS", `the keyring from ${source} must be { active, keys }`, { unit: PLUGIN_NAME });
  }
  const byId = new Map<string, DerivedKey>();
  for (const [id, value] of Object.entries(ring.keys)) {
    if (!KEY_ID.test(id)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `key id ${JSON.stringify(id)} from ${source} must match ${KEY_ID.source}`, { unit: PLUGIN_NAME });
    }
    byId.set(id, derive(id, decodeSecret(id, value)));
  }
  const active = byId.get(ring.active);
  if (active === undefined) {
    throw dgentError("DGENT_KEY_MISSING", `the active key id ${JSON.stringify(ring.active)} from ${source} is not among its keys`, {
      unit: PLUGIN_NAME,
      details: { keyId: ring.active },
    });
  }
  return { active, byId };
}

/**
 * `DGENT_ENCRYPTION_KEY=<id>:<key>` is the active key; `DGENT_ENCRYPTION_KEYS=<id>:<key>,<id>:<key>`
 * are older keys still needed to read. A bare `<key>` without an id gets the id `default`.
 */
export function keyringFromEnv(env: NodeJS.ProcessEnv): Keyring | null {
  const active = env.DGENT_ENCRYPTION_KEY;
  if (active === undefined || active.trim() === "") return null;
  const keys: Record<string, string> = {};
  const pair = (text: string): [string, string] => {
    const at = text.indexOf(":");
    return at < 0 ? ["default", text.trim()] : [text.slice(0, at).trim(), text.slice(at + 1).trim()];
  };
  for (const item of (env.DGENT_ENCRYPTION_KEYS ?? "").split(",")) {
    if (item.trim() === "") continue;
    const [id, key] = pair(item);
    keys[id] = key;
  }
  const [id, key] = pair(active);
  keys[id] = key;
  return { active: id, keys };
}

/** A key file: JSON `{ "active": "k2", "keys": { "k1": "<base64>", "k2": "<base64>" } }`. */
export async function keyringFromFile(path: string): Promise<Keyring> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw wrapError(error, "DGENT_KEY_MISSING", `cannot read the encryption key file ${path}`, { unit: PLUGIN_NAME, details: { path } });
  }
  try {
    return JSON.parse(text) as Keyring;
  } catch {
    throw dgentError("DGENT_INVALID_OPTIONS", `the encryption key file ${path} is not JSON { active, keys }`, { unit: PLUGIN_NAME, details: { path } });
  }
}

/** A fingerprint of a key that is safe to print: the first 8 hex digits of an HMAC under it. */
export function fingerprint(key: DerivedKey): string {
  return createHmac("sha256", key.aes).update("dgent-encryption/1 fingerprint").digest("hex").slice(0, 8);
}
