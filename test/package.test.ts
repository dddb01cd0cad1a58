import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// What a user gets from npm: pack the package, install the tarball into an empty project, and
// use it there as a third party would (the adapter example runs the kit under node:test).
const root = new URL("..", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "dgent-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } });

describe("the packed package", () => {
  it("ships the build, types and docs, and works in an empty project", () => {
    const packed = JSON.parse(npm(["pack", "--ignore-scripts", "--json", "--pack-destination", work], root)) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = (packed[0]?.files ?? []).map((f) => f.path);
    for (const f of ["dist/core/index.js", "dist/core/index.d.ts", "dist/testing/index.js", "dist/cli/main.js", "dist/adapters/sqlite/index.js", "core/ERRORS.md", "core/HOOKS.md", "README.md", "CONTRIBUTING.md", "adapters/sqlite/README.md"]) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /\.test\.|^test\/|^src\//.test(f))).toEqual([]);

    const project = join(work, "consumer");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    npm(["install", join(work, packed[0]?.filename as string), "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], project);
    // --ignore-scripts skipped compiling better-sqlite3; reuse the repository's build of the same version.
    const version = (dir: string) => (JSON.parse(readFileSync(join(dir, "node_modules/better-sqlite3/package.json"), "utf8")) as { version: string }).version;
    expect(version(project)).toBe(version(root));
    cpSync(join(root, "node_modules/better-sqlite3/build"), join(project, "node_modules/better-sqlite3/build"), { recursive: true });

    // A third-party adapter, written only on the public exports, runs the whole kit under node:test.
    cpSync(join(root, "examples/dir-adapter"), join(project, "dir-adapter"), { recursive: true });
    const kit = spawnSync(process.execPath, ["--test", "--test-reporter=tap", "dir-adapter/"], { cwd: project, encoding: "utf8" });
    expect(kit.stdout, kit.stderr).toMatch(/# fail 0/);
    expect(kit.stdout).toMatch(/# pass (\d{2,})/);
    expect(kit.status).toBe(0);

    // The bin works from the install, on the embedded SQLite default.
    const env = { ...process.env, XDG_DATA_HOME: join(work, "xdg") };
    const bin = join(project, "node_modules/.bin/dgent");
    const id = execFileSync(bin, ["put", "from the tarball"], { env, encoding: "utf8" }).trim();
    expect(execFileSync(bin, ["get", id], { env, encoding: "utf8" })).toBe("from the tarball");
    // Types resolve for TypeScript users through the exports map.
    const dts = readFileSync(join(project, "node_modules/dgent/dist/testing/index.d.ts"), "utf8");
    expect(dts).toContain("runConformance");
  });
});
