import { dgentError, type DgentError, type ErrorCode } from "../../core/errors.js";
import type { ConfigSource } from "./source.js";

export type ConfigPath = readonly (string | number)[];

/** `tiers[0].options.url`: how a path inside a config file is written in messages. */
export function pathText(path: ConfigPath): string {
  if (path.length === 0) return "(top level)";
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number" || /^\d+$/.test(segment)) out += `[${segment}]`;
    else out += /^[A-Za-z_$][\w$-]*$/.test(segment) ? `${out ? "." : ""}${segment}` : `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** `/tiers/0/options` → `["tiers", 0, "options"]`. */
export function pointerPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * The one way config errors are made: `<file>:<line>:<column>: <path>: <what was expected>`, with
 * `details: { file, path, line, column }` for tools.
 */
export function configProblem(
  code: ErrorCode,
  source: ConfigSource,
  path: ConfigPath,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown>; unit?: string } = {},
): DgentError {
  const pos = source.locate(path);
  const where = pos ? `${source.file}:${pos.line}:${pos.column}` : source.file;
  return dgentError(code, `${where}: ${pathText(path)}: ${message}`, {
    unit: options.unit ?? "config",
    ...(options.cause !== undefined ? { cause: options.cause } : {}),
    details: {
      file: source.file,
      path: pathText(path),
      ...(pos ? { line: pos.line, column: pos.column } : {}),
      ...options.details,
    },
  });
}
