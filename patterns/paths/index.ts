/**
 * The seed's `self.data.*` paths as an API: one table of paths, each with its arguments, the CLI
 * command that mirrors it and the store call it makes. `invokePath("self.data.chain", [id])` (or
 * the seed's `"self.data.chain[id]"`) runs it; the CLI's commands are checked against the same
 * table (test/paths.test.ts), so the two cannot drift apart.
 */
import { makeDatum, type Datum, type MakeDatumInput } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { nearest } from "../../core/registry.js";
import type { Store } from "../../core/store.js";

/** What a path runs against: the store, and the tables the table bridge exposes (by name). */
export interface PathContext {
  readonly store: Store;
  /** `self.data.table.<name>.<op>`: a table bridge's store per name (patterns/table). */
  readonly tables?: Readonly<Record<string, Store>>;
}

export interface DataPath {
  /** `self.data.<name>` */
  readonly path: string;
  /** The arguments, in order; a trailing `?` marks an optional one. */
  readonly args: readonly string[];
  /** The CLI command that mirrors it (`dgent <cli>`). */
  readonly cli: string;
  readonly summary: string;
  invoke(store: Store, args: readonly unknown[]): Promise<unknown>;
}

const str = (path: string, name: string, value: unknown): string => {
  if (typeof value !== "string") throw dgentError("DGENT_INVALID_OPTIONS", `${path}: ${name} must be a string, got ${value === null ? "null" : typeof value}`, { details: { path, argument: name } });
  return value;
};

const obj = <T>(path: string, name: string, value: unknown): T => {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw dgentError("DGENT_INVALID_OPTIONS", `${path}: ${name} must be an object`, { details: { path, argument: name } });
  }
  return value as T;
};

/** Datums (and the operations that act on one) a table bridge exposes under `self.data.table.<name>`. */
const TABLE_OPS = ["get", "list", "query", "count"] as const;

/** The paths, in the seed's order, then the ones dgent added. */
export const DATA_PATHS: readonly DataPath[] = Object.freeze([
  {
    path: "self.data.put",
    args: ["content", "datum?"],
    cli: "put",
    summary: "store content (bytes or text) as a new datum; returns its id",
    invoke: (store, [content, rest]) =>
      store.put(makeDatum({ ...obj<Partial<MakeDatumInput>>("self.data.put", "datum", rest), content: content as MakeDatumInput["content"] })),
  },
  { path: "self.data.get", args: ["id"], cli: "get", summary: "a datum by id, or null", invoke: (store, [id]) => store.get(str("self.data.get", "id", id)) },
  { path: "self.data.delete", args: ["id"], cli: "delete", summary: "remove by id; true when it existed", invoke: (store, [id]) => store.delete(str("self.data.delete", "id", id)) },
  { path: "self.data.list", args: ["options?"], cli: "list", summary: "recent datums, newest first (filters as query)", invoke: (store, [o]) => store.list(obj("self.data.list", "options", o)) },
  {
    path: "self.data.chain",
    args: ["id", "options?"],
    cli: "chain",
    summary: "the causal chain, oldest first ({ tail } for the last steps)",
    invoke: (store, [id, o]) => store.causalChain(str("self.data.chain", "id", id), obj("self.data.chain", "options", o)),
  },
  { path: "self.data.upgrade", args: [], cli: "upgrade", summary: "promote every datum below the landing tier up to it", invoke: (store) => store.upgrade() },
  { path: "self.data.backend", args: [], cli: "backend", summary: "the tiers, the landing tier and their state", invoke: (store) => store.backend() },
  { path: "self.data.query", args: ["options?"], cli: "list", summary: "one page of a query: { items, cursor }", invoke: (store, [o]) => store.query(obj("self.data.query", "options", o)) },
  { path: "self.data.count", args: ["filter?"], cli: "count", summary: "how many datums meet the filter", invoke: (store, [o]) => store.count(obj("self.data.count", "filter", o)) },
  {
    path: "self.data.children",
    args: ["id", "options?"],
    cli: "children",
    summary: "the datums whose causal parent is id",
    invoke: (store, [id, o]) => store.children(str("self.data.children", "id", id), obj("self.data.children", "options", o)),
  },
  { path: "self.data.ref.get", args: ["name"], cli: "ref get", summary: "a ref, or null", invoke: (store, [n]) => store.refs.get(str("self.data.ref.get", "name", n)) },
  {
    path: "self.data.ref.set",
    args: ["name", "target", "options?"],
    cli: "ref set",
    summary: "move a ref by compare-and-set",
    invoke: (store, [n, t, o]) => store.refs.set(str("self.data.ref.set", "name", n), str("self.data.ref.set", "target", t), obj("self.data.ref.set", "options", o)),
  },
  {
    path: "self.data.ref.delete",
    args: ["name", "options?"],
    cli: "ref delete",
    summary: "delete a ref by compare-and-set",
    invoke: (store, [n, o]) => store.refs.delete(str("self.data.ref.delete", "name", n), obj("self.data.ref.delete", "options", o)),
  },
  { path: "self.data.ref.list", args: ["prefix?"], cli: "ref list", summary: "refs by name", invoke: (store, [p]) => store.refs.list(p === undefined ? "" : str("self.data.ref.list", "prefix", p)) },
  { path: "self.data.ref.log", args: ["name"], cli: "ref log", summary: "a ref's moves, newest first", invoke: (store, [n]) => store.refs.log(str("self.data.ref.log", "name", n)) },
] satisfies DataPath[]);

