import { join, resolve } from "node:path";
import { dgentError } from "../../core/errors.js";
import { RANKS } from "../ranks.js";
import { assertNamespace, DEFAULT_NAMESPACE, defaultDataDir } from "../../core/paths.js";
import { localPathFromUrl } from "../../core/paths.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { JsonlAdapter, type Durability } from "./adapter.js";

export { JsonlAdapter, type CompactResult, type Durability } from "./adapter.js";
export { RECORD_VERSION } from "./records.js";

export const ADAPTER_NAME = "jsonl";

export interface JsonlOptions {
  /** The log is `<dataDir>/<namespace>.jsonl` (default `"default"`). */
  namespace?: string;
  /** Directory of the log (default `$XDG_DATA_HOME/dgent`, else `~/.local/share/dgent`). */
  dataDir?: string;
  /** The log file itself, instead of `dataDir` + `namespace`. */
  path?: string;
  /** `"group"` (default): puts share fdatasyncs; `"fsync"`: one per put; `"none"`: left to the OS. */
  durability?: Durability;
  /** In `"group"` mode, how long the first write waits for others to share its sync (default 0). */
  groupCommitMs?: number;
  /**
   * Read an existing log only (a migration's source, both ends of a dry run): a missing file is
   * `DGENT_INVALID_OPTIONS` (`details.missing: true`) and nothing is created; no lock is taken; a
   * torn tail is left in place; writes fail. Default false.
   */
  readonly?: boolean;
  /**
   * Tag keys indexed from the start (built on open), so the first query filtering on one costs
   * no more than the next. Other keys are indexed by the first query that names them.
   */
  indexTags?: readonly string[];
}

export const jsonl = defineAdapter<JsonlOptions>({
  name: ADAPTER_NAME,
  rank: RANKS.jsonl,
  urlSchemes: ["jsonl"],
  fromUrl: (url) => ({ path: localPathFromUrl(url) }),
  description: "An append-only JSON Lines log per namespace, indexed in memory; local, one writer process.",
  optionsSchema: {
    type: "object",
    additionalProperties: false,
    properties: {
      namespace: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" },
      dataDir: { type: "string", minLength: 1 },
      path: { type: "string", minLength: 1 },
      durability: { enum: ["fsync", "group", "none"], default: "group" },
      groupCommitMs: { type: "number", minimum: 0, maximum: 1000, default: 0 },
      readonly: { type: "boolean" },
      indexTags: { type: "array", items: { type: "string", minLength: 1 }, maxItems: 64, uniqueItems: true },
    },
  },
  create: (options) => {
    if (options.path !== undefined && (options.namespace !== undefined || options.dataDir !== undefined)) {
      throw dgentError("DGENT_INVALID_OPTIONS", `invalid options for "${ADAPTER_NAME}": give either path or dataDir/namespace`, {
        unit: ADAPTER_NAME,
      });
    }
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    assertNamespace(namespace);
    const path = resolve(options.path ?? join(options.dataDir ?? defaultDataDir(), `${namespace}.jsonl`));
    return new JsonlAdapter({
      unit: ADAPTER_NAME,
      rank: RANKS.jsonl,
      path,
      durability: options.durability ?? "group",
      groupCommitMs: options.groupCommitMs ?? 0,
      readonly: options.readonly === true,
      indexTags: options.indexTags ?? [],
    });
  },
});

/** A JSONL tier. `jsonlAdapter({ dataDir: "./data", durability: "fsync" })`. */
export function jsonlAdapter(options: JsonlOptions = {}): JsonlAdapter {
  return instantiateAdapter(jsonl, options) as JsonlAdapter;
}
