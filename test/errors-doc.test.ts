import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../core/error-codes.js";
import { dgentError, DgentError, BackendError, ConfigError, ConflictError, UnavailableError, ValidationError, LifecycleError, BudgetError } from "../core/errors.js";

const root = new URL("..", import.meta.url).pathname;

function docRows(): Map<string, { kind: string; retryable: boolean }> {
  const rows = new Map<string, { kind: string; retryable: boolean }>();
  for (const line of readFileSync(join(root, "core/ERRORS.md"), "utf8").split("\n")) {
    const m = /^\| `(DGENT_[A-Z0-9_]+)` \| (\w+) \| (yes|no) \|/.exec(line);
    if (m) rows.set(m[1] as string, { kind: m[2] as string, retryable: m[3] === "yes" });
  }
  return rows;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith(".test.ts") && name !== "error-codes.ts") out.push(path);
  }
  return out;
}

describe("core/ERRORS.md and the code", () => {
  it("list the same codes with the same kind and retryable flag", () => {
    const doc = docRows();
    const code = new Map(Object.entries(ERROR_CODES).map(([k, v]) => [k, { kind: v.kind, retryable: v.retryable }]));
    expect([...doc.keys()].sort()).toEqual([...code.keys()].sort());
    for (const [name, info] of code) expect(doc.get(name), name).toEqual(info);
  });

  it("every code in the table is raised somewhere in the source", () => {
    const text = ["core", "compose", "adapters", "plugins", "patterns", "testing", "cli", "backup"]
      .flatMap((d) => { try { return sourceFiles(join(root, d)); } catch { return []; } })
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    const unused = Object.keys(ERROR_CODES).filter((c) => !text.includes(`"${c}"`));
    expect(unused).toEqual([]);
  });

  it("each kind maps to its subclass and carries code, unit, retryable and cause", () => {
    const cause = new Error("driver said no");
    const cases = [
      ["DGENT_INVALID_ID", ValidationError],
      ["DGENT_CONFLICT", ConflictError],
      ["DGENT_UNKNOWN_ADAPTER", ConfigError],
      ["DGENT_BACKEND_ERROR", BackendError],
      ["DGENT_UNAVAILABLE", UnavailableError],
      ["DGENT_CLOSED", LifecycleError],
    ] as const;
    for (const [c, Class] of cases) {
      const e = dgentError(c, "message", { unit: "sqlite", cause });
      expect(e).toBeInstanceOf(Class);
      expect(e).toBeInstanceOf(DgentError);
      expect(e.code).toBe(c);
      expect(e.unit).toBe("sqlite");
      expect(e.cause).toBe(cause);
      expect(e.retryable).toBe(ERROR_CODES[c].retryable);
      expect(e.name).toBe(Class.name);
    }
    expect(BudgetError.name).toBe("BudgetError");
  });
});
