import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// What a user gets from npm: pack the package, install the tarball into an empty project, and
// use it there as a third party would (the adapter example runs the kit under node:test).
const root = new URL("..", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "dgent-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Asynchronous on purpose: a blocked worker cannot answer the runner while npm installs.
const run = promisify(execFile);
const npm = async (args: string[], cwd: string): Promise<string> =>
  (await run("npm", args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: "false" } })).stdout;

describe("the packed package", () => {
  it("ships the build, types and docs, and works in an empty project", { timeout: 300_000 }, async () => {
    const packed = JSON.parse(await npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], root)) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = (packed[0]?.files ?? []).map((f) => f.path);
    for (const f of [
      "dist/compose/index.js",
      "dist/compose/index.d.ts",
      "dist/core/index.js",
      "dist/core/index.d.ts",
      "dist/testing/index.js",
      "dist/cli/main.js",
      "dist/adapters/sqlite/index.js",
      "core/ERRORS.md",
      "core/HOOKS.md",
      "README.md",
      "CONTRIBUTING.md",
      "adapters/sqlite/README.md",
      "examples/dir-adapter/index.mjs",
    ]) {
      expect(files, f).toContain(f);
    }
    // No test of dgent's own and no test harness; the examples' kit runs are part of the examples.
    expect(files.filter((f) => /^(dist\/)?test\/|^src\/|^(dist\/)?(adapters|plugins|core|compose|cli|testing)\/.*\.test\./.test(f))).toEqual([]);
    // Every relative link in a shipped document points at a shipped file (or a folder holding one).
    const missing: string[] = [];
    for (const doc of files.filter((f) => f.endsWith(".md"))) {
      const text = readFileSync(join(root, doc), "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/i.test(target as string)) continue;
        const path = posix.normalize(posix.join(posix.dirname(doc), target as string)).replace(/\/$/, "");
        if (!files.some((f) => f === path || f.startsWith(`${path}/`))) missing.push(`${doc} → ${target}`);
      }
    }
    expect(missing, "documents link to files the package does not hold").toEqual([]);

    const project = join(work, "consumer");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    await npm(["install", join(work, packed[0]?.filename as string), "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], project);
    // --ignore-scripts skipped compiling better-sqlite3; reuse the repository's build of the same version.
    const version = (dir: string) => (JSON.parse(readFileSync(join(dir, "node_modules/better-sqlite3/package.json"), "utf8")) as { version: string }).version;
    expect(version(project)).toBe(version(root));
    cpSync(join(root, "node_modules/better-sqlite3/build"), join(project, "node_modules/better-sqlite3/build"), { recursive: true });

    // A third-party adapter, written only on the public exports, runs the whole kit under node:test.
    cpSync(join(root, "examples/dir-adapter"), join(project, "dir-adapter"), { recursive: true });
    const kit = await run(process.execPath, ["--test", "--test-reporter=tap", "dir-adapter/"], { cwd: project, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }).then(
      (r) => ({ ...r, status: 0 }),
      (e: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? String(e), status: e.code ?? 1 }),
    );
    expect(kit.stdout, kit.stderr).toMatch(/# fail 0/);
    expect(kit.stdout).toMatch(/# pass (\d{2,})/);
    expect(kit.status).toBe(0);

    // The bin works from the install, on the embedded SQLite default.
    const env = { ...process.env, XDG_DATA_HOME: join(work, "xdg") };
    const bin = join(project, "node_modules/.bin/dgent");
    const id = (await run(bin, ["put", "from the tarball"], { env, encoding: "utf8" })).stdout.trim();
    expect((await run(bin, ["get", id], { env, encoding: "utf8" })).stdout).toBe("from the tarball");
    // Types resolve for TypeScript users through the exports map.
    const dts = readFileSync(join(project, "node_modules/dgent/dist/testing/index.d.ts"), "utf8");
    expect(dts).toContain("runConformance");
  });
});
