import type { MigrationReport } from "../compose/migrate.js";
import type { Command, Io } from "./command.js";
import { print, printJson, usage } from "./command.js";

/** A progress bar on a terminal; a line every 10 % otherwise (logs stay readable). */
function progress(io: Io, label: string): (done: number, total: number) => void {
  const tty = (process.stderr as { isTTY?: boolean }).isTTY === true;
  let lastDecile = -1;
  return (done, total) => {
    const known = total > 0;
    const fraction = known ? Math.min(1, done / total) : 0;
    if (tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      const bar = known ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%` : "";
      io.stderr(`\r${label} ${bar} ${done}${known ? `/${total}` : ""}`);
      if (known && done >= total) io.stderr("\n");
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        io.stderr(`${label}: ${done}${known ? `/${total} (${decile * 10}%)` : ""}\n`);
      }
    }
  };
}

function reportText(r: MigrationReport): string {
  const lines = [
    `${r.dryRun ? "dry run: " : ""}${r.from} → ${r.to} (namespace ${r.namespace})`,
    `  source datums:     ${r.total}`,
    ...(r.targetExists ? [] : ["  target:            does not exist yet (--execute creates it)"]),
    r.dryRun ? `  would copy:        ${r.copied}` : `  copied this run:   ${r.copied}${r.resumedFrom ? ` (resumed after ${r.resumedFrom})` : ""}`,
    ...(r.dryRun ? [`  already present:   ${r.alreadyPresent}`] : []),
    `  conflicts:         ${r.conflicts.length}${r.conflicts.length ? ` (first: ${r.conflicts.slice(0, 3).join(", ")})` : ""}`,
    ...(r.verified === null ? ["  nothing was changed"] : [`  verified:          ${r.verified ? "yes, every content hash matches" : "NO: the target differs"}`]),
    `  source digest:     ${r.sourceDigest}`,
    ...(r.targetDigest ? [`  target digest:     ${r.targetDigest}`] : []),
    `  took ${(r.durationMs / 1000).toFixed(1)} s, max RSS ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB`,
  ];
  return lines.join("\n");
}

export const LATTICE_COMMANDS: Record<string, Command> = {
  upgrade: {
    summary: "move every datum below the landing tier up to it now (copy, verify, remove below)",
    usage: "dgent upgrade [--json]",
    options: {},
    async run(ctx) {
      if (ctx.positionals.length) throw usage("upgrade takes no arguments");
      const results = await (await ctx.store()).upgrade();
      if (ctx.json) printJson(ctx.io, results);
      else if (results.length === 0) print(ctx.io, "nothing to promote: every datum is on the landing tier");
      else for (const r of results) print(ctx.io, `${r.from} → ${r.to}: moved ${r.moved}${r.kept.length ? `, kept ${r.kept.length} (a different datum holds the id above)` : ""}`);
      return results.some((r) => r.kept.length > 0) ? 1 : 0;
    },
  },
  migrate: {
    summary: "copy a store to another backend (--dry-run first, then --execute); resumable, verified",
    usage: "dgent migrate --from URL --to URL (--dry-run | --execute) [--namespace NS] [--batch N] [--checkpoint PATH] [--json]",
    options: {
      from: { type: "string" },
      to: { type: "string" },
      "dry-run": { type: "boolean" },
      execute: { type: "boolean" },
      batch: { type: "string" },
      checkpoint: { type: "string" },
    },
    async run(ctx) {
      const { from, to } = ctx.values as { from?: string; to?: string };
      if (!from || !to) throw usage("migrate needs --from URL and --to URL");
      const dryRun = ctx.values["dry-run"] === true;
      if (dryRun === (ctx.values.execute === true)) throw usage("choose one of --dry-run (report only) or --execute (copy)");
      if (dryRun && ctx.values.checkpoint !== undefined) throw usage("--checkpoint applies to --execute; a dry run keeps no checkpoint");
      if (ctx.values["data-dir"] !== undefined) throw usage("--data-dir does not apply to migrate: --from and --to name the stores");
      if (ctx.values.config !== undefined) throw usage("--config does not apply to migrate: --from and --to name the stores");
      const batch = ctx.values.batch === undefined ? undefined : Number(ctx.values.batch);
      if (batch !== undefined && (!Number.isInteger(batch) || batch < 1)) throw usage("--batch takes a positive whole number");
      const { migrate } = await import("../compose/migrate.js"); // only this command needs it
      const report = await migrate({
        from,
        to,
        dryRun,
        ...(ctx.values.namespace !== undefined ? { namespace: ctx.values.namespace as string } : {}),
        ...(batch !== undefined ? { batchSize: batch } : {}),
        ...(ctx.values.checkpoint !== undefined ? { checkpointPath: ctx.values.checkpoint as string } : {}),
        onProgress: ctx.json ? undefined : progress(ctx.io, dryRun ? "checking" : "copying"),
      });
      if (ctx.json) printJson(ctx.io, report);
      else print(ctx.io, reportText(report));
      return report.verified === false || report.conflicts.length > 0 ? 1 : 0;
    },
  },
};
