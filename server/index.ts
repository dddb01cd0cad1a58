/**
 * `createServer(stores, options)`: dgent's HTTP API on Fastify — versioned REST routes per
 * namespace for the protocol, refs, transactions and queries; an SSE change stream; bearer-token
 * access control; body, time and rate limits. See server/README.md.
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { memoryAdapter } from "../adapters/memory/index.js";
import { dgentError, isDgentError } from "../core/errors.js";
import { assertNamespace } from "../core/paths.js";
import { createStore, isStore, type Store } from "../core/store.js";
import { ANONYMOUS, authorize, Authenticator, bearer, RateLimiter, type AuthOptions, type Principal, type Right } from "./auth.js";
import { ChangeFeed, feedSlot, tappedFeedSlot, type Feed } from "./changes.js";
import { TableFeed, changeTableOf } from "./table-feed.js";
import { asDgentError, errorBody, statusOf } from "./errors.js";
import { registerInspector } from "./inspector/index.js";
import { registerObservability } from "./observability.js";
import { openApiDocument } from "./openapi.js";
import { ROUTES, type RouteContext, type Served } from "./routes.js";

export { hashToken, type AuthOptions, type RateLimit, type Right, type TokenConfig, type TokenScope } from "./auth.js";
export type { Change, ChangeOp } from "./changes.js";
export { ROUTES } from "./routes.js";

/** The stores to serve: one, several (by their namespaces), or a function that opens a namespace's store (`null`: no such namespace). */
export type StoreSource = Store | readonly Store[] | ((namespace: string) => Store | null | Promise<Store | null>);

export interface ServerOptions {
  /** Bearer tokens and their scopes; `null` turns access control off (say so explicitly). */
  readonly auth: AuthOptions | null;
  /**
   * Where the change stream's events are kept, for a store whose tier does not log its own changes
   * (a store whose one tier is SQLite streams from the file's change table, whatever is given
   * here): a store; `undefined` for an in-memory log (no resume across restarts); `false` for no
   * change stream at all.
   */
  readonly changeLog?: Store | false;
  /** Events kept per namespace in the change log (default 100 000). */
  readonly changeRetention?: number;
  /** Largest request body in bytes (default 16 MiB). */
  readonly bodyLimit?: number;
  /** Milliseconds a client has to send a whole request (default 30 000). */
  readonly requestTimeoutMs?: number;
  /** Milliseconds between SSE heartbeats (default 15 000). */
  readonly heartbeatMs?: number;
  /** Events an SSE client may fall behind before it is dropped (default 1 000). */
  readonly maxQueue?: number;
  /** TLS: PEM key and certificate. */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Origins allowed to call the API from a browser; CORS is off without it. */
  readonly cors?: { readonly origins: readonly string[] };
  /** Request logging: `false` (default) or a destination stream for JSON lines. Tokens are never logged. */
  readonly log?: false | { readonly stream: NodeJS.WritableStream; readonly level?: string };
  /** Serve the inspector page at `/inspector`. */
  readonly inspector?: boolean;
  /** The clock for token expiry and rate limits (tests). */
  readonly now?: () => number;
}

export interface DgentServer {
  /** The Fastify instance (routes registered, not listening). */
  readonly app: FastifyInstance;
  /** Starts listening; resolves to the base URL. */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /** Ends every change stream, stops listening, closes the stores this server opened. */
  close(): Promise<void>;
  /** Change-stream clients connected now. */
  readonly sseClients: number;
}

declare module "fastify" {
  interface FastifyRequest {
    dgentPrincipal: Principal | null;
  }
  interface FastifyContextConfig {
    dgentRight?: Right;
  }
}

const VERSION = "1";

