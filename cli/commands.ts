import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { makeDatum } from "../core/datum.js";
import { createStoreFromConfig } from "../core/config/compose.js";
import { openDefaultStore } from "../core/default-store.js";
import { dgentError, isDgentError } from "../core/errors.js";
import { nearest } from "../core/registry.js";
import type { Store } from "../core/store.js";
import { backendText, chainText, datumJson, datumTable } from "./format.js";
import { CONFIG_COMMANDS, configFor, overrides } from "./config-commands.js";
import { LATTICE_COMMANDS } from "./lattice-commands.js";

export interface Io {
  stdout(chunk: string | Uint8Array): unknown;
  stderr(chunk: string): unknown;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

const GLOBAL = {
  config: { type: "string" },
  namespace: { type: "string", short: "n" },
  "data-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export interface Command {
  summary: string;
  usage: string;
  options: ParseArgsConfig["options"];
  run(ctx: Context): Promise<number>;
}

export interface Context {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  io: Io;
  json: boolean;
  store(): Promise<Store>;
}

export const print = (io: Io, text: string) => io.stdout(`${text}\n`);

export function usage(message: string): Error {
  return dgentError("DGENT_USAGE", message, { unit: "cli" });
}

function one(ctx: Context, what: string): string {
  const [value, extra] = ctx.positionals;
  if (value === undefined) throw usage(`missing ${what}; see \`dgent ${ctx.values.__command} --help\``);
  if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}`);
  return value;
}

async function readStdin(stdin: Io["stdin"]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function parseMeta(pairs: readonly string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usage(`--meta takes key=value, got ${JSON.stringify(pair)}`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return metadata;
}

function parseAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw usage(`--after takes epoch milliseconds or an ISO date, got ${JSON.stringify(value)}`);
  return ms;
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usage(`--limit takes a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

export const COMMANDS: Record<string, Command> = {
  put: {
    summary: "store content (an argument, a file or stdin) and print the new id",
    usage: "dgent put [CONTENT] [--file PATH] [--parent ID] [--meta k=v]... [--id ID | --content-id] [--id-prefix P]",
    options: {
      parent: { type: "string", short: "p" },
      meta: { type: "string", short: "m", multiple: true },
      id: { type: "string" },
      "content-id": { type: "boolean" },
      "id-prefix": { type: "string" },
      file: { type: "string", short: "f" },
    },
    async run(ctx) {
      const [text, extra] = ctx.positionals;
      if (extra !== undefined) throw usage(`put takes one CONTENT argument; quote it, or pipe it on stdin`);
      const file = ctx.values.file as string | undefined;
      if (text !== undefined && file !== undefined) throw usage("give CONTENT or --file, not both");
      let content: Uint8Array;
      if (file !== undefined) {
        try {
          content = readFileSync(file);
        } catch (error) {
          throw usage(`cannot read --file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
      } else if (text !== undefined) content = Buffer.from(text, "utf8");
      else if (ctx.io.stdin.isTTY) throw usage("nothing to store: give CONTENT, --file PATH, or pipe data on stdin");
      else content = await readStdin(ctx.io.stdin);
      const store = await ctx.store();
      const parent = ctx.values.parent as string | undefined;
      const datum = makeDatum({
        content,
        causalParent: parent ?? null,
        metadata: parseMeta((ctx.values.meta as string[] | undefined) ?? []),
        ...(ctx.values.id !== undefined ? { id: ctx.values.id as string } : {}),
        ...(ctx.values["content-id"] ? { idStrategy: "content" as const } : {}),
        ...(ctx.values["id-prefix"] !== undefined ? { idPrefix: ctx.values["id-prefix"] as string } : {}),
      });
      if (parent !== undefined && (await store.get(parent)) === null) {
        ctx.io.stderr(`dgent: warning: parent ${parent} is not stored; the chain will stop there\n`);
      }
      const id = await store.put(datum);
      print(ctx.io, ctx.json ? JSON.stringify({ id }) : id);
      return 0;
    },
  },
  get: {
    summary: "write a datum's raw bytes to stdout (--json: the whole datum)",
    usage: "dgent get ID [--json]",
    options: {},
    async run(ctx) {
      const id = one(ctx, "ID");
      const datum = await (await ctx.store()).get(id);
      if (datum === null) {
        if (ctx.json) print(ctx.io, "null");
        ctx.io.stderr(`dgent: no datum with id ${JSON.stringify(id)}\n`);
        return 1;
      }
      if (ctx.json) print(ctx.io, JSON.stringify(datumJson(datum)));
      else ctx.io.stdout(datum.content);
      return 0;
    },
  },
  delete: {
    summary: "delete a datum; exit 1 when there was none",
    usage: "dgent delete ID [--json]",
    options: {},
    async run(ctx) {
      const id = one(ctx, "ID");
      const existed = await (await ctx.store()).delete(id);
      if (ctx.json) print(ctx.io, JSON.stringify({ id, deleted: existed }));
      else if (existed) print(ctx.io, `deleted ${id}`);
      else ctx.io.stderr(`dgent: no datum with id ${JSON.stringify(id)}\n`);
      return existed ? 0 : 1;
    },
  },
  list: {
    summary: "list datums, newest first",
    usage: "dgent list [--prefix P] [--after MS|ISO-DATE] [--limit N] [--json]",
    options: { prefix: { type: "string" }, after: { type: "string" }, limit: { type: "string", short: "l" } },
    async run(ctx) {
      if (ctx.positionals.length) throw usage(`list takes no arguments; did you mean --prefix ${ctx.positionals[0]}?`);
      const after = parseAfter(ctx.values.after as string | undefined);
      const limit = parseLimit(ctx.values.limit as string | undefined);
      const datums = await (await ctx.store()).list({
        ...(ctx.values.prefix !== undefined ? { prefix: ctx.values.prefix as string } : {}),
        ...(after !== undefined ? { after } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
      print(ctx.io, ctx.json ? JSON.stringify(datums.map(datumJson)) : datumTable(datums));
      return 0;
    },
  },
  chain: {
    summary: "print a datum's causal chain, oldest first",
    usage: "dgent chain ID [--json]",
    options: {},
    async run(ctx) {
      const id = one(ctx, "ID");
      const chain = await (await ctx.store()).causalChain(id);
      print(ctx.io, ctx.json ? JSON.stringify(chain.map(datumJson)) : chainText(chain));
      return chain.length === 0 ? 1 : 0;
    },
  },
  ...LATTICE_COMMANDS,
  ...CONFIG_COMMANDS,
  backend: {
    summary: "show the tiers, their ranks, which one writes land on, counts and pending promotions",
    usage: "dgent backend [--json]",
    options: {},
    async run(ctx) {
      if (ctx.positionals.length) throw usage("backend takes no arguments");
      const report = await (await ctx.store()).backend();
      print(ctx.io, ctx.json ? JSON.stringify(report, null, 2) : backendText(report));
      return 0;
    },
  },
};

function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "dgent — persistence for agents. Data lives in SQLite under $XDG_DATA_HOME/dgent unless a config file says otherwise.",
    "",
    "Usage: dgent <command> [options]",
    "",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    `  ${"bench".padEnd(width)}  measure every tier against the raw drivers and peer libraries (dgent bench --help)`,
    "",
    "Options for every command:",
    "  --config PATH        the config file (default: $DGENT_CONFIG, else dgent.config.json|yaml|yml here)",
    "  -n, --namespace NS   the store to use (default: $DGENT_NAMESPACE or \"default\")",
    "  --data-dir DIR       where local tiers keep files (default: $XDG_DATA_HOME/dgent)",
    "  --json               machine-readable output",
    "  -h, --help           help for a command",
    "",
    "Environment (without a config file): DGENT_BACKEND (memory|jsonl|sqlite), DGENT_DATABASE_URL (sqlite:///path.db), XDG_DATA_HOME.",
  ].join("\n");
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * The store of this command line: composed from the config file when there is one (`--config`,
 * `DGENT_CONFIG`, `dgent.config.*` here), else the embedded default.
 */
async function openStore(ctx: Context): Promise<Store> {
  const found = configFor(ctx);
  if (!found) return openDefaultStore({ env: ctx.io.env, ...overrides(ctx) });
  const forced = ctx.io.env.DGENT_BACKEND || ctx.io.env.KGENTS_DGENT_BACKEND;
  if (forced) ctx.io.stderr(`dgent: warning: DGENT_BACKEND=${forced} is ignored: ${found.path} chooses the tiers\n`);
  const store = await createStoreFromConfig(found.path, { env: ctx.io.env, ...overrides(ctx) });
  await store.open();
  return store;
}

/** Runs one command line; returns the exit code. Throws DgentErrors for the caller to print. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    print(io, helpText());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    print(io, version());
    return 0;
  }
  if (name === "bench") {
    // Loaded only when asked for: the benchmark and its peer libraries stay off every other path.
    const { runBench } = await import("../benchmarks/cli.js");
    return runBench(rest, {
      stdout: (chunk) => io.stdout(chunk),
      stderr: (chunk) => io.stderr(chunk),
      env: io.env,
      stderrIsTTY: process.stderr.isTTY === true,
    });
  }
  const command = COMMANDS[name];
  if (!command) {
    const near = nearest(name, Object.keys(COMMANDS));
    throw usage(`unknown command ${JSON.stringify(name)}${near ? `; did you mean "${near}"?` : ""} (dgent --help lists them)`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], options: { ...GLOBAL, ...command.options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(`${(error as Error).message.replace(/\. To specify.*$/s, "")}; usage: ${command.usage}`);
  }
  const values = { ...parsed.values, __command: name } as Context["values"];
  if (values.help) {
    print(io, `${command.usage}\n\n${command.summary}`);
    return 0;
  }
  let store: Store | null = null;
  const ctx: Context = {
    positionals: parsed.positionals,
    values,
    io,
    json: values.json === true,
    store: async () => (store ??= await openStore(ctx)),
  };
  try {
    return await command.run(ctx);
  } catch (error) {
    if (isDgentError(error)) throw error;
    throw dgentError("DGENT_BACKEND_ERROR", error instanceof Error ? error.message : String(error), { unit: "cli", cause: error });
  } finally {
    const opened = store as Store | null;
    if (opened) await opened.close();
  }
}
