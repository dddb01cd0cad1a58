/**
 * The one redaction of dgent: secrets out of everything that is printed — `dgent config print`,
 * `dgent migrate`'s report, `dgent backend`'s locations, error messages that quote a URL or an
 * option. Passwords never appear in logs or error messages (DESIGN.md §6).
 *
 * It errs on the side of hiding: where a URL written by hand is ambiguous (a raw `@`, `/`, `?`,
 * `#` or space in its password) everything that may be the password is hidden, even when that
 * also hides the host. Secrets it cannot recognise by shape (a bare key in a value under an
 * ordinary name) are for the caller to name: `redactText(text, [secret])`.
 */

/** What replaces a whole secret value: a config value under a secret key, a PEM private key. */
export const REDACTED = "<redacted>";
/** What replaces a secret inside a URL or a `key=value` pair. */
export const MASK = "***";

/**
 * Names whose values are secrets wherever they appear: config keys, query parameters, conninfo
 * pairs (`password`, `sslpassword`, `secretAccessKey`, `sessionToken`, `private_key`, `apiKey`,
 * `X-Amz-Signature`, `X-Amz-Credential`, `sig`…).
 */
const SECRET_KEY =
  /pass(word|wd|phrase)?$|passw(or)?d|secret|token|credentials?$|private[_-]?key|api[_-]?key|access[_-]?key|^auth$|authori[sz]ation|cookie|^pwd$|^sig$|signature|bearer|^jwt$/i;
/** Query parameters that are secrets only as parameters (`?key=` is an API key; a config `key:` is not). */
const SECRET_PARAM = /^(key|sig|code)$/i;

/** True when a key's value is a secret by its name. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** True when a URL query parameter or `name=value` pair carries a secret by its name. */
export function isSecretParam(name: string): boolean {
  return SECRET_KEY.test(name) || SECRET_PARAM.test(name);
}

