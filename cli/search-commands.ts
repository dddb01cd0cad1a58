/**
 * `dgent search` and `dgent reindex`: recall over the store the config file composes. Search is
 * by meaning with the `recall` plugin (vectors), by words with the `fulltext` plugin, or both
 * fused (`hybridSearch`, reciprocal rank fusion) when the store has both; the store's filters
 * (`--prefix`, `--where`, …) apply during the search.
 */
import type { ParseArgsConfig } from "node:util";
import { dgentError, isDgentError } from "../core/errors.js";
import type { QueryFilter } from "../core/query.js";
import type { Store } from "../core/store.js";
import { type Command, type Context, print, printJson, quoted, usage } from "./command.js";
import { parseWhere } from "./query-commands.js";
import { safe } from "./terminal.js";

/** What a search plugin's handle offers (the shared recall API: plugins/recall, plugins/fulltext). */
interface SearchHandle {
  search(query: string, options?: { k?: number; filter?: QueryFilter; [key: string]: unknown }): Promise<Array<{ id: string; score: number }>>;
  attach?(store: Store, options?: { rebuild?: boolean }): Promise<unknown>;
  reindex?(options?: { full?: boolean }): Promise<unknown>;
  idle?(): Promise<void>;
}
type Hybrid = (store: Store, query: string, options: { k?: number; filter?: QueryFilter; vector?: SearchHandle; text?: SearchHandle }) => Promise<Array<{ id: string; score: number }>>;

const VECTOR = "recall";
const TEXT = "fulltext";

const FILTER_OPTIONS = {
  prefix: { type: "string" },
  where: { type: "string", short: "w", multiple: true },
  after: { type: "string" },
  before: { type: "string" },
  "id-from": { type: "string" },
  "id-to": { type: "string" },
  parent: { type: "string", short: "p" },
} as const satisfies ParseArgsConfig["options"];

/** Epoch milliseconds or an ISO date. */
function parseTime(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = value as string;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw usage(`${flag} takes epoch milliseconds or an ISO date, got ${quoted(text)}`);
  return ms;
}

function filterOf(ctx: Context): QueryFilter | undefined {
  const v = ctx.values;
  const where = parseWhere((v.where as string[] | undefined) ?? []);
  const after = parseTime("--after", v.after);
  const before = parseTime("--before", v.before);
  const gte = v["id-from"] as string | undefined;
  const lt = v["id-to"] as string | undefined;
  const filter: QueryFilter = {
    ...(v.prefix !== undefined ? { prefix: v.prefix as string } : {}),
    ...(where !== undefined ? { where } : {}),
    ...(after !== undefined ? { after } : {}),
    ...(before !== undefined ? { before } : {}),
    ...(gte !== undefined || lt !== undefined ? { idRange: { ...(gte !== undefined ? { gte } : {}), ...(lt !== undefined ? { lt } : {}) } } : {}),
    ...(v.parent !== undefined ? { parent: v.parent as string } : {}),
  };
  return Object.keys(filter).length ? filter : undefined;
}

/** The store's handle of plugin `name`, attached to the store when it needs that; null when the store has no such plugin. */
async function handleOf(store: Store, name: string): Promise<SearchHandle | null> {
  try {
    const handle = (await store.plugin(name)) as SearchHandle;
    await handle.attach?.(store);
    return handle;
  } catch (error) {
    if (isDgentError(error, "DGENT_UNKNOWN_PLUGIN")) return null;
    throw error;
  }
}

function noSearchPlugin(): Error {
  return dgentError(
    "DGENT_UNKNOWN_PLUGIN",
    `this store has no search plugin: add "${VECTOR}" (vectors) or "${TEXT}" (words) to the plugins of the config file, e.g. plugins: [{ plugin: ${VECTOR}, options: { embedder: { hashing: {} } } }]`,
    { unit: "cli", details: { wanted: [VECTOR, TEXT] } },
  );
}

async function loadHybrid(): Promise<Hybrid> {
  const entry = new URL("../plugins/fulltext/hybrid.js", import.meta.url);
  try {
    const mod = (await import(entry.href)) as { hybridSearch?: Hybrid };
    if (typeof mod.hybridSearch === "function") return mod.hybridSearch;
  } catch (error) {
    throw dgentError("DGENT_MISSING_DEPENDENCY", `hybrid search needs plugins/fulltext/hybrid.js beside the CLI: ${(error as Error).message}`, { unit: "cli", cause: error });
  }
  throw dgentError("DGENT_MISSING_DEPENDENCY", "plugins/fulltext/hybrid.js does not export hybridSearch", { unit: "cli" });
}

/** A one-line preview of a datum's content for the table: text, else its size. */
function preview(content: Uint8Array | undefined): string {
  if (content === undefined) return "(gone)";
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch {
    return `(${content.byteLength} bytes)`;
  }
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 72 ? `${line.slice(0, 71)}…` : line;
}

