/**
 * Secrets out of anything that is printed: `dgent config print`, error messages that quote a
 * value. Passwords never appear in logs or error messages (DESIGN.md §6).
 */

export const REDACTED = "<redacted>";

/** Keys whose values are secrets wherever they appear (`password`, `secretAccessKey`, `private_key`, `apiToken`…). */
const SECRET_KEY = /pass(word|wd|phrase)?$|passw(or)?d|secret|token|credentials?$|private[_-]?key|api[_-]?key|access[_-]?key|^auth$|authorization|cookie|^pwd$/i;

/** True when a key's value is a secret by its name. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A string with URL passwords, secret query parameters and PEM private keys replaced. */
export function redactString(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]*@/gi, "$1***@")
    .replace(/([?&](?:password|passwd|pass|secret|token|sslpassword|api[_-]?key|access[_-]?key|sig|signature)=)[^&#\s]*/gi, "$1***")
    .replace(/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, REDACTED);
}

/**
 * A deep copy with secrets replaced: every value under a secret-looking key (strings and
 * numbers; booleans stay, they tell nothing) and every password inside a URL.
 */
export function redactConfig<T>(value: T): T {
  return redactValue(value, false) as T;
}

function redactValue(value: unknown, secret: boolean): unknown {
  if (typeof value === "string") return secret ? REDACTED : redactString(value);
  if (typeof value === "number" || typeof value === "bigint") return secret ? REDACTED : value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secret));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactValue(item, secret || isSecretKey(key));
    return out;
  }
  return value;
}
