import type * as Yaml from "yaml";
import type { Alias, Document, LineCounter, Node } from "yaml";
import { lazyRequire } from "../../core/lazy.js";

/** Loaded with the first config file read. */
const yaml = lazyRequire<typeof Yaml>("yaml");
import { dgentError } from "../../core/errors.js";

/** A position in a config file, 1-based. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** A config file's text, parsed, with what it takes to point at a path inside it. */
export interface ConfigSource {
  /** The file's path, or a label such as `<object>` for a config given as an object. */
  readonly file: string;
  readonly data: unknown;
  /** Where the value at a path (JSON Pointer segments) starts, when the file has text. */
  locate(path: readonly (string | number)[]): SourcePosition | null;
}

export type ConfigFormat = "json" | "yaml";

/** `.json` is JSON; `.yaml`, `.yml` and anything else is YAML (a superset of JSON). */
export function formatOf(file: string): ConfigFormat {
  return /\.json$/i.test(file) ? "json" : "yaml";
}

/**
 * Parses a config file's text, keeping node positions so that errors point at a line. JSON is
 * parsed by `JSON.parse` (its syntax, its errors), then by `yaml` for the positions.
 */
export function parseSource(text: string, file: string, format: ConfigFormat = formatOf(file)): ConfigSource {
  if (format === "json") {
    try {
      JSON.parse(text);
    } catch (error) {
      let offset: number | null = null;
      try {
        offset = jsonErrorOffset(text);
      } catch {
        offset = null; // nested too deeply for the check: the message still names the file
      }
      const reason = (error as Error).message.replace(/ in JSON at position \d+.*$/s, "").replace(/,\s*(\.\.\.)?"[\s\S]*$/, "").replace(/ is not valid JSON$/, "").replace(/^JSON\.parse: /, "");
      throw syntaxError(file, offset === null ? null : positionOf(text, offset), reason, error);
    }
  }
  const { LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, merge: false });
  } catch (error) {
    // The parser recurses per nesting level: thousands of nested [ or { exhaust the stack.
    throw syntaxError(file, null, error instanceof RangeError ? "nested too deeply to read" : String(error), error);
  }
  const problem = doc.errors[0];
  if (problem) {
    const pos = problem.linePos?.[0] ?? null;
    const first = (problem.message.split("\n")[0] ?? problem.message).replace(/ at line \d+, column \d+:?$/, "");
    const line = pos ? (text.split("\n")[pos.line - 1] ?? "") : "";
    const hint = /[[{][^\n]*\$\{/.test(line) ? ' (inside { } or [ ], quote a value that uses ${…}: "${VAR}")' : "";
    throw syntaxError(file, pos ? { line: pos.line, column: pos.col } : null, `${first}${hint}`, problem);
  }
  const data = aliasFreeData(doc, lines, file);
  return {
    file,
    data,
    locate: (path) => {
      const offset = offsetOf(doc, path);
      if (offset === null) return null;
      const p = lines.linePos(offset);
      return { line: p.line, column: p.col };
    },
  };
}

/** How many nodes aliases may expand to in one file; more is an alias bomb (the `yaml` package's check). */
const MAX_ALIAS_COUNT = 100;

/**
 * The document as plain data, refusing what `toJS` cannot turn into a finite tree: an alias
 * inside the node it names (a recursive alias, which would make a cycle) and an alias bomb (a
 * few lines that expand to millions of nodes). Both are `DGENT_CONFIG_SYNTAX` at the alias.
 */
function aliasFreeData(doc: Document, lines: LineCounter, file: string): unknown {
  const aliases: Alias[] = [];
  yaml().visit(doc, {
    Alias(_key, node) {
      aliases.push(node);
    },
  });
  const at = (node: Alias) => {
    const offset = rangeStart(node);
    if (offset === null) return null;
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  for (const alias of aliases) {
    const target = alias.resolve(doc);
    if (target === undefined) throw syntaxError(file, at(alias), `the alias *${alias.source} names no anchor &${alias.source} before it`, null);
    const [start, end] = (target?.range ?? []) as number[];
    const offset = rangeStart(alias);
    if (start !== undefined && end !== undefined && offset !== null && offset >= start && offset < end) {
      throw syntaxError(file, at(alias), `the alias *${alias.source} is inside the node &${alias.source} it names (a recursive alias); a config must be a tree`, null);
    }
  }
  try {
    const data: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    return data === undefined ? null : data;
  } catch (error) {
    const first = aliases[0];
    const reason = /excessive alias count/i.test((error as Error).message)
      ? `aliases expand to too many nodes (more than ${MAX_ALIAS_COUNT} per alias; an alias bomb?)`
      : (error as Error).message.split("\n")[0] ?? String(error);
    throw syntaxError(file, first ? at(first) : null, reason, error);
  }
}

/** A config given as an object: paths, no lines. */
export function objectSource(data: unknown, label = "<config object>"): ConfigSource {
  return { file: label, data, locate: () => null };
}

function positionOf(text: string, offset: number): SourcePosition {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

function syntaxError(file: string, pos: SourcePosition | null, reason: string, cause: unknown) {
  const where = pos ? `${file}:${pos.line}:${pos.column}` : file;
  return dgentError("DGENT_CONFIG_SYNTAX", `${where}: not valid ${formatOf(file) === "json" ? "JSON" : "YAML"}: ${reason}`, {
    unit: "config",
    cause,
    details: { file, ...(pos ? { line: pos.line, column: pos.column } : {}) },
  });
}

/**
 * The offset of a path's node: for a map entry, its key (the start of `key: value`); for a
 * sequence item, the item. The deepest node that exists when the path goes further than the file.
 */
function offsetOf(doc: Document, path: readonly (string | number)[]): number | null {
  const { isMap, isPair, isScalar, isSeq } = yaml();
  let node: unknown = doc.contents;
  let offset: number | null = rangeStart(node);
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
      if (!pair) return offset;
      offset = rangeStart(pair.key) ?? rangeStart(pair.value) ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (item === undefined) return offset;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      return offset;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | null {
  const range = (node as Node | null | undefined)?.range;
  return Array.isArray(range) ? (range[0] as number) : null;
}

/**
 * Where JSON text stops being JSON (V8's messages no longer say): a small recursive-descent
 * check that returns the offset of the first character that does not fit, or null.
 */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail();
  };
  const string = () => {
    if (text[i] !== '"') fail();
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail();
      if (text[i] === "\\") {
        i++;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? "")) fail();
      }
      i++;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ":") fail();
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail();
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail();
      i += (m as RegExpExecArray)[0].length;
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
    return null;
  } catch (at) {
    if (typeof at === "number") return Math.min(at, text.length);
    throw at;
  }
}
