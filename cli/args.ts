/**
 * How a command line is read: the options every command takes (`GLOBAL`), the options given
 * before the command, and the strict parse of what follows with a command's own options. Shared
 * by `run` (cli/commands.ts) and `dgent get`'s direct read (cli/fast-get.ts), so both read a
 * command line the same way. What does not parse is a `CommandLineError`, which `run` reports as
 * a usage error (`DGENT_USAGE`, exit 2): this module loads none of dgent's error machinery.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { quoted, safe } from "./terminal.js";

/** A command line that does not parse; `run` turns it into `DGENT_USAGE` with the same message. */
export class CommandLineError extends Error {}

const usage = (message: string) => new CommandLineError(message);

export const GLOBAL = {
  config: { type: "string" },
  namespace: { type: "string", short: "n" },
  "data-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/**
 * The options before the command (`dgent --namespace x list`), the command, and what follows it.
 * Only the options every command takes may come first; their values are checked with the rest.
 */
export function splitCommand(argv: readonly string[]): { leading: string[]; name: string | undefined; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const match = /^--([^=]+)(=.*)?$/.exec(arg);
    const spec = match ? (GLOBAL as Record<string, { type: string; short?: string }>)[match[1] as string] : Object.values(GLOBAL).find((o) => "short" in o && `-${o.short}` === arg.slice(0, 2));
    if (!spec) {
      throw usage(`unknown option ${quoted(arg)} before the command; only ${Object.keys(GLOBAL).map((k) => `--${k}`).join(", ")} may come first (dgent --help)`);
    }
    leading.push(arg);
    const inline = match ? match[2] !== undefined : arg.length > 2;
    if (spec.type === "string" && !inline) {
      const value = argv[i + 1];
      if (value === undefined) throw usage(`${arg} needs a value`);
      leading.push(value);
      i++;
    }
  }
  return { leading, name: argv[i], rest: argv.slice(i + 1) };
}

/**
 * The options and positionals of `args` (the options before the command, then what follows it)
 * with the global options and the command's own; a usage error for an unknown option, a missing
 * value or an option given twice with different values.
 */
export function parseCommandLine(args: readonly string[], commandOptions: ParseArgsConfig["options"], usageText: string): { positionals: string[]; values: Record<string, string | boolean | string[] | undefined> } {
  let parsed: ReturnType<typeof parseArgs>;
  const options = { ...GLOBAL, ...commandOptions };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    throw usage(`${safe((error as Error).message.replace(/\. To specify.*$/s, ""))}; usage: ${usageText}`);
  }
  refuseRepeats(parsed.tokens ?? [], options, usageText);
  return { positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | string[] | undefined> };
}

/** An option given twice is refused unless it may repeat (`--meta`): which one was meant is not for dgent to guess. */
function refuseRepeats(tokens: NonNullable<ReturnType<typeof parseArgs>["tokens"]>, options: ParseArgsConfig["options"], usageText: string): void {
  const seen = new Map<string, string | undefined>();
  for (const token of tokens) {
    if (token.kind !== "option" || (options?.[token.name] as { multiple?: boolean } | undefined)?.multiple) continue;
    if (seen.has(token.name) && seen.get(token.name) !== token.value) {
      throw usage(`--${token.name} is given twice with different values; give it once. Usage: ${usageText}`);
    }
    seen.set(token.name, token.value);
  }
}
