import { dgentError, isDgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import { definePlugin } from "../../core/registry.js";
import type { PluginUse, Store } from "../../core/store.js";
import { jsonLens, type JsonLens } from "./lens.js";
import { taggedView, type TaggedView } from "./view.js";

export type { FromSchema } from "./infer.js";
export { compose, field, identity, iso, jsonLens, pipe, type JsonLens, type Lens } from "./lens.js";
export { taggedView, viewThrough, type LensView, type TaggedValue, type TaggedView, type ViewPutOptions } from "./view.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "lens";

export interface LensOptions {
  /** The metadata key whose value names a datum's schema (default `"type"`). */
  key?: string;
  /** JSON Schemas by tag value: a datum with `metadata[key] === tag` must fit `schemas[tag]`. */
  schemas: Record<string, JsonSchema>;
  /** Check tagged datums on `put` and refuse those that do not fit (default `"validate"`). */
  onWrite?: "validate" | "off";
  /** Check tagged datums on their way out: `throw` (default) fails the read with `DGENT_LENS_INVALID`, `warn` reports and returns them. */
  onRead?: "throw" | "warn" | "off";
}

/** What `store.plugin(lens)` resolves to. */
export interface LensHandle {
  readonly key: string;
  /** A compiled lens per tag. */
  readonly lenses: Readonly<Record<string, JsonLens<unknown>>>;
  stats(): { readonly checked: number; readonly refused: number; readonly invalidOnRead: number };
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  required: ["schemas"],
  properties: {
    key: { type: "string", minLength: 1, default: "type" },
    schemas: { type: "object", additionalProperties: { type: ["object", "boolean"] } },
    onWrite: { enum: ["validate", "off"], default: "validate" },
    onRead: { enum: ["throw", "warn", "off"], default: "throw" },
  },
};

/** Guards band for writes (core/HOOKS.md: schema validation on write); on read, after decompression (-100). */
const WRITE_STAGE = -150;
const READ_STAGE = -50;

/**
 * Schema opt-in later (seed 000): datums stay bytes; a metadata tag (`type: "person"`) chooses a
 * JSON Schema that tagged datums must fit, checked on write and again at read time, so data written
 * before the schema existed is caught when it is read.
 */
export const lens = definePlugin<LensOptions, LensHandle>({
  name: PLUGIN_NAME,
  description: "JSON Schema lenses chosen by a metadata tag: tagged datums are validated on write and at read time.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const key = options.key ?? "type";
    const lenses: Record<string, JsonLens<unknown>> = {};
    for (const [tag, schema] of Object.entries(options.schemas)) lenses[tag] = jsonLens(schema, { name: tag });
    const counts = { checked: 0, refused: 0, invalidOnRead: 0 };
    const lensFor = (metadata: Readonly<Record<string, string>>): JsonLens<unknown> | undefined => {
      const tag = metadata[key];
      return tag !== undefined && Object.hasOwn(lenses, tag) ? lenses[tag] : undefined;
    };

    if (options.onWrite !== "off") {
      api.hooks.beforePut.tap({ name: PLUGIN_NAME, stage: WRITE_STAGE }, (datum) => {
        const l = lensFor(datum.metadata);
        if (!l) return datum;
        counts.checked++;
        try {
          l.get(datum.content);
        } catch (error) {
          counts.refused++;
          throw error;
        }
        return datum;
      });
    }
    const onRead = options.onRead ?? "throw";
    if (onRead !== "off") {
      api.hooks.read.tap({ name: PLUGIN_NAME, stage: READ_STAGE }, (datum) => {
        const l = lensFor(datum.metadata);
        if (!l) return datum;
        counts.checked++;
        try {
          l.get(datum.content);
        } catch (error) {
          counts.invalidOnRead++;
          if (onRead === "throw" || !isDgentError(error, "DGENT_LENS_INVALID")) throw error;
          api.warn(`datum ${JSON.stringify(datum.id)} does not fit lens "${l.name}": ${error.message}`, {
            id: datum.id,
            errors: error.details.errors,
          });
        }
        return datum;
      });
    }
    return { key, lenses: Object.freeze(lenses), stats: () => ({ ...counts }) };
  },
});

/** The store through the lenses its lens plugin compiled, chosen per datum by the plugin's metadata key. */
export async function lensView(store: Store): Promise<TaggedView<Record<string, JsonLens<unknown>>>> {
  const handle = await store.plugin(lens).catch((error: unknown) => {
    throw isDgentError(error, "DGENT_UNKNOWN_PLUGIN")
      ? dgentError("DGENT_UNKNOWN_PLUGIN", "lensView needs a store composed with the lens plugin", { unit: PLUGIN_NAME, cause: error })
      : error;
  });
  return taggedView(store, { key: handle.key, lenses: handle.lenses as Record<string, JsonLens<unknown>> });
}

/** `plugins: [lensPlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function lensPlugin(options: LensOptions): PluginUse<never> {
  return { plugin: lens, options: options as never };
}
