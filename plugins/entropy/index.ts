import type { Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import type { PluginUse } from "../../core/store.js";
import { definePlugin } from "../../core/registry.js";

/** Folder name, registry key, tap name and error unit. */
export const PLUGIN_NAME = "entropy";

/** How the budget shrinks with depth: `harmonic` is the seed's 1 / (1 + depth). */
export type DepthScale = "harmonic" | "none" | readonly number[];

export interface NamespaceBudget {
  maxBytes?: number;
  budget?: number;
}

export interface EntropyOptions {
  /** Bytes allowed at budget 1.0 and depth 0 (default 1 000 000, the seed's 1 MB). */
  maxBytes?: number;
  /** Fraction of `maxBytes` this store may use per datum (default 1.0). */
  budget?: number;
  /** Metadata key holding the datum's depth in the promise tree, a non-negative integer (default `"depth"`). */
  depthKey?: string;
  /** `harmonic` (default): × 1/(1+depth). `none`: depth is ignored. An array: × the entry for the depth (the last repeats). */
  depthScale?: DepthScale;
  /** What is measured: the whole datum (`datum`, default: content + id + metadata, UTF-8) or the `content` only. */
  measure?: "datum" | "content";
  /** Budgets by id prefix (a namespace such as `"agent-7/"`); the longest matching prefix wins. */
  namespaces?: Record<string, NamespaceBudget>;
}

export interface BudgetCheck {
  /** Bytes allowed for this datum. */
  readonly limit: number;
  /** Bytes it measures. */
  readonly actual: number;
  readonly depth: number;
  /** The prefix whose budget applied, or null for the store-wide one. */
  readonly namespace: string | null;
}

/** What `store.plugin(entropy)` resolves to. */
export interface EntropyHandle {
  /** The limit and size for a datum, without writing it (so an agent can trim before it puts). */
  check(datum: Datum): BudgetCheck;
  stats(): { readonly accepted: number; readonly rejected: number; readonly largestAccepted: number };
}

const OPTIONS_SCHEMA: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    maxBytes: { type: "integer", minimum: 0, default: 1_000_000 },
    budget: { type: "number", minimum: 0, default: 1 },
    depthKey: { type: "string", minLength: 1, default: "depth" },
    depthScale: {
      anyOf: [{ enum: ["harmonic", "none"] }, { type: "array", minItems: 1, items: { type: "number", minimum: 0 } }],
      default: "harmonic",
    },
    measure: { enum: ["datum", "content"], default: "datum" },
    namespaces: {
      type: "object",
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: { maxBytes: { type: "integer", minimum: 0 }, budget: { type: "number", minimum: 0 } },
      },
      default: {},
    },
  },
};

/** Guards band (core/HOOKS.md): first of all, so it sees the caller's datum before any transform. */
const STAGE = -200;

/** Size of a datum as measured: UTF-8 bytes of id, content and metadata keys and values. */
export function measureDatum(d: Datum, measure: "datum" | "content" = "datum"): number {
  if (measure === "content") return d.content.byteLength;
  let size = Buffer.byteLength(d.id, "utf8") + d.content.byteLength;
  for (const k in d.metadata) size += Buffer.byteLength(k, "utf8") + Buffer.byteLength(d.metadata[k] as string, "utf8");
  return size;
}

/** The multiplier for `depth` under `scale`. */
export function depthFactor(depth: number, scale: DepthScale = "harmonic"): number {
  if (scale === "none") return 1;
  if (scale === "harmonic") return 1 / (1 + depth);
  return scale[Math.min(depth, scale.length - 1)] as number;
}

/**
 * Entropy budgets (seed 001, "Entropy-Aware Persistence"): a datum may be at most
 * `maxBytes × budget × depthFactor(depth)` bytes; a larger one is refused with
 * `DGENT_BUDGET_EXCEEDED` before anything is written.
 */
export const entropy = definePlugin<EntropyOptions, EntropyHandle>({
  name: PLUGIN_NAME,
  description: "Refuses datums larger than maxBytes × budget, scaled down with depth, before anything is written.",
  optionsSchema: OPTIONS_SCHEMA,
  apply(api, options) {
    const maxBytes = options.maxBytes ?? 1_000_000;
    const budget = options.budget ?? 1;
    const depthKey = options.depthKey ?? "depth";
    const scale = options.depthScale ?? "harmonic";
    const measure = options.measure ?? "datum";
    // Longest prefix first, so the first match is the most specific namespace.
    const namespaces = Object.entries(options.namespaces ?? {}).sort((a, b) => b[0].length - a[0].length);
    const counts = { accepted: 0, rejected: 0, largestAccepted: 0 };

    const check = (datum: Datum): BudgetCheck => {
      const raw = datum.metadata[depthKey];
      let depth = 0;
      if (raw !== undefined) {
        if (!/^\d{1,6}$/.test(raw)) {
          throw dgentError(
            "DGENT_INVALID_METADATA",
            `metadata ${JSON.stringify(depthKey)} of datum ${JSON.stringify(datum.id)} must be a depth (a non-negative integer), got ${JSON.stringify(raw)}`,
            { unit: PLUGIN_NAME },
          );
        }
        depth = Number(raw);
      }
      const match = namespaces.find(([prefix]) => datum.id.startsWith(prefix));
      const ns = match?.[1];
      const limit = Math.floor((ns?.maxBytes ?? maxBytes) * (ns?.budget ?? budget) * depthFactor(depth, scale));
      return { limit, actual: measureDatum(datum, measure), depth, namespace: match?.[0] ?? null };
    };

    api.hooks.beforePut.tap({ name: PLUGIN_NAME, stage: STAGE }, (datum) => {
      const result = check(datum);
      if (result.actual > result.limit) {
        counts.rejected++;
        const where = result.namespace === null ? api.namespace : `namespace ${JSON.stringify(result.namespace)}`;
        throw dgentError(
          "DGENT_BUDGET_EXCEEDED",
          `datum ${JSON.stringify(datum.id)} is ${result.actual} bytes; the entropy budget of ${where} at depth ${result.depth} allows ${result.limit}`,
          { unit: PLUGIN_NAME, details: { ...result, id: datum.id } },
        );
      }
      counts.accepted++;
      counts.largestAccepted = Math.max(counts.largestAccepted, result.actual);
      return datum;
    });

    return { check, stats: () => ({ ...counts }) };
  },
});

/** `plugins: [entropyPlugin({ … })]`: the plugin with its options type-checked (they are checked with ajv again at composition). */
export function entropyPlugin(options: EntropyOptions = {}): PluginUse<never> {
  return { plugin: entropy, options: options as never };
}
