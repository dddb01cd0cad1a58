import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { jsonlAdapter } from "../adapters/jsonl/index.js";
import { createStoreFromConfig } from "../compose/config/compose.js";
import { makeDatum } from "../core/datum.js";

// `dgent verify` and `dgent rekey` driven as a user would: real processes, config files, key files.
const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), "dgent-crypt-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function dgent(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data"), ...env } });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("dgent rekey and dgent verify", () => {
  // Each process costs seconds on a loaded machine: data is written in-process, the commands run as processes.
  it("rotates the key of an encrypted SQLite store; verify is clean after, and the old key can then go", async () => {
    const k1 = randomBytes(32).toString("base64");
    const k2 = randomBytes(32).toString("base64");
    const keys = join(home, "keys.json");
    const config = join(home, "sealed.json");
    writeFileSync(keys, JSON.stringify({ active: "k1", keys: { k1 } }));
    writeFileSync(config, JSON.stringify({ tiers: [{ adapter: "sqlite", options: { path: join(home, "sealed.db") } }], plugins: [{ plugin: "encryption", options: { keyFile: keys } }] }));
    const store = await createStoreFromConfig(config);
    const ids: string[] = [];
    for (const word of ["alpha", "beta", "gamma"]) ids.push(await store.put(makeDatum({ content: `secret ${word}` })));
    await store.close();
    expect(readFileSync(join(home, "sealed.db")).includes(Buffer.from("secret alpha"))).toBe(false);

    writeFileSync(keys, JSON.stringify({ active: "k2", keys: { k1, k2 } }));
    const rekey = dgent(["--config", config, "rekey", "--json"]);
    expect(rekey.code, rekey.stderr).toBe(0);
    expect(JSON.parse(rekey.stdout)).toMatchObject({ active: "k2", tiers: [{ tier: "sqlite", resealed: 3, current: 0, problems: [] }] });

    writeFileSync(keys, JSON.stringify({ active: "k2", keys: { k2 } }));
    const verify = dgent(["--config", config, "verify", "--json"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ problems: 0, tiers: [{ tier: "sqlite", checked: 3, ok: 3 }] });
    expect(dgent(["--config", config, "get", ids[1] as string]).stdout).toBe("secret beta");
  });

  it("verify lists every corrupt record of a JSONL log by id and exits 1; rekey without the plugin is refused", async () => {
    const config = join(home, "log.json");
    const log = join(home, "log.jsonl");
    writeFileSync(config, JSON.stringify({ namespace: "log", tiers: [{ adapter: "jsonl", options: { dataDir: home } }] }));
    const writer = jsonlAdapter({ dataDir: home, namespace: "log" });
    await writer.open();
    const ids: string[] = [];
    for (const c of ["first record", "second record", "third record"]) ids.push(await writer.put(makeDatum({ content: c })));
    await writer.close();
    let text = readFileSync(log, "utf8");
    for (const c of ["first record", "third record"]) {
      const b64 = Buffer.from(c).toString("base64").slice(0, 8);
      text = text.replace(b64, b64.startsWith("A") ? `B${b64.slice(1)}` : `A${b64.slice(1)}`);
    }
    writeFileSync(log, text);
    const out = dgent(["--config", config, "verify"]);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain("jsonl: 3 datums read, 1 ok, 2 problems");
    for (const id of [ids[0], ids[2]]) expect(out.stdout).toMatch(new RegExp(`${id}\\s+DGENT_CORRUPT`));
    const rekey = dgent(["--config", config, "rekey"]);
    expect(rekey.code).not.toBe(0);
    expect(rekey.stderr).toContain("DGENT_KEY_MISSING");
  });
});
