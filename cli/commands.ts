import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dgentError, isDgentError } from "../core/errors.js";
import type { Store } from "../core/store.js";
import { CommandLineError, parseCommandLine, splitCommand } from "./args.js";
import { backendText } from "./format.js";
import { type Command, type Context, type Io, configFor, overrides, print, printJson, quoted, usage } from "./command.js";
import { safe } from "./terminal.js";

export { type Command, type Context, type Io, print, printJson, quoted, usage } from "./command.js";

/**
 * Where each command is implemented, in the order `dgent --help` lists them. A command line loads
 * only its own command's module (and what that imports); `dgent --help` and `allCommands()` load
 * every one. cli/commands.test.ts checks this index against the modules' tables.
 */
const MODULES = {
  query: async () => (await import("./query-commands.js")).QUERY_COMMANDS,
  lattice: async () => (await import("./lattice-commands.js")).LATTICE_COMMANDS,
  retention: async () => (await import("./retention-commands.js")).RETENTION_COMMANDS,
  ref: async () => (await import("./ref-commands.js")).REF_COMMANDS,
  search: async () => (await import("./search-commands.js")).SEARCH_COMMANDS,
  path: async () => (await import("./path-commands.js")).PATH_COMMANDS,
  config: async () => (await import("./config-commands.js")).CONFIG_COMMANDS,
  serve: async () => (await import("./serve-commands.js")).SERVE_COMMANDS,
  backup: async () => (await import("./backup-commands.js")).BACKUP_COMMANDS,
  crypt: async () => (await import("./crypt-commands.js")).CRYPT_COMMANDS,
} as const satisfies Record<string, () => Promise<Record<string, Command>>>;

/** Every command's name and the module that defines it (`own`: this file), in help order. */
export const COMMAND_INDEX: Readonly<Record<string, keyof typeof MODULES | "own">> = {
  put: "own",
  get: "query",
  delete: "query",
  list: "query",
  count: "query",
  children: "query",
  chain: "query",
  upgrade: "lattice",
  migrate: "lattice",
  retention: "retention",
  ref: "ref",
  search: "search",
  reindex: "search",
  path: "path",
  config: "config",
  init: "config",
  serve: "serve",
  backup: "backup",
  restore: "backup",
  verify: "crypt",
  rekey: "crypt",
  backend: "own",
};