async function searchCommand(ctx: Context): Promise<number> {
  const [query, extra] = ctx.positionals;
  if (query === undefined) throw usage('missing QUERY; usage: dgent search "QUERY" [--k N] [filters] [--json]');
  if (extra !== undefined) throw usage(`search takes one QUERY; quote it: dgent search ${quoted(`${query} ${extra}`)}`);
  if (query.trim() === "") throw usage("QUERY is empty");
  const kText = (ctx.values.k as string | undefined) ?? "10";
  if (!/^\d+$/.test(kText) || Number(kText) < 1 || Number(kText) > 1000) throw usage(`--k takes a whole number from 1 to 1000, got ${quoted(kText)}`);
  const k = Number(kText);
  const mode = (ctx.values.mode as string | undefined) ?? "auto";
  if (!["auto", "vector", "text", "hybrid"].includes(mode)) throw usage(`--mode takes auto, vector, text or hybrid, got ${quoted(mode)}`);
  const metric = ctx.values.metric as string | undefined;
  if (metric !== undefined && !["cosine", "dot", "l2"].includes(metric)) throw usage(`--metric takes cosine, dot or l2, got ${quoted(metric)}`);
  if (metric !== undefined && mode !== "vector" && mode !== "auto") throw usage("--metric applies to vector search (--mode vector)");
  const filter = filterOf(ctx);

  const store = await ctx.store();
  const vector = mode === "text" ? null : await handleOf(store, VECTOR);
  const text = mode === "vector" ? null : await handleOf(store, TEXT);
  if ((mode === "vector" && !vector) || (mode === "text" && !text) || (!vector && !text)) {
    if (mode === "vector" || mode === "text") throw dgentError("DGENT_UNKNOWN_PLUGIN", `--mode ${mode} needs the "${mode === "vector" ? VECTOR : TEXT}" plugin in the store's config`, { unit: "cli" });
    throw noSearchPlugin();
  }
  if (mode === "hybrid" && !(vector && text)) throw dgentError("DGENT_UNKNOWN_PLUGIN", `--mode hybrid needs both the "${VECTOR}" and "${TEXT}" plugins in the store's config`, { unit: "cli" });
  const options = { k, ...(filter ? { filter } : {}) };
  let hits: Array<{ id: string; score: number }>;
  let used: string;
  if (vector && text && mode !== "vector" && mode !== "text") {
    hits = await (await loadHybrid())(store, query, { ...options, vector, text });
    used = "hybrid";
  } else if (vector && mode !== "text") {
    hits = await vector.search(query, { ...options, ...(metric ? { metric } : {}) });
    used = "vector";
  } else {
    hits = await (text as SearchHandle).search(query, options);
    used = "text";
  }
  const datums = hits.length ? await store.getMany(hits.map((h) => h.id)) : [];
  if (ctx.json) {
    printJson(ctx.io, hits.map((h) => ({ id: h.id, score: h.score })));
  } else if (hits.length === 0) {
    print(ctx.io, "(no results)");
  } else {
    const rows = hits.map((h, i) => [String(i + 1), h.score.toFixed(4), safe(h.id), safe(preview(datums[i]?.content))]);
    const head = ["#", "SCORE", "ID", "CONTENT"];
    const widths = head.map((t, c) => Math.max(t.length, ...rows.map((r) => (r[c] as string).length)));
    const line = (cells: readonly string[]) => cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] as number))).join("  ").trimEnd();
    print(ctx.io, [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n"));
  }
  ctx.io.stderr(`${used} search, ${hits.length} of k=${k}\n`);
  return 0;
}

async function reindexCommand(ctx: Context): Promise<number> {
  if (ctx.positionals.length) throw usage("reindex takes no arguments");
  const full = ctx.values.full === true;
  const store = await ctx.store();
  const reports: Record<string, unknown> = {};
  for (const name of [VECTOR, TEXT]) {
    let handle: SearchHandle;
    try {
      handle = (await store.plugin(name)) as SearchHandle;
    } catch (error) {
      if (isDgentError(error, "DGENT_UNKNOWN_PLUGIN")) continue;
      throw error;
    }
    if (typeof handle.reindex !== "function") throw dgentError("DGENT_UNSUPPORTED", `the "${name}" plugin has no reindex()`, { unit: "cli" });
    // The vector index rebuilds from scratch as it attaches: stored vectors it could not load
    // (other dimensions under the same model id) never stop a full reindex.
    if (name === VECTOR && full && handle.attach) reports[name] = await handle.attach(store, { rebuild: true });
    else {
      await handle.attach?.(store);
      reports[name] = await handle.reindex({ full });
    }
    await handle.idle?.();
  }
  if (Object.keys(reports).length === 0) throw noSearchPlugin();
  if (ctx.json) printJson(ctx.io, reports);
  else {
    for (const [name, report] of Object.entries(reports)) {
      const r = report as Record<string, unknown>;
      const parts = ["checked", "embedded", "indexed", "skipped", "removed"].filter((key) => typeof r[key] === "number").map((key) => `${key} ${String(r[key])}`);
      const ms = typeof r.ms === "number" ? ` in ${Math.round(r.ms)} ms` : "";
      print(ctx.io, `${name}: ${parts.join(", ") || "done"}${ms}${full ? " (full)" : ""}`);
    }
  }
  return 0;
}

export const SEARCH_COMMANDS: Record<string, Command> = {
  search: {
    summary: "find the datums nearest a query: by meaning (recall plugin), by words (fulltext), or both fused",
    usage: 'dgent search "QUERY" [--k N] [--mode auto|vector|text|hybrid] [--metric cosine|dot|l2] [--prefix P] [--where COND]... [--after T] [--before T] [--id-from ID] [--id-to ID] [--parent ID] [--json]',
    options: { ...FILTER_OPTIONS, k: { type: "string", short: "k" }, mode: { type: "string" }, metric: { type: "string" } },
    run: searchCommand,
  },
  reindex: {
    summary: "bring the search indexes up to date with the datums (--full: rebuild them from scratch)",
    usage: "dgent reindex [--full] [--json]",
    options: { full: { type: "boolean" } },
    run: reindexCommand,
  },
};
