import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { makeDatum } from "../core/index.js";
import { scanTier } from "../core/tiers.js";
import { expectCode } from "../testing/index.js";
import { runProcess } from "../test/harness/run.js";
import { datumHash, parseIdentities, restore, stateDigest } from "./index.js";

// backup/RUNBOOK.md's `sh` blocks, run exactly as written by bash through the built `dgent`, with
// the variables its table names, in the order of the runbook; the outcomes are checked in between.

const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-runbook-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function blocks(): string[] {
  const text = readFileSync(new URL("./RUNBOOK.md", import.meta.url), "utf8");
  return [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

const shims = join(home, "bin");
mkdirSync(shims);
writeFileSync(join(shims, "dgent"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
chmodSync(join(shims, "dgent"), 0o755);

const vars: Record<string, string> = {
  DGENT_DATABASE_URL: `sqlite://${join(home, "live.db")}`,
  BACKUPS: join(home, "backups"),
  BACKUP_KEY: join(home, "keys", "backup.key"),
  NEW_BACKUP_KEY: join(home, "keys", "new-backup.key"),
  NEW_BACKUPS: join(home, "new-backups"),
};
mkdirSync(join(home, "keys"));

async function sh(block: string, extra: Record<string, string> = {}): Promise<string> {
  const r = await runProcess("bash", ["-euo", "pipefail", "-c", block], {
    env: { PATH: `${shims}:${process.env.PATH ?? ""}`, HOME: home, XDG_DATA_HOME: join(home, "data"), ...vars, ...extra },
  });
  const out = r.stdout;
  expect(r.status, `${block}\n${out}\n${r.stderr}`).toBe(0);
  return out;
}

async function live(path: string, change: (a: ReturnType<typeof sqliteAdapter>) => Promise<void> = async () => undefined): Promise<string> {
  const a = sqliteAdapter({ path });
  await a.open();
  await change(a);
  const pairs: Array<[string, Buffer]> = [];
  for await (const d of scanTier(a)) pairs.push([d.id, datumHash(d)]);
  await a.close();
  return stateDigest(pairs);
}

describe("backup/RUNBOOK.md", () => {
  it("every command, as written: backups on a schedule, a drill, disk loss, a bad deploy, a leaked key", async () => {
    if (!existsSync(BIN)) throw new Error(`the runbook runs the built CLI: run \`npm run build\` first (${BIN} is missing)`);
    const all = blocks();
    expect(all).toHaveLength(6);
    const [keygen, scheduled, drill, diskLoss, badDeploy, leakedKey] = all as [string, string, string, string, string, string];
    const livePath = join(home, "live.db");

    // 0. Key, then backups while data comes and goes.
    expect(await sh(keygen)).toMatch(/^age1[0-9a-z]+\n$/);
    expect(statSync(vars.BACKUP_KEY as string).mode & 0o777).toBe(0o600);
    let n = 0;
    const put = (a: ReturnType<typeof sqliteAdapter>, k: number, text = "good") => Promise.all(Array.from({ length: k }, () => a.put(makeDatum({ content: `${text} ${n++}` }))));
    await live(livePath, (a) => put(a, 40).then(() => undefined));
    await sh(scheduled);
    const afterSecond = await live(livePath, async (a) => {
      await put(a, 10);
      for (const d of await a.list({ prefix: "", after: -1, limit: 5 })) await a.delete(d.id);
    });
    await sh(scheduled);
    const beforeDeploy = new Date().toISOString();
    const afterDeploy = await live(livePath, async (a) => {
      for (const d of await a.list({ prefix: "", after: -1, limit: 10 })) await a.delete(d.id);
      await put(a, 5, "bad");
    });
    await sh(scheduled);
    expect(readdirSync(vars.BACKUPS as string).filter((f) => f.endsWith(".dgbk"))).toHaveLength(3);
    expect(await sh(drill)).toMatch(/^drill passed: 40 datums restored .* matches the backup's/);

    // 1. Disk loss: the live database is gone; the restore gives its last backed-up state.
    rmSync(livePath);
    const restored = join(home, "restored.db");
    const diskOut = await sh(diskLoss, { NEW_DATABASE_URL: `sqlite://${restored}` });
    expect(diskOut).toMatch(/dry run: 3 archive\(s\)/);
    expect(diskOut).toMatch(/verified: +yes/);
    expect(await live(restored)).toBe(afterDeploy);

    // 2. Bad deploy: the state before it, from the second link of the chain.
    const rolledBack = join(home, "rolled-back.db");
    const badOut = await sh(badDeploy, { NEW_DATABASE_URL: `sqlite://${rolledBack}`, BEFORE_DEPLOY: beforeDeploy });
    expect(badOut).toMatch(/verified: +yes/);
    expect(await live(rolledBack)).toBe(afterSecond);

    // 3. Leaked backup key: a new full backup only the new key reads; the old archives are gone.
    await sh(leakedKey, { DGENT_DATABASE_URL: `sqlite://${restored}` });
    expect(existsSync(vars.BACKUPS as string)).toBe(false);
    const oldKey = parseIdentities(readFileSync(vars.BACKUP_KEY as string, "utf8"));
    await expectCode(restore({ from: vars.NEW_BACKUPS as string, to: `sqlite://${join(home, "x.db")}`, dryRun: true, identities: oldKey }), "DGENT_BACKUP_DECRYPT");
    // Fourteen `dgent` processes: ~10 s on an idle machine, several times that on a loaded one.
  }, 300_000);
});
