/**
 * Packaging: dgent pulls no framework. In a project where dgent is installed (the built package,
 * with its own dependencies) and LangGraph is not, `import "dgent"` works and importing
 * `dgent/integrations/langgraph` fails with DGENT_MISSING_DEPENDENCY naming the package to
 * install; with the checkpoint package but without `@langchain/core`, it names that one. Needs
 * `npm run build`.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
let project: string;

beforeAll(() => {
  if (!existsSync(join(root, "dist/integrations/langgraph/index.js"))) throw new Error("dist/integrations/langgraph is missing: run `npm run build` first");
  project = mkdtempSync(join(tmpdir(), "dgent-lg-pkg-"));
  const modules = join(project, "node_modules");
  mkdirSync(join(modules, "dgent"), { recursive: true });
  cpSync(join(root, "package.json"), join(modules, "dgent/package.json"));
  cpSync(join(root, "dist"), join(modules, "dgent/dist"), { recursive: true });
  // Every installed package but LangChain's, as links (they resolve their own dependencies where they are).
  for (const name of readdirSync(join(root, "node_modules"))) {
    if (name.startsWith(".") || name === "@langchain" || name === "dgent") continue;
    symlinkSync(join(root, "node_modules", name), join(modules, name));
  }
}, 300_000);
afterAll(() => project && rmSync(project, { recursive: true, force: true }));

async function load(specifier: string): Promise<Record<string, unknown>> {
  const script = `import(${JSON.stringify(specifier)}).then((m) => console.log(JSON.stringify({ loaded: Object.keys(m).sort() })), (e) => console.log(JSON.stringify({ code: e.code, package: e.details?.package, message: e.message })))`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: project });
  return JSON.parse(stdout) as Record<string, unknown>;
}

it("without LangGraph installed, dgent loads and the integration names the package to install", async () => {
  expect((await load("dgent")).loaded).toContain("createStore");
  const failed = await load("dgent/integrations/langgraph");
  expect(failed).toMatchObject({ code: "DGENT_MISSING_DEPENDENCY", package: "@langchain/langgraph-checkpoint" });
  expect(failed.message).toContain("npm install @langchain/langgraph-checkpoint @langchain/core");
});

it("with the checkpoint package but without @langchain/core, the error names @langchain/core", async () => {
  mkdirSync(join(project, "node_modules/@langchain"), { recursive: true });
  cpSync(join(root, "node_modules/@langchain/langgraph-checkpoint"), join(project, "node_modules/@langchain/langgraph-checkpoint"), { recursive: true });
  expect(await load("dgent/integrations/langgraph")).toMatchObject({ code: "DGENT_MISSING_DEPENDENCY", package: "@langchain/core" });
});

it("with both, the integration loads", async () => {
  symlinkSync(join(root, "node_modules/@langchain/core"), join(project, "node_modules/@langchain/core"));
  expect((await load("dgent/integrations/langgraph")).loaded).toEqual(expect.arrayContaining(["DgentSaver", "DgentStore"]));
});
