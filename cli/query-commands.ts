/**
 * The commands that read and delete by query (core/query.ts): `get` (one id or several),
 * `delete` (one id, or every datum meeting filters), `list` (a page, with a cursor to the next),
 * `count`, `children` and `chain` (the whole chain, or its last N steps).
 */
import type { ParseArgsConfig } from "node:util";
import type { Datum } from "../core/datum.js";
import { dgentError, isDgentError } from "../core/errors.js";
import { filtersNothing, resolveQuery, type DatumHeader, type QueryFilter, type QueryOptions, type Select, type TagFilter, type Where } from "../core/query.js";
import { GET_COMMAND, printGet } from "./fast-get.js";
import { chainText, datumJson, datumTable } from "./format.js";
import { type Command, type Context, print, printJson, quoted, usage } from "./command.js";
import { safe } from "./terminal.js";

// ---------------------------------------------------------------------------------------------
// --where
// ---------------------------------------------------------------------------------------------

const WHERE_SYNTAX = "key=value, key=a,b (one of), key~prefix, key? (present) or !key (absent)";

/** One character of a `--where` argument, and whether a backslash made it literal. */
interface Char {
  readonly ch: string;
  readonly escaped: boolean;
}

function chars(arg: string): Char[] {
  const out: Char[] = [];
  let escaping = false;
  for (const ch of arg) {
    if (escaping) {
      out.push({ ch, escaped: true });
      escaping = false;
    } else if (ch === "\\") escaping = true;
    else out.push({ ch, escaped: false });
  }
  if (escaping) throw badWhere(arg, "ends with a lone backslash; write \\\\ for a backslash");
  return out;
}

const join = (cs: readonly Char[]) => cs.map((c) => c.ch).join("");
const isOp = (c: Char | undefined, ops: string) => c !== undefined && !c.escaped && ops.includes(c.ch);

function badWhere(arg: string, why: string): Error {
  return usage(`--where ${quoted(arg)}: ${why}; use ${WHERE_SYNTAX}`);
}

/**
 * One `--where` argument as a tag and its condition. The first unescaped `=`, `~` or `?` ends the
 * tag name; a leading `!` means absent. `\` makes the next character literal anywhere; after the
 * operator only `,` (in `=`) and `\` are special.
 */
export function parseCondition(arg: string): [string, TagFilter] {
  const cs = chars(arg);
  if (isOp(cs[0], "!")) {
    const key = cs.slice(1);
    if (key.some((c) => isOp(c, "=~?"))) throw badWhere(arg, "!key takes no operator or value");
    if (key.length === 0) throw badWhere(arg, "no tag name after !");
    return [join(key), { exists: false }];
  }
  const at = cs.findIndex((c) => isOp(c, "=~?"));
  if (at < 0) throw badWhere(arg, "no operator");
  if (at === 0) throw badWhere(arg, "no tag name before the operator");
  const key = join(cs.slice(0, at));
  const op = (cs[at] as Char).ch;
  const rest = cs.slice(at + 1);
  if (op === "?") {
    if (rest.length) throw badWhere(arg, "? ends the condition (key?); escape a ? in a tag name as \\?");
    return [key, { exists: true }];
  }
  if (op === "~") {
    if (rest.some((c) => isOp(c, ","))) throw badWhere(arg, "a prefix takes one value; write \\, for a comma in it");
    return [key, { prefix: join(rest) }];
  }
  const values: Char[][] = [[]];
  for (const c of rest) {
    if (isOp(c, ",")) values.push([]);
    else (values.at(-1) as Char[]).push(c);
  }
  return values.length === 1 ? [key, join(values[0] as Char[])] : [key, { in: values.map(join) }];
}

/** Every `--where` of a command line as one `Where`; a tag named twice is refused. */
export function parseWhere(args: readonly string[]): Where | undefined {
  if (args.length === 0) return undefined;
  const where: Record<string, TagFilter> = {};
  for (const arg of args) {
    const [key, condition] = parseCondition(arg);
    if (Object.hasOwn(where, key)) throw usage(`--where names tag ${quoted(key)} twice; one condition per tag (key=a,b matches one of several values)`);
    where[key] = condition;
  }
  return where;
}