const BY_PATH = new Map(DATA_PATHS.map((p) => [p.path, p]));

/**
 * Splits the seed's form `self.data.get[abc]` into the path and its one argument; a path without
 * brackets comes back as is.
 */
export function parsePath(text: string): { path: string; args: string[] } {
  const m = /^([^[\]]+)\[(.*)\]$/s.exec(text);
  return m ? { path: m[1] as string, args: [m[2] as string] } : { path: text, args: [] };
}

/** Every path, the table bridge's included (`self.data.table.<name>.<op>` for each name in `tables`). */
export function knownPaths(tables: readonly string[] = []): string[] {
  return [...DATA_PATHS.map((p) => p.path), ...tables.flatMap((t) => TABLE_OPS.map((op) => `self.data.table.${t}.${op}`))];
}

/**
 * Runs a path with arguments against a store. An unknown path is `DGENT_UNKNOWN_PATH` naming the
 * nearest known one; a missing or ill-typed argument is `DGENT_INVALID_OPTIONS`.
 */
export async function invokePath(text: string, args: readonly unknown[], context: PathContext): Promise<unknown> {
  if (typeof text !== "string") throw dgentError("DGENT_UNKNOWN_PATH", "a path must be a string such as \"self.data.get\"", { details: { path: String(text) } });
  const parsed = parsePath(text.trim());
  const all = [...parsed.args, ...args];
  const table = /^self\.data\.table\.([^.]+)\.([^.]+)$/.exec(parsed.path);
  if (table) return invokeTable(parsed.path, table[1] as string, table[2] as string, all, context);
  const spec = BY_PATH.get(parsed.path);
  if (!spec) throw unknownPath(parsed.path, Object.keys(context.tables ?? {}));
  const required = spec.args.filter((a) => !a.endsWith("?")).length;
  if (all.length < required || all.length > spec.args.length) {
    throw dgentError("DGENT_INVALID_OPTIONS", `${spec.path} takes ${describeArgs(spec.args)}, got ${all.length} argument${all.length === 1 ? "" : "s"}`, {
      details: { path: spec.path, expected: spec.args },
    });
  }
  return spec.invoke(context.store, all);
}

async function invokeTable(path: string, name: string, op: string, args: readonly unknown[], context: PathContext): Promise<unknown> {
  const store = context.tables?.[name];
  if (!store || !(TABLE_OPS as readonly string[]).includes(op)) throw unknownPath(path, Object.keys(context.tables ?? {}));
  switch (op as (typeof TABLE_OPS)[number]) {
    case "get":
      return store.get(str(path, "id", args[0]));
    case "list":
      return store.list(obj(path, "options", args[0]));
    case "query":
      return store.query(obj(path, "options", args[0]));
    case "count":
      return store.count(obj(path, "filter", args[0]));
  }
}

function unknownPath(path: string, tables: readonly string[]) {
  const known = knownPaths(tables);
  const near = nearest(path, known);
  return dgentError("DGENT_UNKNOWN_PATH", `unknown path ${JSON.stringify(path)}${near ? `; did you mean ${near}?` : ""}`, {
    details: { path, ...(near ? { nearest: near } : {}) },
  });
}

function describeArgs(args: readonly string[]): string {
  if (args.length === 0) return "no arguments";
  return args.map((a) => (a.endsWith("?") ? `[${a.slice(0, -1)}]` : a)).join(", ");
}

export type { Datum };
