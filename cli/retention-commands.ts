import type { RetentionReport } from "../core/retention.js";
import { type Command, type Context, print, printJson, quoted, usage } from "./command.js";
import { table } from "./format.js";

/** `--now`: epoch milliseconds or an ISO 8601 time; ages are measured at it. */
function parseNow(value: string | boolean | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw usage("--now takes epoch milliseconds or an ISO 8601 time");
  const ms = /^\d+$/.test(value) ? Number(value) : /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isSafeInteger(ms)) throw usage(`--now takes epoch milliseconds or an ISO 8601 time (2026-12-01T00:00:00Z), got ${quoted(value)}`);
  return ms;
}

function parseBatch(value: string | boolean | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw usage(`--batch takes a whole number from 1 to 10000, got ${quoted(String(value))}`);
  return n;
}

/** The report as a table: one row per policy, then what no policy matches and the totals. */
export function retentionText(r: RetentionReport): string {
  const verb = r.dryRun ? "would " : "";
  const head = r.dryRun
    ? `retention plan at ${new Date(r.now).toISOString()} (dry run: nothing was changed)`
    : `retention applied at ${new Date(r.now).toISOString()}`;
  const rows = r.policies.map((p) => [
    p.name,
    p.action,
    String(p.matched.count),
    String(p.delete.count),
    String(p.delete.bytes),
    String(p.move.count),
    String(p.move.bytes),
    p.move.to ?? "",
  ]);
  const lines = [
    head,
    table(["POLICY", "ACTION", "MATCHED", r.dryRun ? "WOULD DELETE" : "DELETED", "BYTES", r.dryRun ? "WOULD MOVE" : "MOVED", "BYTES", "TO"], rows),
    `not matched by any policy (left alone): ${r.unmatched.count} datums, ${r.unmatched.bytes} bytes`,
    `total: ${verb}delete ${r.total.delete.count} datums (${r.total.delete.bytes} bytes), ${verb}move ${r.total.move.count} (${r.total.move.bytes} bytes)`,
  ];
  const kept = r.policies.flatMap((p) => p.kept);
  if (kept.length) lines.push(`kept below: ${kept.length} datums the upper tier holds differently or refused (see the warning)`);
  if (r.tiersDown.length) lines.push(`tiers down: ${r.tiersDown.join(", ")} (what only they hold was not seen; deletes for them are journaled)`);
  return lines.join("\n");
}

async function retentionCommand(ctx: Context): Promise<number> {
  const [sub, extra] = ctx.positionals;
  if (sub !== "plan" && sub !== "apply") {
    throw usage(sub === undefined ? "retention needs a subcommand: plan or apply" : `unknown retention subcommand ${quoted(sub)}; use plan or apply`);
  }
  if (extra !== undefined) throw usage(`retention ${sub} takes no other arguments`);
  const now = parseNow(ctx.values.now);
  const batchSize = parseBatch(ctx.values.batch);
  if (sub === "plan" && batchSize !== undefined) throw usage("--batch applies to retention apply");
  const store = await ctx.store();
  if (store.retentionPolicies.length === 0) {
    throw usage("no retention policies: add a retention list to the config file (compose/config/README.md#retention)");
  }
  const options = { ...(now !== undefined ? { now } : {}), ...(batchSize !== undefined ? { batchSize } : {}) };
  const report = sub === "plan" ? await store.planRetention(options) : await store.applyRetention(options);
  if (ctx.json) printJson(ctx.io, report);
  else print(ctx.io, retentionText(report));
  return report.policies.some((p) => p.kept.length > 0) ? 1 : 0;
}

export const RETENTION_COMMANDS: Record<string, Command> = {
  retention: {
    summary: "the config file's retention policies: plan (what would go or move, changes nothing) or apply",
    usage: "dgent retention (plan | apply [--batch N]) [--now TIME] [--json]",
    options: { now: { type: "string" }, batch: { type: "string" } },
    run: retentionCommand,
  },
};