// ---------------------------------------------------------------------------------------------
// The other flags
// ---------------------------------------------------------------------------------------------

const FILTER_OPTIONS = {
  prefix: { type: "string" },
  where: { type: "string", short: "w", multiple: true },
  after: { type: "string" },
  before: { type: "string" },
  "id-from": { type: "string" },
  "id-to": { type: "string" },
  parent: { type: "string", short: "p" },
} as const satisfies ParseArgsConfig["options"];

const { parent: _parent, ...FILTER_OPTIONS_BUT_PARENT } = FILTER_OPTIONS;

const PAGE_OPTIONS = {
  order: { type: "string" },
  limit: { type: "string", short: "l" },
  cursor: { type: "string" },
  ids: { type: "boolean" },
  meta: { type: "boolean" },
} as const satisfies ParseArgsConfig["options"];

const FILTER_USAGE = "[--prefix P] [--where COND]... [--after MS|ISO] [--before MS|ISO] [--id-from ID] [--id-to ID]";
const PAGE_USAGE = "[--order newest|oldest] [--limit N] [--cursor C] [--ids | --meta]";

/** A bound in time: epoch milliseconds or an ISO date. */
function parseTime(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = value as string;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw usage(`${flag} takes epoch milliseconds or an ISO date, got ${quoted(text)}`);
  return ms;
}

function parseCount(flag: string, value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value as string)) throw usage(`${flag} takes ${what}, got ${quoted(value as string)}`);
  return Number(value);
}

const string = (value: unknown) => value as string | undefined;

/** The filters of a command line (`--prefix`, `--where`, …); `parent` from `--parent` or the caller. */
function filterOf(ctx: Context, parent?: string): QueryFilter {
  const v = ctx.values;
  const where = parseWhere((v.where as string[] | undefined) ?? []);
  const after = parseTime("--after", v.after);
  const before = parseTime("--before", v.before);
  const gte = string(v["id-from"]);
  const lt = string(v["id-to"]);
  const p = parent ?? string(v.parent);
  return {
    ...(v.prefix !== undefined ? { prefix: v.prefix as string } : {}),
    ...(where !== undefined ? { where } : {}),
    ...(after !== undefined ? { after } : {}),
    ...(before !== undefined ? { before } : {}),
    ...(gte !== undefined || lt !== undefined ? { idRange: { ...(gte !== undefined ? { gte } : {}), ...(lt !== undefined ? { lt } : {}) } } : {}),
    ...(p !== undefined ? { parent: p } : {}),
  };
}

/** The paging flags (`--order`, `--limit`, `--cursor`, `--ids`/`--meta`). */
function pageOf(ctx: Context): Pick<QueryOptions, "order" | "limit" | "cursor" | "select"> {
  const v = ctx.values;
  if (v.ids && v.meta) throw usage("give --ids or --meta, not both: --ids prints ids, --meta headers without content");
  const order = string(v.order);
  if (order !== undefined && order !== "newest" && order !== "oldest") throw usage(`--order takes newest or oldest, got ${quoted(order)}`);
  const limit = parseCount("--limit", v.limit, "a whole number");
  const select: Select = v.ids ? "ids" : v.meta ? "meta" : "full";
  return {
    ...(order !== undefined ? { order } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(v.cursor !== undefined ? { cursor: v.cursor as string } : {}),
    select,
  };
}

/** The flag a query option comes from, for errors: `where.role.in[0]` → `--where`. */
function flagOf(field: string, idName: string): string {
  if (field === "where" || field.startsWith("where.")) return "--where";
  const flags: Record<string, string> = {
    prefix: "--prefix",
    "idRange.gte": "--id-from",
    "idRange.lt": "--id-to",
    parent: idName,
    after: "--after",
    before: "--before",
    order: "--order",
    limit: "--limit",
    cursor: "--cursor",
    select: "--ids/--meta",
    tail: "--tail",
    ids: "ID",
  };
  return flags[field] ?? field;
}

/**
 * Runs `op`; a `DGENT_INVALID_QUERY` comes back naming the flag it is about (`--cursor: …`),
 * with the same code and `details.flag` added.
 */
async function namingFlags<T>(op: () => T | Promise<T>, idName = "--parent"): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (!isDgentError(error, "DGENT_INVALID_QUERY") || typeof error.details.field !== "string") throw error;
    const field = error.details.field;
    const flag = flagOf(field, idName);
    const rest = error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message;
    const where = flag === "--where" && field !== "where" ? ` (${field})` : "";
    throw dgentError("DGENT_INVALID_QUERY", `${flag}${where}: ${rest}`, { unit: "cli", cause: error, details: { ...error.details, flag } });
  }
}

