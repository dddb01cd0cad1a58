/**
 * The HTTP tier's transport: one JSON request to a `dgent serve`, with a timeout, its error body
 * turned back into the `DgentError` the server raised (same code, message and details).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { dgentError, ERROR_CODES, type DgentError, type ErrorCode } from "../../core/errors.js";
import { redactUrl } from "../../core/redact.js";

export const UNIT = "http";

/** Codes for answers without a dgent error body (a proxy's page, a gateway timeout). */
const BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: "DGENT_INVALID_OPTIONS",
  401: "DGENT_UNAUTHORIZED",
  403: "DGENT_FORBIDDEN",
  404: "DGENT_NOT_FOUND",
  408: "DGENT_REQUEST_TIMEOUT",
  409: "DGENT_CONFLICT",
  413: "DGENT_PAYLOAD_TOO_LARGE",
  429: "DGENT_RATE_LIMITED",
};

export interface ClientOptions {
  readonly url: string;
  readonly token: string | undefined;
  readonly namespace: string;
  readonly timeoutMs: number;
  /** PEM certificates to trust for https (a private CA); default: Node's. */
  readonly ca?: string | Buffer;
}

/** A path segment: percent-encoded, `.` too (so `.` and `..` are never path steps). */
export const segment = (value: string) => encodeURIComponent(value).replaceAll(".", "%2E");

export class HttpClient {
  readonly #base: string;
  readonly #root: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;
  readonly #agent: HttpAgent;
  readonly #request: typeof httpRequest;
  /** The server's URL without credentials, for messages. */
  readonly location: string;

  constructor(options: ClientOptions) {
    this.#root = options.url.replace(/\/+$/, "");
    this.#base = `${this.#root}/v1/ns/${segment(options.namespace)}`;
    this.#headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    this.#timeoutMs = options.timeoutMs;
    this.location = redactUrl(this.#root);
    const tls = this.#root.startsWith("https:");
    this.#agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(options.ca !== undefined ? { ca: options.ca } : {}) }) : new HttpAgent({ keepAlive: true, maxSockets: 64 });
    this.#request = tls ? httpsRequest : httpRequest;
  }

  /** Closes the kept-alive connections. */
  destroy(): void {
    this.#agent.destroy();
  }

  #send(method: string, url: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...this.#headers };
      if (body !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(body);
      }
      const req = this.#request(url, { method, headers, agent: this.#agent }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", fail);
      });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error("timed out"), { name: "TimeoutError" })), timeoutMs);
      function fail(error: unknown) {
        clearTimeout(timer);
        reject(error);
      }
      req.on("error", fail);
      req.end(body);
    });
  }

  /** A JSON request below `/v1/ns/<namespace>`; `null` for a 404 when `nullOn404`. */
  async call<T>(method: string, path: string, body?: unknown, options: { nullOn404?: boolean; timeoutMs?: number; root?: boolean } = {}): Promise<T | null> {
    const url = `${options.root ? this.#root : this.#base}${path}`;
    let answer: { status: number; text: string };
    try {
      answer = await this.#send(method, url, body === undefined ? undefined : JSON.stringify(body), options.timeoutMs ?? this.#timeoutMs);
    } catch (error) {
      throw dgentError("DGENT_UNAVAILABLE", `dgent server ${this.location} cannot be reached: ${reason(error)}`, { unit: UNIT, cause: error });
    }
    const { status, text } = answer;
    if (status >= 200 && status < 300) return JSON.parse(text) as T;
    if (status === 404 && options.nullOn404 && isCode(text, "DGENT_NOT_FOUND")) return null;
    throw fromAnswer(status, text, this.location);
  }
}

function isCode(text: string, code: string): boolean {
  try {
    return (JSON.parse(text) as { error?: { code?: unknown } }).error?.code === code;
  } catch {
    return false;
  }
}

function fromAnswer(status: number, text: string, location: string): DgentError {
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown; retryable?: unknown } } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // not a dgent answer: by status below
  }
  const e = parsed.error;
  if (e && typeof e.code === "string" && e.code in ERROR_CODES && typeof e.message === "string") {
    return dgentError(e.code as ErrorCode, e.message, {
      unit: UNIT,
      ...(e.details !== null && typeof e.details === "object" ? { details: e.details as Record<string, unknown> } : {}),
      ...(typeof e.retryable === "boolean" ? { retryable: e.retryable } : {}),
    });
  }
  const code = BY_STATUS[status] ?? (status >= 500 && status !== 501 ? "DGENT_UNAVAILABLE" : "DGENT_BACKEND_ERROR");
  return dgentError(code, `dgent server ${location} answered HTTP ${status}`, { unit: UNIT, details: { status } });
}

function reason(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError") return "timed out";
    return (error as NodeJS.ErrnoException).code ?? error.message;
  }
  return String(error);
}
