import type { Adapter } from "../core/protocol.js";
import { dgentError, isDgentError } from "../core/errors.js";
import type { Store } from "../core/store.js";
import type { EncryptionHandle } from "../plugins/encryption/index.js";
import { rekeyTier, type RekeyReport } from "../scrub/rekey.js";
import { verifyTier, type VerifyReport } from "../scrub/verify.js";
import { type Command, type Context, print, printJson, quoted, usage } from "./command.js";

function rateOf(ctx: Context): number | undefined {
  const raw = ctx.values.rate;
  if (raw === undefined) return undefined;
  const rate = Number(raw);
  if (typeof raw !== "string" || !Number.isFinite(rate) || rate <= 0) throw usage(`--rate takes a positive number of datums per second, got ${quoted(String(raw))}`);
  return rate;
}

function tiersOf(ctx: Context, store: Store): readonly Adapter[] {
  const name = ctx.values.tier;
  if (name === undefined) return store.tiers;
  const tier = store.tiers.find((t) => t.name === name);
  if (!tier) throw usage(`no tier ${quoted(String(name))} in this store; it has ${store.tiers.map((t) => t.name).join(", ")}`);
  return [tier];
}

/** The store's encryption handle, or null when it does not use the plugin. */
async function encryptionOf(store: Store): Promise<EncryptionHandle | null> {
  try {
    return (await store.plugin("encryption")) as EncryptionHandle;
  } catch (error) {
    if (isDgentError(error, "DGENT_UNKNOWN_PLUGIN")) return null;
    throw error;
  }
}

/** A line on stderr every `every` datums (background runs stay quiet otherwise). */
function ticker(ctx: Context, label: string, every = 10_000): (n: number) => void {
  return (n) => {
    if (n % every === 0) ctx.io.stderr(`${label}: ${n}\n`);
  };
}

function verifyText(r: VerifyReport): string {
  const lines = [`${r.tier}: ${r.checked} datums read, ${r.ok} ok, ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`];
  for (const p of r.problems) lines.push(`  ${p.id === null ? "(tier)" : p.id}  ${p.code}  ${p.message}`);
  if (r.digest) lines.push(`  digest ${r.digest}`);
  return lines.join("\n");
}

function rekeyText(r: RekeyReport, active: string): string {
  const lines = [
    `${r.tier}: ${r.resealed} resealed under ${active}, ${r.current} already under it, ${r.recovered} recovered from an interrupted run (${r.mode}); ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`,
  ];
  for (const p of r.problems) lines.push(`  ${p.id ?? "(tier)"}  ${p.code}  ${p.message}`);
  return lines.join("\n");
}

export const CRYPT_COMMANDS: Record<string, Command> = {
  verify: {
    summary: "read every datum of each tier and report the corrupt or unreadable ones by id (exit 1 if any)",
    usage: "dgent verify [--tier NAME] [--rate DATUMS_PER_SECOND] [--json]",
    options: { tier: { type: "string" }, rate: { type: "string" } },
    async run(ctx) {
      if (ctx.positionals.length) throw usage("verify takes no arguments");
      const rate = rateOf(ctx);
      const store = await ctx.store();
      const handle = await encryptionOf(store);
      const reports: VerifyReport[] = [];
      for (const tier of tiersOf(ctx, store)) {
        const tick = ticker(ctx, `verify ${tier.name}`);
        reports.push(
          await verifyTier(tier, {
            ...(handle ? { decode: (d) => handle.open(d) } : {}),
            ...(rate !== undefined ? { rate } : {}),
            onProgress: (n) => tick(n),
          }),
        );
      }
      if (ctx.json) printJson(ctx.io, { tiers: reports, problems: reports.reduce((n, r) => n + r.problems.length, 0) });
      else print(ctx.io, reports.map(verifyText).join("\n"));
      return reports.some((r) => r.problems.length > 0) ? 1 : 0;
    },
  },
  rekey: {
    summary: "re-encrypt every datum under the encryption plugin's active key, in place; resumable (exit 1 on problems)",
    usage: "dgent rekey [--tier NAME] [--rate DATUMS_PER_SECOND] [--journal] [--json]",
    options: { tier: { type: "string" }, rate: { type: "string" }, journal: { type: "boolean" } },
    async run(ctx) {
      if (ctx.positionals.length) throw usage("rekey takes no arguments");
      const rate = rateOf(ctx);
      const store = await ctx.store();
      const handle = await encryptionOf(store);
      if (handle === null) {
        throw dgentError("DGENT_KEY_MISSING", "this store has no encryption plugin: add it to the config file (with the new key active and the old ones kept) before dgent rekey", {
          unit: "cli",
        });
      }
      const active = handle.activeKey();
      const reports: RekeyReport[] = [];
      for (const tier of tiersOf(ctx, store)) {
        const tick = ticker(ctx, `rekey ${tier.name}`);
        reports.push(
          await rekeyTier(tier, handle, {
            ...(rate !== undefined ? { rate } : {}),
            ...(ctx.values.journal ? { mode: "journal" as const } : {}),
            onProgress: (r) => tick(r.scanned),
          }),
        );
      }
      if (ctx.json) printJson(ctx.io, { active: active.id, fingerprint: active.fingerprint, tiers: reports });
      else print(ctx.io, reports.map((r) => rekeyText(r, `${active.id} (${active.fingerprint})`)).join("\n"));
      return reports.some((r) => r.problems.length > 0) ? 1 : 0;
    },
  },
};
