/**
 * `dgent backup` (and `backup verify`, `backup drill`, `backup keygen`) and `dgent restore`:
 * the command-line face of `backup/`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_NAMESPACE, defaultDataDir } from "../core/paths.js";
import { backupAll, restoreAll } from "../backup/all.js";
import { backup, type BackupReport } from "../backup/backup.js";
import { generateKeyPair, parseIdentities } from "../backup/codec.js";
import { prune } from "../backup/prune.js";
import { parseTime } from "../backup/read.js";
import { restore, restoreDrill, verifyBackup, type RestoreReport } from "../backup/restore.js";
import type { Compression } from "../backup/format.js";
import type { Command, Context, Io } from "./command.js";
import { print, printJson, usage } from "./command.js";
import { safe } from "./terminal.js";

/** A progress bar on a terminal's stderr; nothing otherwise (and nothing with --json). */
function progress(ctx: Context, label: string): ((done: number, total: number) => void) | undefined {
  const tty = (process.stderr as { isTTY?: boolean }).isTTY === true;
  if (!tty || ctx.json) return undefined;
  const io: Io = ctx.io;
  return (done, total) => {
    const known = total > 0;
    const fraction = known ? Math.min(1, done / total) : 0;
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = known ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%` : "";
    io.stderr(`\r${label} ${bar} ${done}${known ? `/${total}` : ""}`);
    if (known && done >= total) io.stderr("\n");
  };
}

function identities(ctx: Context): string[] {
  const files = (ctx.values.identity as string[] | undefined) ?? [];
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw usage(`cannot read --identity ${safe(file)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    const found = parseIdentities(text);
    if (found.length === 0) throw usage(`--identity ${safe(file)} holds no age identity (a line starting AGE-SECRET-KEY-)`);
    out.push(...found);
  }
  return out;
}

function asOf(ctx: Context): { asOf?: number } {
  const text = ctx.values["as-of"] as string | undefined;
  return text === undefined ? {} : { asOf: parseTime(text) };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function backupText(r: BackupReport): string {
  return [
    `${r.kind} backup ${r.backupId} → ${r.archive}${r.parent ? ` (on ${r.parent})` : ""}`,
    `  cut:         ${new Date(r.cut).toISOString()} (${r.cut})`,
    `  state:       ${r.state} datums, ${r.refs} refs`,
    `  written:     ${r.datums} datums, ${r.deletes} deletes, ${r.chunks} chunks, ${mib(r.rawBytes)} → ${mib(r.storedBytes)}${r.encrypted ? " (encrypted)" : ""}`,
    ...(r.afterCut ? [`  after cut:   ${r.afterCut} datums written during the backup, left for the next one`] : []),
    `  digest:      ${r.stateDigest}`,
    `  took ${(r.durationMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

function restoreText(r: RestoreReport): string {
  return [
    `${r.dryRun ? "dry run: " : ""}${r.chain.length} archive(s) → ${r.to}${r.asOf !== null ? ` as of ${new Date(r.asOf).toISOString()}` : ""} (cut ${new Date(r.cut).toISOString()})`,
    `  every chunk's checksum matches`,
    `  state:             ${r.state} datums`,
    r.dryRun ? `  would write:       ${r.written}` : `  written:           ${r.written}${r.resumedChunks ? ` (resumed after ${r.resumedChunks} chunks)` : ""}`,
    ...(r.dryRun ? [`  already present:   ${r.alreadyPresent}`] : []),
    `  refs:              ${r.refs}${r.refsExact ? ` (${r.refsExact} with their recorded versions and reflogs)` : ""}`,
    `  conflicts:         ${r.conflicts.length}${r.conflicts.length ? ` (first: ${r.conflicts.slice(0, 3).join(", ")})` : ""}`,
    ...(r.expiryNotRestored ? [`  expiry dropped:    ${r.expiryNotRestored} (this dgent cannot store expiry)`] : []),
    ...(r.verified === null ? ["  nothing was changed"] : [`  verified:          ${r.verified ? "yes, the restored datums give the recorded digest" : "NO: the target differs"}`]),
    `  digest:            ${r.stateDigest}`,
    `  took ${(r.durationMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

const READ_OPTIONS = {
  "as-of": { type: "string" },
  identity: { type: "string", multiple: true },
} as const;

export const BACKUP_COMMANDS: Record<string, Command> = {
  backup: {
    summary: "back up a namespace to a .dgbk file, a directory, s3:// or gs:// (incremental, checksummed, optionally encrypted); verify, drill, keygen",
    usage: [
      "dgent backup --from URL --to LOCATION [--incremental | --base ARCHIVE] [--compression brotli|gzip|none] [--recipient age1…]... [--identity FILE]... [--namespace NS] [--json]",
      "dgent backup --all --from URL --to DIR|s3://…|gs://… [--incremental] [--compression …] [--recipient age1…]... [--identity FILE]... [--json]",
      "dgent backup verify LOCATION [--as-of TIME] [--identity FILE]... [--json]",
      "dgent backup drill LOCATION [--as-of TIME] [--identity FILE]... [--scratch URL] [--json]",
      "dgent backup keygen --out FILE [--json]",
      "dgent backup prune LOCATION --keep-full N [--dry-run] [--json]",
    ].join("\n       "),
    options: {
      from: { type: "string" },
      to: { type: "string" },
      incremental: { type: "boolean" },
      all: { type: "boolean" },
      base: { type: "string" },
      compression: { type: "string" },
      recipient: { type: "string", multiple: true },
      scratch: { type: "string" },
      out: { type: "string" },
      "keep-full": { type: "string" },
      "dry-run": { type: "boolean" },
      ...READ_OPTIONS,
    },
    async run(ctx) {
      const [sub, location, extra] = ctx.positionals;
      if (sub === "verify" || sub === "drill") {
        if (!location || extra !== undefined) throw usage(`backup ${sub} takes one LOCATION (a .dgbk file, a directory, s3://… or gs://…)`);
        const common = { from: location, identities: identities(ctx), ...asOf(ctx) };
        if (sub === "verify") {
          const r = await verifyBackup({ ...common, onProgress: progress(ctx, "checking") });
          if (ctx.json) printJson(ctx.io, r);
          else {
            for (const a of r.archives) print(ctx.io, `ok  ${a.archive}  ${a.kind}  cut ${new Date(a.cut).toISOString()}  ${a.chunks} chunks  ${mib(a.storedBytes)}`);
            print(ctx.io, `every checksum matches${r.deep ? `; every chunk decodes and the ${r.state} datums of the state are there (digest ${r.stateDigest})` : "; contents not decoded (encrypted: give --identity to check them too)"}`);
          }
          return 0;
        }
        const r = await restoreDrill({ ...common, ...(ctx.values.scratch !== undefined ? { scratch: ctx.values.scratch as string } : {}), onProgress: progress(ctx, "restoring") });
        if (ctx.json) printJson(ctx.io, r);
        else print(ctx.io, `drill passed: ${r.restored} datums restored into ${r.scratch}; digest ${r.scratchDigest} matches the backup's (verify ${(r.verifyMs / 1000).toFixed(1)} s, restore ${(r.restoreMs / 1000).toFixed(1)} s)`);
        return 0;
      }
      if (sub === "keygen") {
        const out = ctx.values.out as string | undefined;
        if (!out || location !== undefined) throw usage("backup keygen takes --out FILE (the identity file to write) and no other argument");
        const { identity, recipient } = await generateKeyPair();
        writeFileSync(out, `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600, flag: "wx" });
        if (ctx.json) printJson(ctx.io, { identityFile: out, recipient });
        else print(ctx.io, recipient);
        return 0;
      }
      if (sub === "prune") {
        const keep = Number(ctx.values["keep-full"]);
        if (!location || extra !== undefined || !Number.isInteger(keep) || keep < 1) throw usage("backup prune takes one LOCATION (a directory, s3://… or gs://…) and --keep-full N (N ≥ 1)");
        const r = await prune({ from: location, keepFull: keep, dryRun: ctx.values["dry-run"] === true });
        if (ctx.json) printJson(ctx.io, r);
        else {
          for (const name of r.deleted) print(ctx.io, `${r.dryRun ? "would delete" : "deleted"}  ${name}`);
          for (const name of r.leftAlone) print(ctx.io, `left alone    ${name} (unreadable, or its full backup is missing)`);
          print(ctx.io, `kept ${r.kept.length} archives (the newest ${keep} full backups and their increments)`);
        }
        return 0;
      }
      if (ctx.values["dry-run"] !== undefined || ctx.values["keep-full"] !== undefined) throw usage("--dry-run and --keep-full apply to backup prune");
      if (sub !== undefined) throw usage(`unknown backup subcommand ${JSON.stringify(sub)}: verify, drill, keygen or prune (or none, to back up)`);
      if (ctx.values.all === true) {
        if (ctx.values.namespace !== undefined) throw usage("give --all (every namespace of the tier) or --namespace NS, not both");
        if (ctx.values.base !== undefined) throw usage("--base names one archive; with --all, use --incremental (each namespace on its newest archive)");
        const allFrom = (ctx.values.from as string | undefined) ?? (ctx.io.env.DGENT_DATABASE_URL || `sqlite://${(ctx.values["data-dir"] as string | undefined) ?? defaultDataDir(ctx.io.env)}/`);
        const allTo = ctx.values.to as string | undefined;
        if (!allTo) throw usage("backup --all needs --to LOCATION (a directory, s3://… or gs://…)");
        const allCompression = (ctx.values.compression as string | undefined) ?? "brotli";
        if (!["gzip", "brotli", "none"].includes(allCompression)) throw usage("--compression takes brotli, gzip or none (zstd is not in Node 20's zlib)");
        const r = await backupAll({
          from: allFrom,
          to: allTo,
          incremental: ctx.values.incremental === true,
          compression: allCompression as Compression,
          recipients: (ctx.values.recipient as string[] | undefined) ?? [],
          identities: identities(ctx),
          onNamespace: (n) => {
            if (!ctx.json) print(ctx.io, `${n.namespace}: ${n.kind} ${n.backupId}, ${n.state} datums, ${n.refs} refs (${(n.durationMs / 1000).toFixed(1)} s)`);
          },
        });
        if (ctx.json) printJson(ctx.io, r);
        else print(ctx.io, `${r.namespaces.length} namespaces backed up; index ${r.index}`);
        return 0;
      }
      const namespace = (ctx.values.namespace as string | undefined) ?? ctx.io.env.DGENT_NAMESPACE ?? DEFAULT_NAMESPACE;
      // The tier: --from, else DGENT_DATABASE_URL, else the embedded SQLite default of the namespace.
      const from =
        (ctx.values.from as string | undefined) ??
        (ctx.io.env.DGENT_DATABASE_URL || `sqlite://${join((ctx.values["data-dir"] as string | undefined) ?? defaultDataDir(ctx.io.env), `${namespace}.db`)}`);
      const to = ctx.values.to as string | undefined;
      if (!to) throw usage("backup needs --to LOCATION (a .dgbk file, a directory, s3://… or gs://…)");
      if (ctx.values.incremental && ctx.values.base !== undefined) throw usage("give --incremental (on the newest archive at --to) or --base ARCHIVE, not both");
      const compression = (ctx.values.compression as string | undefined) ?? "brotli";
      if (!["gzip", "brotli", "none"].includes(compression)) throw usage("--compression takes brotli, gzip or none (zstd is not in Node 20's zlib)");
      if (ctx.values["as-of"] !== undefined) throw usage("--as-of applies to restore, verify and drill");
      const base = ctx.values.incremental ? "latest" : (ctx.values.base as string | undefined);
      const r = await backup({
        from,
        to,
        namespace,
        ...(base !== undefined ? { base } : {}),
        compression: compression as Compression,
        recipients: (ctx.values.recipient as string[] | undefined) ?? [],
        identities: identities(ctx),
        onProgress: progress(ctx, "backing up"),
      });
      if (ctx.json) printJson(ctx.io, r);
      else print(ctx.io, backupText(r));
      return 0;
    },
  },
  restore: {
    summary: "restore a backup (as of a time, across its incremental chain) into any tier: --dry-run first, then --execute; checked, resumable",
    usage: [
      "dgent restore --from LOCATION --to URL (--dry-run | --execute) [--as-of TIME] [--identity FILE]... [--namespace NS] [--checkpoint PATH] [--json]",
      "dgent restore --all --from LOCATION --to URL (--dry-run | --execute) [--as-of TIME] [--identity FILE]... [--namespace NS] [--json]",
    ].join("\n       "),
    options: {
      from: { type: "string" },
      to: { type: "string" },
      "dry-run": { type: "boolean" },
      execute: { type: "boolean" },
      all: { type: "boolean" },
      checkpoint: { type: "string" },
      ...READ_OPTIONS,
    },
    async run(ctx) {
      if (ctx.positionals.length) throw usage("restore takes no arguments: --from LOCATION --to URL");
      const { from, to } = ctx.values as { from?: string; to?: string };
      if (!from || !to) throw usage("restore needs --from LOCATION (an archive, a directory of them, s3://… or gs://…) and --to URL");
      const dryRun = ctx.values["dry-run"] === true;
      if (dryRun === (ctx.values.execute === true)) throw usage("choose one of --dry-run (check and report) or --execute (write)");
      if (ctx.values.all === true) {
        if (ctx.values.checkpoint !== undefined) throw usage("--checkpoint names one namespace's checkpoint; --all keeps one per namespace under the data dir");
        const only = ctx.values.namespace as string | undefined;
        const r = await restoreAll({
          from,
          to,
          dryRun,
          identities: identities(ctx),
          ...asOf(ctx),
          ...(only !== undefined ? { namespaces: [only] } : {}),
          onNamespace: (n) => {
            if (!ctx.json) print(ctx.io, `== ${n.namespace}\n${restoreText(n)}`);
          },
        });
        if (ctx.json) printJson(ctx.io, r);
        else print(ctx.io, `run ${r.runId}: ${r.namespaces.length} namespaces ${dryRun ? "checked" : "restored"}`);
        return r.verified === false || r.namespaces.some((n) => n.conflicts.length > 0) ? 1 : 0;
      }
      const r = await restore({
        from,
        to,
        dryRun,
        identities: identities(ctx),
        ...asOf(ctx),
        ...(ctx.values.namespace !== undefined ? { namespace: ctx.values.namespace as string } : {}),
        ...(ctx.values.checkpoint !== undefined ? { checkpointPath: ctx.values.checkpoint as string } : {}),
        onProgress: progress(ctx, dryRun ? "checking" : "restoring"),
      });
      if (ctx.json) printJson(ctx.io, r);
      else print(ctx.io, restoreText(r));
      return r.verified === false || r.conflicts.length > 0 ? 1 : 0;
    },
  },
};