function noArguments(ctx: Context, command: string): void {
  const [first] = ctx.positionals;
  if (first !== undefined) throw usage(`${command} takes no arguments${command === "list" || command === "count" ? `; did you mean --prefix ${safe(first)}?` : ""}`);
}

function oneId(ctx: Context, shape: string): string {
  const [id, extra] = ctx.positionals;
  if (id === undefined) throw usage(`missing ID; usage: ${shape}`);
  if (extra !== undefined) throw usage(`unexpected argument ${quoted(extra)}; usage: ${shape}`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/** A datum's header as JSON: `datumJson` without the content. */
function headerJson(h: DatumHeader): Record<string, unknown> {
  return { id: h.id, createdAt: h.createdAt, createdAtIso: new Date(h.createdAt).toISOString(), causalParent: h.causalParent, metadata: h.metadata };
}

/** Headers as a table, every cell terminal-safe. */
function headerTable(headers: readonly DatumHeader[]): string {
  if (headers.length === 0) return "(no datums)";
  const rows = headers.map((h) =>
    [h.id, new Date(h.createdAt).toISOString(), h.causalParent ?? "-", Object.entries(h.metadata).map(([k, v]) => `${k}=${v}`).join(",") || "-"].map(safe),
  );
  const head = ["ID", "CREATED", "PARENT", "TAGS"];
  const widths = head.map((t, i) => Math.max(t.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/**
 * One page on stdout (in JSON the array of items, the shape `dgent list --json` always had); the
 * next page's cursor on stderr, in both modes, so stdout stays the items alone.
 */
function printPage(ctx: Context, select: Select, items: readonly (Datum | DatumHeader | string)[], cursor: string | null): void {
  if (ctx.json) {
    printJson(ctx.io, select === "ids" ? items : select === "meta" ? (items as DatumHeader[]).map(headerJson) : (items as Datum[]).map(datumJson));
  } else if (select === "ids") {
    if (items.length) print(ctx.io, (items as string[]).join("\n"));
  } else print(ctx.io, select === "meta" ? headerTable(items as DatumHeader[]) : datumTable(items as Datum[]));
  if (cursor !== null) ctx.io.stderr(`next page: --cursor ${safe(cursor)}\n`);
}

async function runPage(ctx: Context, filter: QueryFilter, idName: string): Promise<number> {
  const options: QueryOptions = { ...filter, ...pageOf(ctx) };
  // Checked before the store opens: a bad cursor or limit creates nothing.
  await namingFlags(() => resolveQuery(options), idName);
  const store = await ctx.store();
  const page = await namingFlags(() => store.query(options), idName);
  printPage(ctx, options.select ?? "full", page.items, page.cursor);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The commands
// ---------------------------------------------------------------------------------------------

async function getCommand(ctx: Context): Promise<number> {
  const ids = ctx.positionals;
  if (ids.length === 0) throw usage(`missing ID; see \`dgent get --help\``);
  const store = await ctx.store();
  const datums = ids.length === 1 ? [await store.get(ids[0] as string)] : await namingFlags(() => store.getMany(ids));
  return printGet(ctx.io, ctx.json ? datumJson : null, ids, datums);
}

const FILTER_FLAGS = ["prefix", "where", "after", "before", "id-from", "id-to", "parent"] as const;

async function deleteCommand(ctx: Context): Promise<number> {
  const v = ctx.values;
  const filtered = FILTER_FLAGS.some((f) => v[f] !== undefined);
  if (ctx.positionals.length) {
    const id = oneId(ctx, "dgent delete ID");
    if (filtered || v.all) throw usage("give an ID, or filters (--prefix, --where, …) or --all, not both");
    const existed = await (await ctx.store()).delete(id);
    if (ctx.json) printJson(ctx.io, { id, deleted: existed });
    else if (existed) print(ctx.io, `deleted ${id}`);
    else ctx.io.stderr(`dgent: no datum with id ${quoted(id)}\n`);
    return existed ? 0 : 1;
  }
  if (v.all && filtered) throw usage("--all deletes every datum of the namespace; drop it to delete by filters, or drop the filters");
  if (!filtered && !v.all) throw usage("delete needs an ID, filters (--prefix P, --where COND, …) with --yes, or --all --yes");
  const filter = filterOf(ctx);
  const q = await namingFlags(() => resolveQuery(filter, { paged: false }));
  if (!v.all && filtersNothing(q)) throw usage("these filters match every datum; say --all --yes to empty the namespace");
  const store = await ctx.store();
  if (!v.yes) {
    const n = await store.count(filter);
    throw usage(`refusing to delete ${n} ${n === 1 ? "datum" : "datums"} without --yes; run it again with --yes to delete them`);
  }
  const n = await namingFlags(() => store.deleteMany(v.all ? { all: true } : filter));
  if (ctx.json) printJson(ctx.io, { deleted: n });
  else print(ctx.io, `deleted ${n} ${n === 1 ? "datum" : "datums"}`);
  return 0;
}

export const QUERY_COMMANDS: Record<string, Command> = {
  get: { ...GET_COMMAND, run: getCommand },
  delete: {
    summary: "delete a datum (exit 1 when there was none), or every datum meeting filters with --yes",
    usage: `dgent delete ID | dgent delete (${FILTER_USAGE} [--parent ID] | --all) --yes [--json]`,
    options: { ...FILTER_OPTIONS, all: { type: "boolean" }, yes: { type: "boolean", short: "y" } },
    run: deleteCommand,
  },
  list: {
    summary: "list a page of datums meeting filters, newest first; the next page's cursor on stderr",
    usage: `dgent list ${FILTER_USAGE} [--parent ID] ${PAGE_USAGE} [--json]`,
    options: { ...FILTER_OPTIONS, ...PAGE_OPTIONS },
    async run(ctx) {
      noArguments(ctx, "list");
      return runPage(ctx, filterOf(ctx), "--parent");
    },
  },
  count: {
    summary: "count the datums meeting filters",
    usage: `dgent count ${FILTER_USAGE} [--parent ID] [--json]`,
    options: FILTER_OPTIONS,
    async run(ctx) {
      noArguments(ctx, "count");
      const filter = filterOf(ctx);
      await namingFlags(() => resolveQuery(filter, { paged: false }));
      const store = await ctx.store();
      const n = await namingFlags(() => store.count(filter));
      if (ctx.json) printJson(ctx.io, { count: n });
      else print(ctx.io, String(n));
      return 0;
    },
  },
  children: {
    summary: "list a page of a datum's children (its branches), newest first",
    usage: `dgent children ID ${FILTER_USAGE} ${PAGE_USAGE} [--json]`,
    options: { ...FILTER_OPTIONS_BUT_PARENT, ...PAGE_OPTIONS },
    async run(ctx) {
      const id = oneId(ctx, "dgent children ID");
      return runPage(ctx, filterOf(ctx, id), "ID");
    },
  },
  chain: {
    summary: "print a datum's causal chain, oldest first (--tail N: its last N steps)",
    usage: "dgent chain ID [--tail N] [--json]",
    options: { tail: { type: "string", short: "t" } },
    async run(ctx) {
      const id = oneId(ctx, "dgent chain ID [--tail N]");
      const tail = parseCount("--tail", ctx.values.tail, "a positive whole number");
      if (tail === 0) throw usage("--tail takes a positive whole number, got 0");
      const store = await ctx.store();
      const chain = await namingFlags(() => store.causalChain(id, tail === undefined ? undefined : { tail }), "ID");
      if (ctx.json) printJson(ctx.io, chain.map(datumJson));
      else print(ctx.io, chainText(chain));
      return chain.length === 0 ? 1 : 0;
    },
  },
};
