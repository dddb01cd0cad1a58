import type { Datum } from "../../core/datum.js";
import { dgentError, wrapError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import type { PluginUse } from "../../core/store.js";
import { definePlugin } from "../../core/registry.js";
import { decode, encode, own, type Encoding } from "./codec.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "compression";

/** The metadata key that records how stored content is encoded. Reserved. */
export const ENCODING_KEY = "dgent.compression";

export interface CompressionOptions {
  /** `gzip` (default) or `brotli`. */
  algorithm?: "gzip" | "brotli";
  /** Content shorter than this many bytes is stored as is (default 1024). */
  threshold?: number;
  /** gzip level 1–9 (default 6) or brotli quality 0–11 (default 5). */
  level?: number;
}

export interface CompressionStats {
  /** Datums stored compressed. */
  readonly compressed: number;
  /** Datums stored as they came: below the threshold, or compression did not make them smaller. */
  readonly stored: number;
  /** Content bytes of the compressed datums before and after compression. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** `bytesIn - bytesOut`. */
  readonly saved: number;
  /** `bytesOut / bytesIn` (1 before anything was compressed). */
  readonly ratio: number;
  /** Datums decompressed on their way out. */
  readonly decompressed: number;
}

/** What `store.plugin(compression)` resolves to. */
export interface CompressionHandle {
  stats(): CompressionStats;
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    algorithm: { enum: ["gzip", "brotli"], default: "gzip" },
    threshold: { type: "integer", minimum: 0, default: 1024 },
    level: { type: "integer", minimum: 0, maximum: 11 },
  },
};

/** Transforms near storage (core/HOOKS.md): compress last on the way in, decompress first on the way out. */
const PUT_STAGE = 100;
const READ_STAGE = -100;

function isEncoding(value: string): value is Encoding {
  return value === "gzip" || value === "br";
}

/**
 * Compresses content above a size threshold and records the encoding in metadata
 * (`dgent.compression`), so reads are transparent: the `read` hook decompresses and removes the key.
 */
export const compression = definePlugin<CompressionOptions, CompressionHandle>({
  name: PLUGIN_NAME,
  description: "gzip or brotli above a size threshold, recorded in metadata; reads decompress transparently.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const encoding: Encoding = options.algorithm === "brotli" ? "br" : "gzip";
    const level = options.level ?? (encoding === "br" ? 5 : 6);
    if (encoding === "gzip" && (level < 1 || level > 9)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `gzip levels are 1 to 9, got ${level}`, { unit: PLUGIN_NAME });
    }
    const threshold = options.threshold ?? 1024;
    const counts = { compressed: 0, stored: 0, bytesIn: 0, bytesOut: 0, decompressed: 0 };

    api.hooks.beforePut.tapPromise({ name: PLUGIN_NAME, stage: PUT_STAGE }, async (datum) => {
      const marked = datum.metadata[ENCODING_KEY];
      if (marked !== undefined) {
        // Already encoded (copied from a compressed store's scan): keep it as it is.
        if (!isEncoding(marked)) {
          throw dgentError(
            "DGENT_INVALID_METADATA",
            `metadata ${JSON.stringify(ENCODING_KEY)} is reserved for the compression plugin (gzip or br), got ${JSON.stringify(marked)}`,
            { unit: PLUGIN_NAME },
          );
        }
        return datum;
      }
      const size = datum.content.byteLength;
      if (size < threshold || size === 0) {
        counts.stored++;
        return datum;
      }
      const packed = await encode(encoding, datum.content, level);
      if (packed.byteLength >= size) {
        counts.stored++;
        return datum;
      }
      counts.compressed++;
      counts.bytesIn += size;
      counts.bytesOut += packed.byteLength;
      return { ...datum, content: packed, metadata: { ...datum.metadata, [ENCODING_KEY]: encoding } };
    });

    api.hooks.read.tapPromise({ name: PLUGIN_NAME, stage: READ_STAGE }, async (datum) => {
      const marked = datum.metadata[ENCODING_KEY];
      if (marked === undefined) return datum;
      if (!isEncoding(marked)) {
        throw dgentError("DGENT_BACKEND_ERROR", `datum ${JSON.stringify(datum.id)} is stored with an unknown encoding ${JSON.stringify(marked)}`, {
          unit: PLUGIN_NAME,
        });
      }
      let content: Uint8Array;
      try {
        content = own(await decode(marked, datum.content));
      } catch (error) {
        throw wrapError(error, "DGENT_BACKEND_ERROR", `datum ${JSON.stringify(datum.id)} is marked ${marked} but does not decompress`, {
          unit: PLUGIN_NAME,
        });
      }
      counts.decompressed++;
      const { [ENCODING_KEY]: _, ...metadata } = datum.metadata;
      return { ...datum, content, metadata } satisfies Datum;
    });

    return {
      stats: () => ({
        ...counts,
        saved: counts.bytesIn - counts.bytesOut,
        ratio: counts.bytesIn === 0 ? 1 : counts.bytesOut / counts.bytesIn,
      }),
    };
  },
});

/** `plugins: [compressionPlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function compressionPlugin(options: CompressionOptions = {}): PluginUse<never> {
  return { plugin: compression, options: options as never };
}
