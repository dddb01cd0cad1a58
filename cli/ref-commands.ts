import type { Ref, RefExpectation, ReflogEntry } from "../core/refs.js";
import { type Command, type Context, print, printJson, quoted, usage } from "./command.js";

/**
 * `--expect` on the command line: a version number (`3`), `absent` (the ref must not exist), or
 * `target:<id>` (the ref must point at that datum).
 */
export function parseExpect(value: string | boolean | string[] | undefined): RefExpectation | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw usage("--expect takes a version number, absent, or target:<id>");
  if (value === "absent") return { absent: true };
  if (/^[1-9]\d*$/.test(value)) return { version: Number(value) };
  if (value.startsWith("target:") && value.length > "target:".length) return { target: value.slice("target:".length) };
  throw usage(`--expect takes a version number, absent, or target:<id>; got ${quoted(value)}`);
}

const refLine = (r: Ref) => `${r.name}  ${r.target}  version ${r.version}  ${new Date(r.updatedAt).toISOString()}`;
const logLine = (e: ReflogEntry) => `${new Date(e.at).toISOString()}  ${e.from ?? "(created)"} → ${e.to ?? "(deleted)"}  version ${e.version}  by ${e.by}`;

function args(ctx: Context, count: number, shape: string): string[] {
  const rest = ctx.positionals.slice(1);
  if (rest.length !== count) throw usage(`usage: dgent ref ${shape}`);
  return rest;
}

async function refCommand(ctx: Context): Promise<number> {
  const sub = ctx.positionals[0];
  const store = await ctx.store();
  const expect = parseExpect(ctx.values.expect);
  if (expect !== undefined && sub !== "set" && sub !== "delete") throw usage("--expect applies to ref set and ref delete");
  switch (sub) {
    case "get": {
      const [name] = args(ctx, 1, "get NAME") as [string];
      const ref = await store.refs.get(name);
      if (ctx.json) printJson(ctx.io, ref);
      else if (ref === null) print(ctx.io, `no ref ${quoted(name)}`);
      else print(ctx.io, refLine(ref));
      return ref === null ? 1 : 0;
    }
    case "set": {
      const [name, target] = args(ctx, 2, "set NAME TARGET [--expect VERSION|absent|target:ID]") as [string, string];
      const ref = await store.refs.set(name, target, expect ? { expect } : {});
      if (ctx.json) printJson(ctx.io, ref);
      else print(ctx.io, refLine(ref));
      return 0;
    }
    case "delete": {
      const [name] = args(ctx, 1, "delete NAME [--expect VERSION|absent|target:ID]") as [string];
      const existed = await store.refs.delete(name, expect ? { expect } : {});
      if (ctx.json) printJson(ctx.io, { name, existed });
      else print(ctx.io, existed ? `deleted ${name}` : `no ref ${quoted(name)}`);
      return existed ? 0 : 1;
    }
    case "list": {
      const rest = ctx.positionals.slice(1);
      if (rest.length > 1) throw usage("usage: dgent ref list [PREFIX]");
      const refs = await store.refs.list(rest[0] ?? "");
      if (ctx.json) printJson(ctx.io, refs);
      else if (refs.length) print(ctx.io, refs.map(refLine).join("\n"));
      return 0;
    }
    case "log": {
      const [name] = args(ctx, 1, "log NAME") as [string];
      const log = await store.refs.log(name);
      if (ctx.json) printJson(ctx.io, log);
      else if (log.length) print(ctx.io, log.map(logLine).join("\n"));
      return 0;
    }
    default:
      throw usage(sub === undefined ? "ref needs a subcommand: get, set, delete, list or log" : `unknown ref subcommand ${quoted(sub)}; use get, set, delete, list or log`);
  }
}

export const REF_COMMANDS: Record<string, Command> = {
  ref: {
    summary: "read and move refs by compare-and-set (get, set, delete, list, log)",
    usage: "dgent ref (get NAME | set NAME TARGET | delete NAME | list [PREFIX] | log NAME) [--expect VERSION|absent|target:ID] [--json]",
    options: { expect: { type: "string" } },
    run: refCommand,
  },
};