/** `-----BEGIN … PRIVATE KEY …-----` up to its END line, or to the end of the text when it has none. */
const PEM_PRIVATE_KEY = /-{2,}\s*BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-{2,}[\s\S]*?(?:-{2,}\s*END [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-{2,}|$)/g;
/** `scheme://` at the start of a value. */
const URL_START = /^\s*[a-z][a-z0-9+.-]*:\/\//i;
/** A URL's userinfo inside free text, to the last `@` of the line (a raw space may be in the password). */
const USERINFO_IN_TEXT = /([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:)[^\n]*@/gi;
/** A URL inside free text: from its scheme to the next space or double quote (JSON). */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/[^\s"`<>]*/gi;
/**
 * `name=value` in a query string or a fragment; a value ends at an `&` that starts another
 * `name=`, or at the end (a raw `#`, `?` or space in it is hidden with it).
 */
const PARAM_IN_URL = /([?&;#])([^=&?#;\s]+)=((?:[^&]|&(?![\w.~%-]+=))*)/g;
/** `name=value` in free text: quoted values whole, others up to a space, `&`, `;` or `,`. */
const PARAM_IN_TEXT = /(^|[\s?&;,#{(\[])([A-Za-z_][\w.-]*)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'")\]}]*)/g;
/** `"name": "value"` (JSON in a message). */
const JSON_PAIR = /"([^"\\]{1,64})"(\s*:\s*)"(?:[^"\\]|\\.)*"/g;
/** `Authorization: Bearer …` / `Basic …`. */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g;

/**
 * A value that is one URL (a config value, a `--from`/`--to` argument, a tier's location) with
 * its password and secret query parameters replaced by `***`. The password is everything after
 * the first `:` of the userinfo up to the **last** `@`, so a raw `@`, `/`, `?`, `#`, `:` or space
 * in it is hidden too. A value that is not a URL is redacted as free text (`redactText`).
 */
export function redactUrl(value: string): string {
  const start = URL_START.exec(value);
  if (!start) return redactText(value);
  const head = start[0];
  const rest = value.slice(head.length);
  // Both rules read the original text and their spans are hidden together: a raw `@` or `:` in a
  // query secret must not pass for userinfo, nor a raw `?name=` in a password for a query.
  const spans: Array<[number, number]> = [];
  const at = rest.lastIndexOf("@");
  const colon = at < 0 ? -1 : rest.slice(0, at).indexOf(":");
  if (colon >= 0) spans.push([colon + 1, at]);
  for (const m of rest.matchAll(PARAM_IN_URL)) {
    const [, sep, name, secret] = m as unknown as [string, string, string, string];
    if (secret.length === 0 || !isSecretParam(safeDecode(name))) continue;
    const from = (m.index as number) + sep.length + name.length + 1;
    spans.push([from, from + secret.length]);
  }
  return head + masked(rest, spans);
}

/** `text` with each span (merged where they overlap or touch) replaced by `***`. */
function masked(text: string, spans: Array<[number, number]>): string {
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let pos = 0;
  let [from, to] = spans[0] as [number, number];
  for (const [a, b] of spans.slice(1)) {
    if (a <= to) to = Math.max(to, b);
    else {
      out += `${text.slice(pos, from)}${MASK}`;
      pos = to;
      [from, to] = [a, b];
    }
  }
  return `${out}${text.slice(pos, from)}${MASK}${text.slice(to)}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Free text (an error message, a driver's message, a config value) with secrets replaced: PEM
 * private keys of every header form, URL passwords, secret `name=value` pairs (query strings,
 * conninfo, `"password": "…"` in JSON), `Bearer` tokens, and each of `secrets` (raw, percent-
 * encoded and JSON-escaped; those shorter than 4 characters only through the patterns, as they
 * would mangle ordinary words). A text that is one URL is redacted as `redactUrl` does.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(PEM_PRIVATE_KEY, REDACTED);
  if (URL_START.test(out) && !/[\r\n]/.test(out)) out = redactUrl(out);
  else {
    out = out
      // A password may hold spaces: from a URL's `user:` to the last `@` on the line is hidden first.
      .replace(USERINFO_IN_TEXT, (_whole, head: string) => `${head}${MASK}@`)
      .replace(URL_IN_TEXT, (url) => redactUrl(url))
      // Outside a URL only the names that are secrets everywhere: `key=value` is ordinary prose.
      .replace(PARAM_IN_TEXT, (whole, pre: string, name: string) => (isSecretKey(name) ? `${pre}${name}=${MASK}` : whole))
      .replace(JSON_PAIR, (whole, name: string, colon: string) => (isSecretKey(name) ? `"${name}"${colon}"${MASK}"` : whole));
  }
  out = out.replace(AUTH_SCHEME, `$1 ${MASK}`);
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    const forms = new Set([secret, encodeURIComponent(secret), encodeURI(secret), JSON.stringify(secret).slice(1, -1)]);
    for (const form of [...forms].sort((a, b) => b.length - a.length)) out = out.split(form).join(MASK);
  }
  return out;
}

/** `redactText` without named secrets: what a config value or a message is printed through. */
export function redactString(text: string): string {
  return redactText(text);
}

/**
 * A deep copy with secrets replaced: every value under a secret-looking key (strings and
 * numbers; booleans stay, they tell nothing) becomes `<redacted>`, and every other string is
 * redacted as text (URL passwords, secret parameters, PEM private keys).
 */
export function redactConfig<T>(value: T): T {
  return redactValue(value, false) as T;
}

function redactValue(value: unknown, secret: boolean): unknown {
  if (typeof value === "string") return secret ? REDACTED : redactText(value);
  if (typeof value === "number" || typeof value === "bigint") return secret ? REDACTED : value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secret));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactValue(item, secret || isSecretKey(key));
    return out;
  }
  return value;
}

/**
 * A copy of a driver's error whose message, stack and string fields hold no secret (the original
 * when it is clean): what an adapter keeps as a `DgentError`'s `cause`, which a logger may print.
 */
export function scrubError(error: unknown, secrets: readonly string[] = []): unknown {
  if (!(error instanceof Error)) return typeof error === "string" ? redactText(error, secrets) : error;
  const message = redactText(error.message, secrets);
  const stack = error.stack === undefined ? undefined : redactText(error.stack, secrets);
  if (message === error.message && stack === error.stack) return error;
  const copy = new Error(message);
  for (const key of ["name", "code", "severity", "detail", "hint", "routine", "errno", "syscall", "status", "$metadata"] as const) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (typeof value === "string" || typeof value === "number") {
      (copy as unknown as Record<string, unknown>)[key] = typeof value === "string" ? redactText(value, secrets) : value;
    }
  }
  if (stack !== undefined) copy.stack = stack;
  return copy;
}