async function readStdin(stdin: Io["stdin"]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function parseMeta(pairs: readonly string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usage(`--meta takes key=value, got ${quoted(pair)}`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return metadata;
}

/** The commands defined here; the rest are in the modules of `MODULES`. */
const OWN_COMMANDS: Record<string, Command> = {
  put: {
    summary: "store content (an argument, a file or stdin) and print the new id",
    usage: "dgent put [CONTENT] [--file PATH] [--parent ID] [--meta k=v]... [--id ID | --content-id] [--id-prefix P] [--allow-empty]",
    options: {
      parent: { type: "string", short: "p" },
      meta: { type: "string", short: "m", multiple: true },
      id: { type: "string" },
      "content-id": { type: "boolean" },
      "id-prefix": { type: "string" },
      file: { type: "string", short: "f" },
      "allow-empty": { type: "boolean" },
    },
    async run(ctx) {
      const [text, extra] = ctx.positionals;
      if (extra !== undefined) throw usage(`put takes one CONTENT argument; quote it, or pipe it on stdin`);
      const file = ctx.values.file as string | undefined;
      if (text !== undefined && file !== undefined) throw usage("give CONTENT or --file, not both");
      if (ctx.values.id !== undefined && ctx.values["content-id"]) throw usage("give --id or --content-id, not both: --id names the datum, --content-id derives its id from the content");
      if (ctx.values.id !== undefined && ctx.values["id-prefix"] !== undefined) throw usage("--id-prefix applies to generated ids; with --id, write the prefix into the id");
      let content: Uint8Array;
      let from: string;
      if (file !== undefined) {
        try {
          content = readFileSync(file);
        } catch (error) {
          throw usage(`cannot read --file ${safe(file)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
        from = `--file ${safe(file)} is empty`;
      } else if (text !== undefined) {
        content = Buffer.from(text, "utf8");
        from = "CONTENT is an empty string";
      } else if (ctx.io.stdin.isTTY) throw usage("nothing to store: give CONTENT, --file PATH, or pipe data on stdin");
      else {
        content = await readStdin(ctx.io.stdin);
        from = "stdin gave 0 bytes";
      }
      // An empty datum is more often a broken pipe or an unset variable than a wish.
      if (content.byteLength === 0 && !ctx.values["allow-empty"]) throw usage(`nothing to store: ${from}; --allow-empty stores an empty datum`);
      const store = await ctx.store();
      const parent = ctx.values.parent as string | undefined;
      const { makeDatum } = await import("../core/datum.js");
      const datum = makeDatum({
        content,
        causalParent: parent ?? null,
        metadata: parseMeta((ctx.values.meta as string[] | undefined) ?? []),
        ...(ctx.values.id !== undefined ? { id: ctx.values.id as string } : {}),
        ...(ctx.values["content-id"] ? { idStrategy: "content" as const } : {}),
        ...(ctx.values["id-prefix"] !== undefined ? { idPrefix: ctx.values["id-prefix"] as string } : {}),
      });
      if (parent !== undefined && (await store.get(parent)) === null) {
        ctx.io.stderr(`dgent: warning: parent ${quoted(parent)} is not stored; the chain will stop there\n`);
      }
      const id = await store.put(datum);
      if (ctx.json) printJson(ctx.io, { id });
      else print(ctx.io, id);
      return 0;
    },
  },
  backend: {
    summary: "show the tiers, their ranks, which one writes land on, counts and pending promotions",
    usage: "dgent backend [--json]",
    options: {},
    async run(ctx) {
      if (ctx.positionals.length) throw usage("backend takes no arguments");
      const report = await (await ctx.store()).backend();
      if (ctx.json) printJson(ctx.io, report, 2);
      else print(ctx.io, backendText(report));
      return 0;
    },
  },
};

/** One command, with only its own module loaded; undefined for a name that is no command. */
async function loadCommand(name: string): Promise<Command | undefined> {
  if (!Object.hasOwn(COMMAND_INDEX, name)) return undefined;
  const where = COMMAND_INDEX[name];
  const table = where === undefined || where === "own" ? OWN_COMMANDS : await MODULES[where]();
  return table[name];
}

/** Every command, by name, in help order (loads every command module). */
export async function allCommands(): Promise<Record<string, Command>> {
  const all: Record<string, Command> = {};
  for (const name of Object.keys(COMMAND_INDEX)) {
    const command = await loadCommand(name);
    if (command) all[name] = command;
  }
  return all;
}

async function helpText(): Promise<string> {
  const COMMANDS = await allCommands();
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    "dgent — persistence for agents. Data lives in SQLite under $XDG_DATA_HOME/dgent unless a config file says otherwise.",
    "",
    "Usage: dgent <command> [options]   (options may also come before the command)",
    "",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    `  ${"bench".padEnd(width)}  measure every tier against the raw drivers and peer libraries (dgent bench --help)`,
    "",
    "Options for every command (an option given twice with different values is refused):",
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
  // The kernel loads here, not with this module: `dgent get`'s direct read (cli/fast-get.ts) needs none of it.
  if (!found) return (await import("../compose/default-store.js")).openDefaultStore({ env: ctx.io.env, ...overrides(ctx) });
  const forced = ctx.io.env.DGENT_BACKEND || ctx.io.env.KGENTS_DGENT_BACKEND;
  if (forced) ctx.io.stderr(`dgent: warning: DGENT_BACKEND=${safe(forced)} is ignored: ${safe(found.path)} chooses the tiers\n`);
  // The config machinery (parsing, validation, modules) loads only when there is a config file.
  const { createStoreFromConfig } = await import("../compose/config/compose.js");
  const store = await createStoreFromConfig(found.path, { env: ctx.io.env, ...overrides(ctx) });
  await store.open();
  return store;
}

/** Runs one command line; returns the exit code. Throws DgentErrors for the caller to print. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  if (argv[0] === "--version" || argv[0] === "-v") {
    print(io, version());
    return 0;
  }
  const { leading, name, rest: after } = commandLine(() => splitCommand(argv));
  if (name === undefined || name === "help") {
    print(io, await helpText());
    return name === undefined && !leading.includes("--help") && !leading.includes("-h") ? 2 : 0;
  }
  // Options given before the command count as if given after it.
  const rest = [...leading, ...after];
  if (name === "bench") {
    const runBench = await loadBench();
    return runBench(rest, {
      stdout: (chunk) => io.stdout(chunk),
      stderr: (chunk) => io.stderr(chunk),
      env: io.env,
      stderrIsTTY: process.stderr.isTTY === true,
    });
  }
  const command = await loadCommand(name);
  if (!command) {
    const near = (await import("../core/registry.js")).nearest(name, Object.keys(COMMAND_INDEX));
    throw usage(`unknown command ${quoted(name)}${near ? `; did you mean "${near}"?` : ""} (dgent --help lists them)`);
  }
  const parsed = commandLine(() => parseCommandLine(rest, command.options, command.usage));
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

/** `read`'s answer; a command line that does not parse is a usage error with its message. */
function commandLine<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof CommandLineError) throw usage(error.message);
    throw error;
  }
}

/** What the benchmark's entry point (`benchmarks/cli.ts`) exports for `dgent bench`. */
type RunBench = (
  args: readonly string[],
  io: { stdout(chunk: string): void; stderr(chunk: string): void; env: NodeJS.ProcessEnv; stderrIsTTY: boolean },
) => Promise<number>;

/**
 * The benchmark is found beside the build at run time, not imported: the CLI does not depend on
 * it, and its peer libraries stay off every other path. A build without it says so.
 */
async function loadBench(): Promise<RunBench> {
  const entry = new URL("../benchmarks/cli.js", import.meta.url);
  let mod: { runBench?: RunBench };
  try {
    mod = (await import(entry.href)) as { runBench?: RunBench };
  } catch (error) {
    throw dgentError("DGENT_MISSING_DEPENDENCY", `dgent bench needs the benchmark beside the CLI (${fileURLToPath(entry)}), and it could not be loaded: ${(error as Error).message}`, {
      unit: "cli",
      cause: error,
    });
  }
  if (typeof mod.runBench !== "function") {
    throw dgentError("DGENT_MISSING_DEPENDENCY", `${fileURLToPath(entry)} does not export runBench`, { unit: "cli" });
  }
  return mod.runBench;
}
