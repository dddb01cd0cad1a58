import { existsSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { ResolvedConfig } from "../compose/config/compose.js";
import { CONFIG_FILE_NAMES } from "../compose/config/find.js";
import { redactConfig, redactText } from "../compose/config/redact.js";
import { defaultTiers, resolveEnvironment } from "../compose/default-store.js";
import { dgentError, isDgentError } from "../core/errors.js";
import type { Command, Context } from "./command.js";
import { configFor, overrides, print, printJson, usage } from "./command.js";

export { configFor, overrides } from "./command.js";
import { safe, safeYaml } from "./terminal.js";
import { ARCHIVE_TIERS, INIT_PROFILES, initTemplate, type ArchiveTier, type InitProfile } from "./init-templates.js";

function notFound(): Error {
  return dgentError(
    "DGENT_CONFIG_NOT_FOUND",
    `no config file: --config is not given, DGENT_CONFIG is not set, and there is no ${CONFIG_FILE_NAMES.join(", ")} in ${process.cwd()} (dgent init writes one)`,
    { unit: "cli" },
  );
}

/** What `config print` shows: the config as dgent will use it, defaults filled in. */
function effective(r: ResolvedConfig): Record<string, unknown> {
  return {
    version: 1,
    namespace: r.namespace,
    dataDir: r.dataDir,
    ...(r.modules.length ? { modules: r.modules.map((m) => m.specifier) } : {}),
    tiers: r.tiers.map((t) => ({ adapter: t.adapter, options: t.options })),
    landing: r.landing,
    upgrader: r.upgrader,
    ...(r.journalPath !== null ? { journalPath: r.journalPath } : {}),
    ...(r.storeOptions.probeBackoffMs ? { probeBackoffMs: r.storeOptions.probeBackoffMs } : {}),
    ...(r.storeOptions.maxChainDepth !== undefined ? { maxChainDepth: r.storeOptions.maxChainDepth } : {}),
    plugins: r.plugins.map((p) => ({ plugin: p.plugin, options: p.options })),
    ...(r.retention.length ? { retention: r.retention } : {}),
  };
}

/** The embedded default as a config, for `config print` without a file. */
async function embedded(ctx: Context): Promise<Record<string, unknown>> {
  const env = resolveEnvironment(ctx.io.env, overrides(ctx));
  const tiers = await defaultTiers(env);
  return {
    version: 1,
    namespace: env.namespace,
    dataDir: env.dataDir,
    tiers: tiers.map((t) => ({ adapter: t.adapter, options: t.options })),
    landing: tiers[0]?.adapter,
    ...(tiers.length > 1 ? { journalPath: join(env.dataDir, `${env.namespace}.pending-deletes.jsonl`) } : {}),
    plugins: [],
  };
}

/** Reading and checking a config file: loaded by the commands that do, not at start-up. */
async function resolveConfig(...args: Parameters<typeof import("../compose/config/compose.js").resolveConfig>): Promise<ResolvedConfig> {
  return (await import("../compose/config/compose.js")).resolveConfig(...args);
}

async function validate(ctx: Context): Promise<number> {
  const found = configFor(ctx);
  if (!found) throw notFound();
  let r: ResolvedConfig;
  try {
    r = await resolveConfig(found.path, { env: ctx.io.env, ...overrides(ctx) });
  } catch (error) {
    // Every problem on its own line; the first comes last, from the error itself.
    const problems = isDgentError(error) ? (error.details.problems as { path: string; message: string; line?: number; column?: number }[] | undefined) : undefined;
    for (const p of (problems ?? []).slice(1)) {
      ctx.io.stderr(`dgent: also ${safe(redactText(`${found.path}${p.line ? `:${p.line}:${p.column}` : ""}: ${p.path}: ${p.message}`))}\n`);
    }
    throw error;
  }
  if (ctx.json) {
    printJson(
      ctx.io,
      redactConfig({
        ok: true,
        file: found.path,
        via: found.via,
        namespace: r.namespace,
        landing: r.landing,
        tiers: r.tiers.map((t) => ({ adapter: t.adapter, rank: t.rank })),
        plugins: r.plugins.map((p) => p.plugin),
        modules: r.modules.map((m) => ({ specifier: m.specifier, file: m.file, range: m.range, adapters: m.adapters, plugins: m.plugins })),
        variables: [...r.variables].sort(),
      }),
    );
    return 0;
  }
  const lines = [
    `ok: ${found.path} (found via ${found.via})`,
    `  namespace: ${r.namespace}`,
    `  tiers:     ${r.tiers.map((t) => `${t.adapter} (rank ${t.rank}${t.adapter === r.landing ? ", landing" : ""})`).join(" → ")}`,
    `  plugins:   ${r.plugins.map((p) => p.plugin).join(", ") || "none"}`,
    ...(r.retention.length ? [`  retention: ${r.retention.length} ${r.retention.length === 1 ? "policy" : "policies"} (dgent retention plan shows what they do)`] : []),
    ...r.modules.map((m) => `  module:    ${redactText(m.specifier)} → ${[...m.adapters.map((a) => `adapter ${a}`), ...m.plugins.map((p) => `plugin ${p}`)].join(", ")} (dgent ${m.range})`),
    ...(r.variables.size ? [`  reads:     ${[...r.variables].sort().join(", ")}`] : []),
  ];
  print(ctx.io, lines.join("\n"));
  return 0;
}

async function printConfig(ctx: Context): Promise<number> {
  const found = configFor(ctx);
  const body = redactConfig(found ? effective(await resolveConfig(found.path, { env: ctx.io.env, ...overrides(ctx) })) : await embedded(ctx));
  if (ctx.json) {
    printJson(ctx.io, body, 2);
    return 0;
  }
  const header = found
    ? `# resolved from ${found.path} (found via ${found.via}); secrets redacted`
    : "# no config file: the embedded default (DGENT_DATABASE_URL and DGENT_BACKEND decide); secrets redacted";
  ctx.io.stdout(`${safe(header)}\n${safeYaml(body)}`);
  return 0;
}

export const CONFIG_COMMANDS: Record<string, Command> = {
  config: {
    summary: "check the config file (validate) or show it resolved, secrets redacted (print)",
    usage: "dgent config (validate | print) [--config PATH] [--json]",
    options: {},
    async run(ctx) {
      const [sub, extra] = ctx.positionals;
      if (extra !== undefined) throw usage(`unexpected argument ${JSON.stringify(extra)}`);
      if (sub === "validate") return validate(ctx);
      if (sub === "print") return printConfig(ctx);
      throw usage(sub === undefined ? "config needs a subcommand: validate or print" : `unknown config subcommand ${JSON.stringify(sub)}; use validate or print`);
    },
  },
  init: {
    summary: "write a commented starter config (profiles: embedded, team-postgres, production)",
    usage: "dgent init [--profile embedded|team-postgres|production] [--archive s3|gcs] [--output PATH | --stdout] [--force]",
    options: {
      profile: { type: "string" },
      archive: { type: "string" },
      output: { type: "string", short: "o" },
      stdout: { type: "boolean" },
      force: { type: "boolean" },
    },
    async run(ctx) {
      if (ctx.positionals.length) throw usage(`init takes no arguments; did you mean --profile ${ctx.positionals[0]}?`);
      const profile = (ctx.values.profile as string | undefined) ?? "embedded";
      if (!INIT_PROFILES.includes(profile as InitProfile)) throw usage(`--profile takes ${INIT_PROFILES.join(", ")}; got ${JSON.stringify(profile)}`);
      const archive = (ctx.values.archive as string | undefined) ?? "s3";
      if (!ARCHIVE_TIERS.includes(archive as ArchiveTier)) throw usage(`--archive takes ${ARCHIVE_TIERS.join(" or ")}; got ${JSON.stringify(archive)}`);
      if (ctx.values.archive !== undefined && profile !== "production") throw usage("--archive applies to --profile production only");
      const text = initTemplate(profile as InitProfile, archive as ArchiveTier);
      if (ctx.values.stdout) {
        if (ctx.values.output !== undefined) throw usage("give --output or --stdout, not both");
        if (ctx.values.force) throw usage("--force overwrites a file; --stdout writes none");
        ctx.io.stdout(text);
        return 0;
      }
      const file = resolve((ctx.values.output as string | undefined) ?? "dgent.config.yaml");
      if (existsSync(file) && !ctx.values.force) throw usage(`${file} already exists; --force overwrites it`);
      if (ctx.values.output === undefined) {
        const rival = CONFIG_FILE_NAMES.map((n) => resolve(n)).find((p) => p !== file && existsSync(p));
        if (rival && !ctx.values.force) throw usage(`${basename(rival)} is already here; two config files would compete (--force writes anyway)`);
      }
      writeFileSync(file, text, { flag: ctx.values.force ? "w" : "wx" });
      const next =
        profile === "embedded"
          ? "dgent config validate"
          : profile === "team-postgres"
            ? "export DGENT_DATABASE_URL=postgres://…, then dgent config validate"
            : `export DGENT_DATABASE_URL=postgres://… and ${archive === "s3" ? "DGENT_S3_BUCKET" : "DGENT_GCS_BUCKET"}=…, then dgent config validate`;
      if (ctx.json) printJson(ctx.io, { file, profile, ...(profile === "production" ? { archive } : {}) });
      else print(ctx.io, `wrote ${file} (${profile}${profile === "production" ? `, ${archive} archive` : ""} profile). Next: ${next}`);
      return 0;
    },
  },
};
