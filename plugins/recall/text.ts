/** What text of a datum is embedded (README "What is indexed"). */
import type { Datum } from "../../core/datum.js";

export interface TextOptions {
  readonly field: string | null;
  readonly text: ((datum: Datum) => string | null) | null;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The text to embed for `d`, or null when it has none: `text(d)` when given; else the content as
 * UTF-8 (null when it is not UTF-8), or with `field` that (dotted) string field of JSON content;
 * null when it is empty or only whitespace.
 */
export function textOf(options: TextOptions, d: Datum): string | null {
  if (options.text) return options.text(d);
  let text: string;
  try {
    text = utf8.decode(d.content);
  } catch {
    return null;
  }
  if (options.field !== null) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return null;
    }
    for (const part of options.field.split(".")) {
      value = value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>)[part] : undefined;
    }
    text = typeof value === "string" ? value : "";
  }
  return text.trim().length > 0 ? text : null;
}
