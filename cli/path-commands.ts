/**
 * `dgent path PATH [ARG...]`: runs a `self.data.*` path through the same table as the API
 * (patterns/paths), so the CLI and `invokePath` cannot drift apart. An argument that parses as a
 * JSON object, array, number, boolean or null is passed as that value; anything else as a string.
 * The result is printed as JSON (datums with their content as text, or base64 when not UTF-8).
 */
import type { Datum } from "../core/datum.js";
import { printJson, usage, type Command, type Context } from "./command.js";
import { datumJson } from "./format.js";

function argument(text: string): unknown {
  if (/^\s*[[{\d"-]|^(true|false|null)$/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

function isDatum(value: unknown): value is Datum {
  return typeof value === "object" && value !== null && (value as { content?: unknown }).content instanceof Uint8Array && typeof (value as { id?: unknown }).id === "string";
}

/** Datums anywhere in a result, made JSON-friendly. */
function jsonable(value: unknown): unknown {
  if (isDatum(value)) return datumJson(value);
  if (Array.isArray(value)) return value.map(jsonable);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonable(v)]));
  }
  return value;
}

async function pathCommand(ctx: Context): Promise<number> {
  const [path, ...rest] = ctx.positionals;
  if (path === undefined) throw usage("path needs a path, e.g. dgent path self.data.chain ID");
  const { invokePath } = await import("../patterns/paths/index.js"); // only this command needs it
  const result = await invokePath(path, rest.map(argument), { store: await ctx.store() });
  printJson(ctx.io, jsonable(result) ?? null, ctx.json ? undefined : 2);
  return 0;
}

export const PATH_COMMANDS: Record<string, Command> = {
  path: {
    summary: "run a self.data.* path (self.data.get ID, self.data.query '{\"where\":…}', …) and print the result as JSON",
    usage: "dgent path PATH [ARG...]   (an ARG that parses as JSON is passed as that value)",
    options: {},
    run: pathCommand,
  },
};
