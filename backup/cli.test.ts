import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../cli/commands.js";
import { expectCode } from "../testing/index.js";

// The backup commands' argument checks and --json shapes, in-process (the runbook test drives the
// built binary end to end).

const home = mkdtempSync(join(tmpdir(), "dgent-backup-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

async function dgent(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(args, {
    stdout: (c) => (out += typeof c === "string" ? c : Buffer.from(c).toString()),
    stderr: (c) => (err += c),
    stdin: Readable.from([]),
    env: { HOME: home, XDG_DATA_HOME: join(home, "data") },
  });
  return { code, out, err };
}

describe("dgent backup and restore on the command line", () => {
  it("refuses what it cannot do with DGENT_USAGE, saying what to give", async () => {
    expect((await expectCode(dgent(["restore", "--from", home, "--to", "sqlite:///x.db"]), "DGENT_USAGE")).message).toMatch(/--dry-run .* --execute/);
    expect((await expectCode(dgent(["backup", "--to", home, "--compression", "zstd"]), "DGENT_USAGE")).message).toMatch(/zstd is not in Node 20/);
    expect((await expectCode(dgent(["backup", "restore"]), "DGENT_USAGE")).message).toMatch(/verify, drill, keygen or prune/);
    expect((await expectCode(dgent(["backup", "verify"]), "DGENT_USAGE")).message).toMatch(/one LOCATION/);
    await expectCode(dgent(["backup", "--to", home, "--incremental", "--base", "x.dgbk"]), "DGENT_USAGE");
    await expectCode(dgent(["restore", "--from", home, "--to", "sqlite:///x.db", "--dry-run", "--as-of", "yesterday-ish"]), "DGENT_INVALID_OPTIONS");
  });

  it("backs up the embedded default with no --from, and --json gives the report", async () => {
    expect((await dgent(["put", "remember this"])).code).toBe(0);
    const made = await dgent(["backup", "--to", join(home, "repo"), "--json"]);
    expect(made.code).toBe(0);
    const report = JSON.parse(made.out) as { kind: string; state: number; stateDigest: string };
    expect(report).toMatchObject({ kind: "full", state: 1 });
    const verified = JSON.parse((await dgent(["backup", "verify", join(home, "repo"), "--json"])).out) as { deep: boolean; stateDigest: string };
    expect(verified).toMatchObject({ deep: true, stateDigest: report.stateDigest });
    const missing = await expectCode(dgent(["restore", "--from", join(home, "nothing-here"), "--to", `sqlite://${join(home, "r.db")}`, "--dry-run"]), "DGENT_BACKUP_CHAIN");
    expect(missing.message).toMatch(/holds no archive/);
  });
});
