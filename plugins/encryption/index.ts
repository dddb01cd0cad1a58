import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { definePlugin } from "../../core/registry.js";
import type { PluginUse } from "../../core/store.js";
import { aadPrefix, KEY_ID_KEY, open, seal, type NonceMode, type SealContext } from "./envelope.js";
import { fingerprint, keyringFromEnv, keyringFromFile, loadKeyring, PLUGIN_NAME, type KeyProvider, type Keyring, type LoadedKeyring } from "./keys.js";

export { PLUGIN_NAME, type Keyring, type KeyProvider } from "./keys.js";
export { KEY_ID_KEY, ENVELOPE_VERSION, type NonceMode } from "./envelope.js";

export interface EncryptionOptions {
  /** Metadata keys left in the clear so queries can filter on them; every other key is encrypted. */
  queryable?: string[];
  /** A JSON key file `{ "active": "k2", "keys": { "k1": "<base64>", "k2": "<base64>" } }`. */
  keyFile?: string;
  /** A function returning the keyring (code only, not a config file). Wins over `keyFile` and the environment. */
  keyProvider?: KeyProvider;
  /**
   * `"synthetic"` (default): the 96-bit nonce is an HMAC of the datum under a key derived from the
   * data key, so each distinct datum gets its own unpredictable nonce and re-putting an identical
   * datum stores identical bytes (the append-only law holds). `"random"`: 96 random bits per seal;
   * an identical re-put then fails with `DGENT_CONFLICT`.
   */
  nonce?: NonceMode;
  /** Where `DGENT_ENCRYPTION_KEY` / `DGENT_ENCRYPTION_KEYS` are read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

export interface EncryptionStats {
  readonly sealed: number;
  readonly opened: number;
  /** Datums read that were stored before encryption was enabled (passed through in the clear). */
  readonly plain: number;
}

/** What `store.plugin(encryption)` resolves to. */
export interface EncryptionHandle {
  stats(): EncryptionStats;
  /** The key id new datums are sealed with, and a fingerprint of it that is safe to print. */
  activeKey(): { readonly id: string; readonly fingerprint: string };
  /** The key ids the keyring holds. */
  keyIds(): string[];
  /** The key id a stored datum is sealed with, or `null` when it is stored in the clear. */
  keyOf(stored: Datum): string | null;
  /** Seals a caller's datum with the active key: what a tier stores. */
  seal(datum: Datum): Datum;
  /** Opens a stored datum (a clear one passes through); throws `DGENT_DECRYPT_FAILED` / `DGENT_KEY_MISSING`. */
  open(stored: Datum): Datum;
  /** `open` then `seal` with the active key: what `dgent rekey` writes in place of a stored datum. */
  reseal(stored: Datum): Datum;
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    queryable: { type: "array", items: { type: "string", minLength: 1 }, uniqueItems: true, default: [] },
    keyFile: { type: "string", minLength: 1 },
    keyProvider: { description: "() => Keyring | Promise<Keyring>", not: { type: ["string", "number", "boolean", "null", "array", "object"] } },
    nonce: { enum: ["synthetic", "random"], default: "synthetic" },
    env: { type: "object" },
  },
};

/**
 * The transform nearest the storage on both sides (core/HOOKS.md): seal after every other
 * `beforePut` transform (compression is +100), open before every other `read` tap (compression
 * is -100), so content is compressed before it is encrypted and decrypted before it is decompressed.
 */
export const PUT_STAGE = 150;
export const READ_STAGE = -150;

async function resolveKeyring(options: EncryptionOptions): Promise<LoadedKeyring> {
  if (options.keyProvider) {
    let ring: Keyring;
    try {
      ring = await options.keyProvider();
    } catch (error) {
      throw dgentError("DGENT_KEY_MISSING", `the encryption key provider failed: ${(error as Error).message}`, { unit: PLUGIN_NAME, cause: error });
    }
    return loadKeyring(ring, "the key provider");
  }
  if (options.keyFile !== undefined) return loadKeyring(await keyringFromFile(options.keyFile), options.keyFile);
  const fromEnv = keyringFromEnv(options.env ?? process.env);
  if (fromEnv === null) {
    throw dgentError("DGENT_KEY_MISSING", "the encryption plugin has no key: set DGENT_ENCRYPTION_KEY=<id>:<base64 of 32 bytes>, or give keyFile or keyProvider", {
      unit: PLUGIN_NAME,
    });
  }
  return loadKeyring(fromEnv, "DGENT_ENCRYPTION_KEY");
}

/**
 * AES-256-GCM at rest: content and non-queryable metadata are sealed on the way in and opened on
 * the way out, bound to the datum's id, parent, namespace and clear metadata.
 */
export const encryption = definePlugin<EncryptionOptions, EncryptionHandle>({
  name: PLUGIN_NAME,
  description: "AES-256-GCM at rest with key ids and rotation; metadata encrypted unless marked queryable.",
  optionsSchema: OPTIONS_SCHEMA,
  async apply(api, options) {
    const ring = await resolveKeyring(options);
    const queryable = new Set(options.queryable ?? []);
    if (queryable.has(KEY_ID_KEY)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(KEY_ID_KEY)} is the plugin's own key and cannot be listed as queryable`, { unit: PLUGIN_NAME });
    }
    const prefix = aadPrefix(api.namespace);
    const ctx: SealContext = { namespace: api.namespace, queryable, nonce: options.nonce ?? "synthetic", prefix };
    const counts = { sealed: 0, opened: 0, plain: 0 };

    api.hooks.beforePut.tap({ name: PLUGIN_NAME, stage: PUT_STAGE }, (datum) => {
      // Already sealed (copied from an encrypted store's scan, or a rekey): stored as it is.
      if (datum.metadata[KEY_ID_KEY] !== undefined) return datum;
      counts.sealed++;
      return seal(datum, ring.active, ctx);
    });
    api.hooks.read.tap({ name: PLUGIN_NAME, stage: READ_STAGE }, (datum) => {
      if (datum.metadata[KEY_ID_KEY] === undefined) {
        counts.plain++;
        return datum;
      }
      counts.opened++;
      return open(datum, ring, ctx.namespace, prefix);
    });

    const openStored = (stored: Datum) => open(stored, ring, ctx.namespace, prefix);
    return {
      stats: () => ({ ...counts }),
      activeKey: () => ({ id: ring.active.id, fingerprint: fingerprint(ring.active) }),
      keyIds: () => [...ring.byId.keys()],
      keyOf: (stored) => stored.metadata[KEY_ID_KEY] ?? null,
      seal: (datum) => seal(datum, ring.active, ctx),
      open: openStored,
      reseal: (stored) => seal(openStored(stored), ring.active, ctx),
    };
  },
});

/** `plugins: [encryptionPlugin({ … })]`: the plugin with its options type-checked (checked with ajv again at composition). */
export function encryptionPlugin(options: EncryptionOptions = {}): PluginUse<never> {
  return { plugin: encryption, options: options as never };
}