export async function createServer(source: StoreSource, options: ServerOptions): Promise<DgentServer> {
  if (options === null || typeof options !== "object" || !("auth" in options)) {
    throw dgentError("DGENT_INVALID_OPTIONS", "createServer needs options.auth: { tokens: [...] }, or null to serve without access control", { unit: "server" });
  }
  const now = options.now ?? Date.now;
  const auth = options.auth === null ? null : new Authenticator(options.auth, now);
  const limiter = options.auth?.rateLimit ? new RateLimiter(options.auth.rateLimit, now) : null;
  const ownLog = options.changeLog === undefined ? createStore({ tiers: [memoryAdapter()], namespace: "changes" }) : null;
  const log = options.changeLog === false ? null : (options.changeLog ?? ownLog);
  const retention = options.changeRetention ?? 100_000;

  const fixed = new Map<string, Store>();
  const open = typeof source === "function" ? source : null;
  if (open === null) for (const s of isStore(source) ? [source] : (source as readonly Store[])) fixed.set(s.namespace, s);
  const served = new Map<string, Promise<Served | null>>();
  const stores = new Map<string, Store>();
  const owned: Store[] = [];
  const feeds: Feed[] = [];

  const serve = (store: Store): Served => {
    stores.set(store.namespace, store);
    let feed: Feed | null = null;
    if (log !== null) {
      // A tier that logs its own changes (SQLite) is the stream; otherwise the server logs them.
      const table = changeTableOf(store);
      if (table !== null) {
        // The store's hooks are tapped only once someone subscribes: until then a write costs the feed nothing.
        const tableFeed: Feed = new TableFeed(store, table, retention, () => void (feedSlot(store).feed = tableFeed));
        feed = tableFeed;
        const slot = tappedFeedSlot(store);
        if (slot !== undefined) slot.feed = null;
      } else {
        feed = new ChangeFeed(store.namespace, log, retention);
        feedSlot(store).feed = feed;
      }
      feeds.push(feed);
    }
    return { store, feed };
  };
  for (const s of fixed.values()) served.set(s.namespace, Promise.resolve(serve(s)));

  const resolve = async (namespace: string): Promise<Served> => {
    assertNamespace(namespace);
    let entry = served.get(namespace);
    if (entry === undefined && open !== null) {
      entry = Promise.resolve(open(namespace)).then((s) => {
        if (s === null) return null;
        owned.push(s);
        return serve(s);
      });
      entry.catch(() => served.delete(namespace));
      served.set(namespace, entry);
    }
    const found = entry === undefined ? null : await entry;
    if (found === null) throw dgentError("DGENT_NOT_FOUND", "namespace not found", { unit: "server" });
    await found.feed?.ready();
    ready.set(namespace, found);
    return found;
  };
  /** Namespaces resolved and ready: a request for one of them takes no await to find its store. */
  const ready = new Map<string, Served>();

  const streams = new Set<() => void>();
  const ctx: RouteContext = {
    sse: { heartbeatMs: options.heartbeatMs ?? 15_000, maxQueue: options.maxQueue ?? 1000 },
    onClose: (end) => {
      streams.add(end);
      return () => void streams.delete(end);
    },
  };

  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  if (!Number.isInteger(requestTimeout) || requestTimeout < 1) {
    throw dgentError("DGENT_INVALID_OPTIONS", `requestTimeoutMs must be a whole number of milliseconds ≥ 1, got ${String(options.requestTimeoutMs)}`, { unit: "server" });
  }
  // Node checks for requests past their timeout only every connectionsCheckingInterval (30 s by
  // default), so a small timeout would act as 30 s: check four times per timeout instead (a
  // request is then answered 408 between 1 and 1.25 timeouts after it began). And the timeout goes
  // to Node's constructor too: Fastify assigns it after the server is built, when Node has already
  // fixed headersTimeout at 60 s, and a request whose body stalls was then never timed out
  // (Node 20; server/timeout.test.ts).
  const checking = { requestTimeout, connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(requestTimeout / 4))) };
  const app = Fastify({
    ...(options.https ? { https: { key: options.https.key, cert: options.https.cert, ...checking } } : { http: checking }),
    bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024,
    requestTimeout,
    clientErrorHandler: (error, socket) => clientError(error, socket, requestTimeout),
    onProtoPoisoning: "ignore",
    onConstructorPoisoning: "ignore",
    routerOptions: { maxParamLength: 8192 },
    logger: options.log
      ? {
          level: options.log.level ?? "info",
          stream: options.log.stream,
          serializers: {
            // The URL without its query (an access_token may be there); never a header.
            req: (req: { method?: string; url?: string }) => ({ method: req.method, url: (req.url ?? "").split("?")[0] }),
          },
        }
      : false,
  }) as unknown as FastifyInstance;

  app.decorateRequest("dgentPrincipal", null);
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, payload, done) => done(null, payload));

  // Hooks in callback style (no promise per request), and access control on the API's routes only
  // (a route-level hook that knows its right, instead of reading the route's options, which Fastify
  // builds afresh on every read).
  const cors = options.cors ? new Set(options.cors.origins) : null;
  if (cors !== null) {
    app.addHook("onRequest", (request, reply, done) => {
      const origin = request.headers.origin;
      if (origin !== undefined && cors.has(origin)) {
        void reply.header("access-control-allow-origin", origin).header("vary", "origin");
        if (request.method === "OPTIONS") {
          void reply
            .header("access-control-allow-methods", "GET, POST, PUT, DELETE")
            .header("access-control-allow-headers", "authorization, content-type, last-event-id, x-dgent-metadata")
            .code(204)
            .send();
        }
      }
      done();
    });
  }
  const guard = (right: Right) =>
    function access(request: FastifyRequest, _reply: unknown, done: (error?: Error) => void): void {
      const principal = auth === null ? ANONYMOUS : auth.authenticate(tokenOf(request));
      limiter?.take(principal.name);
      authorize(principal, (request.params as { ns: string }).ns, right);
      request.dgentPrincipal = principal;
      done();
    };

  app.setErrorHandler(async (error, request, reply) => {
    const e = asDgentError(error);
    const status = statusOf(e);
    if (status >= 500) request.log.error({ code: e.code, err: { message: isDgentError(error) ? error.message : "internal error" } }, "request failed");
    if (e.code === "DGENT_RATE_LIMITED") void reply.header("retry-after", String(e.details.retryAfterSeconds ?? 1));
    if (e.code === "DGENT_UNAUTHORIZED") void reply.header("www-authenticate", 'Bearer realm="dgent"');
    return reply.code(status).send(errorBody(e));
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(errorBody(dgentError("DGENT_NOT_FOUND", "no such route", { unit: "server" }))));

  const document = openApiDocument(ROUTES, VERSION);
  app.get("/v1/openapi.json", async () => document);

  for (const spec of ROUTES) {
    app.route({
      method: spec.method,
      url: `/v1/ns/:ns${spec.path}`,
      config: { dgentRight: spec.right },
      // Without access control there is nothing to check: no hook at all (one step less per request).
      ...(auth === null ? {} : { onRequest: guard(spec.right) }),
      // Not async: a namespace already resolved goes to its route's handler with no await between.
      handler: (request, reply) => {
        const ns = (request.params as { ns: string }).ns;
        if (spec.operationId === "deleteMany" && (request.body as { all?: unknown } | null)?.all === true) {
          try {
            authorize(request.dgentPrincipal ?? ANONYMOUS, ns, "admin");
          } catch (error) {
            return Promise.reject(error);
          }
        }
        const target = ready.get(ns);
        return target !== undefined ? spec.handler(target, request as never, reply, ctx) : resolve(ns).then((found) => spec.handler(found, request as never, reply, ctx));
      },
    });
  }

  const primary = fixed.values().next().value ?? null;
  registerObservability(app, primary, { stores, sseClients: () => streams.size });
  if (options.inspector) registerInspector(app, primary, { stores });

  let closed = false;
  return {
    app,
    get sseClients() {
      return streams.size;
    },
    async listen({ port = 0, host = "127.0.0.1" } = {}) {
      const address = await app.listen({ port, host });
      return address.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]");
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const end of [...streams]) end();
      await app.close();
      for (const s of [...fixed.values(), ...owned]) {
        const slot = tappedFeedSlot(s);
        if (slot !== undefined && slot.feed !== null && feeds.includes(slot.feed)) slot.feed = null;
      }
      for (const feed of feeds) feed.close();
      for (const s of owned) await s.close();
      await ownLog?.close();
    },
  };
}

