import type * as Yaml from "yaml";
import { lazyRequire } from "../core/lazy.js";

/** Loaded by `safeYaml` only: the other commands do not pay for it. */
const yaml = lazyRequire<typeof Yaml>("yaml");

/**
 * What the CLI writes to a terminal cannot move the cursor, recolour it, retitle it or reorder
 * the text around it: ids, tag values, paths and messages come from users and files. Human-
 * readable output shows those characters escaped; JSON output keeps every value exact and escapes
 * them the JSON way (`\u202e`), which parses back to the same string.
 *
 * Escaped: C0 controls (U+0000–U+001F, ESC and so CSI sequences included), DEL, C1 controls
 * (U+0080–U+009F), the bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
 * U+2066–U+2069) and the line and paragraph separators (U+2028, U+2029).
 */
export const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const HAS_UNSAFE = new RegExp(UNSAFE.source);
/** The same, line feeds excepted: a document's own line breaks. */
const UNSAFE_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => (c.codePointAt(0) as number).toString(16).padStart(width, "0");

/** One value for a terminal: unsafe characters as `\xHH` (up to U+00FF) or `\u{HHHH}`. */
export function safe(text: string): string {
  return text.replace(UNSAFE, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u{${hex(c, 4)}}`));
}

/** Lines for a terminal: each escaped as `safe` does, the line breaks between them kept. */
export function safeLines(text: string): string {
  return text.split("\n").map(safe).join("\n");
}

/** JSON whose text holds no unsafe character: the same value, `\uXXXX` escapes where JSON allows them raw. */
export function safeJson(value: unknown, indent?: number): string {
  // Inside strings JSON.stringify has escaped C0 already; what is left raw is its own indentation.
  return JSON.stringify(value, null, indent).replace(UNSAFE_BUT_LF, (c) => `\\u${hex(c, 4)}`);
}

/**
 * YAML of the same value whose text holds no unsafe character: strings that hold one are
 * written double-quoted with `\uXXXX` escapes (YAML's own), the rest as usual.
 */
export function safeYaml(value: unknown): string {
  const { stringify } = yaml();
  const text = stringify(value, { lineWidth: 0 });
  if (!new RegExp(UNSAFE_BUT_LF.source).test(text)) return text;
  // Only double-quoted scalars can carry escapes: quote every string that needs one, keys too.
  const marked = stringify(quoteUnsafe(value), { lineWidth: 0, doubleQuotedAsJSON: true });
  return marked.replace(UNSAFE_BUT_LF, (c) => `\\u${hex(c, 4)}`);
}

function quoteUnsafe(value: unknown): unknown {
  if (typeof value === "string") {
    if (!HAS_UNSAFE.test(value)) return value;
    const { Scalar } = yaml();
    const scalar = new Scalar(value);
    scalar.type = Scalar.QUOTE_DOUBLE;
    return scalar;
  }
  if (Array.isArray(value)) return value.map(quoteUnsafe);
  if (value !== null && typeof value === "object") {
    return new Map(Object.entries(value).map(([k, v]) => [quoteUnsafe(k), quoteUnsafe(v)]));
  }
  return value;
}

/** Where output goes: the `stdout` of a command's `Io` (cli/command.ts). */
interface Out {
  stdout(chunk: string): unknown;
}

/** Human-readable output: control and bidi characters shown escaped. */
export const print = (io: Out, text: string) => io.stdout(`${safeLines(text)}\n`);

/** JSON output: the exact values, with no raw control or bidi character in the text. */
export const printJson = (io: Out, value: unknown, indent?: number) => io.stdout(`${safeJson(value, indent)}\n`);

/** A value quoted for a message: JSON string syntax, then made safe for a terminal. */
export const quoted = (value: string) => safe(JSON.stringify(value));
