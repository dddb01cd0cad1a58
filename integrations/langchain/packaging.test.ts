/**
 * Packaging, as an installed dgent sees it: the built package (dist/, after `npm run build`) in a
 * project whose node_modules has dgent's own dependencies but no framework. Importing
 * `dgent/integrations/langchain` or `dgent/integrations/openai-agents` then fails with
 * `DGENT_MISSING_DEPENDENCY` naming the package to install; `dgent` itself imports fine; and
 * neither integration loads the other's framework.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url).pathname;
const FRAMEWORK_SCOPES = new Set(["@langchain", "@openai"]);
let project = "";

beforeAll(() => {
  if (!existsSync(join(root, "dist/integrations/langchain/index.js"))) throw new Error("run `npm run build` first: this test imports dist/");
  project = mkdtempSync(join(tmpdir(), "dgent-no-framework-"));
  const modules = join(project, "node_modules");
  mkdirSync(join(modules, "dgent"), { recursive: true });
  cpSync(join(root, "package.json"), join(modules, "dgent/package.json"));
  cpSync(join(root, "dist"), join(modules, "dgent/dist"), { recursive: true });
  // Every installed package but the frameworks, so dgent's own dependencies resolve.
  for (const name of readdirSync(join(root, "node_modules"))) {
    if (name.startsWith(".") || FRAMEWORK_SCOPES.has(name)) continue;
    symlinkSync(join(root, "node_modules", name), join(modules, name));
  }
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

function importIn(specifier: string): { status: number | null; stdout: string; stderr: string } {
  const code = `import(${JSON.stringify(specifier)}).then(() => console.log("loaded"), (e) => { console.log(JSON.stringify({ code: e.code, package: e.details?.package, message: e.message })); })`;
  return spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: project, encoding: "utf8" });
}

describe("an install without the frameworks", () => {
  it("dgent itself imports", () => {
    expect(importIn("dgent").stdout.trim()).toBe("loaded");
  });

  it.each([
    ["dgent/integrations/langchain", "@langchain/core"],
    ["dgent/integrations/openai-agents", "@openai/agents-core"],
  ])("%s fails with DGENT_MISSING_DEPENDENCY naming %s", (specifier, pkg) => {
    const run = importIn(specifier);
    expect(run.stderr).toBe("");
    const error = JSON.parse(run.stdout.trim()) as { code: string; package: string; message: string };
    expect(error).toEqual({
      code: "DGENT_MISSING_DEPENDENCY",
      package: pkg,
      message: `dgent/integrations/${specifier.split("/").pop()} needs the package "${pkg}", which is not installed; run: npm install ${pkg}`,
    });
  });
});

describe("an install with one framework", () => {
  it("dgent/integrations/openai-agents loads without @langchain/core installed", () => {
    mkdirSync(join(project, "node_modules/@openai"), { recursive: true });
    symlinkSync(join(root, "node_modules/@openai/agents-core"), join(project, "node_modules/@openai/agents-core"));
    try {
      expect(importIn("dgent/integrations/openai-agents").stdout.trim()).toBe("loaded");
      expect(JSON.parse(importIn("dgent/integrations/langchain").stdout.trim()).package).toBe("@langchain/core");
    } finally {
      rmSync(join(project, "node_modules/@openai"), { recursive: true, force: true });
    }
  });
});