/**
 * A request the HTTP parser refused before any route ran — too slow (Node's request timeout),
 * headers too large, unparsable — answered with a coded body, then the connection is closed
 * (as Fastify's default handler does, with its bodies).
 */
function clientError(error: Error & { code?: string }, socket: Socket, timeoutMs: number): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const e =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? dgentError("DGENT_REQUEST_TIMEOUT", `the request was not received in full within ${timeoutMs} ms`, { unit: "server", details: { timeoutMs } })
      : error.code === "HPE_HEADER_OVERFLOW"
        ? dgentError("DGENT_PAYLOAD_TOO_LARGE", "the request headers are larger than the server accepts", { unit: "server" })
        : dgentError("DGENT_INVALID_OPTIONS", "bad request: the HTTP request could not be parsed", { unit: "server" });
  const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : statusOf(e);
  const text = JSON.stringify(errorBody(e));
  // Only when no answer has begun on this connection (as Node's own handler): else just close it.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n`;
  socket.end(head + text, () => socket.destroy());
}

function tokenOf(request: FastifyRequest): string | undefined {
  const header = bearer(request.headers.authorization);
  if (header !== undefined) return header;
  // EventSource cannot send headers: the change stream also takes ?access_token= (never logged).
  if (request.method === "GET" && request.url.includes("/changes")) {
    const t = (request.query as Record<string, unknown>).access_token;
    if (typeof t === "string") return t;
  }
  return undefined;
}
