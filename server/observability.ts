/**
 * Process, readiness and metrics routes of `dgent serve`: `/healthz` (the process answers),
 * `/readyz` (every served namespace's landing tier is up) and `/metrics` (Prometheus text: the
 * server's own request metrics, change-stream clients and process metrics, merged with the
 * metrics plugin of every served store that has one). Registered by `createServer`.
 *
 * `/healthz` and `/readyz` need no token and say nothing about what is stored. `/metrics` names
 * namespaces and tiers, so with access control on it takes a token that may read every namespace
 * (a scope `{ namespace: "*", right: "read" }`), as a Prometheus scrape job's `authorization`.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "../core/store.js";
import { DEFAULT_BUCKETS, errorCode, HistogramTallies, metricsOf, Tallies, type MetricsHandle, type Observer, type Tally } from "../plugins/metrics/index.js";
import { ROUTES } from "./routes.js";

export interface ObservabilityOptions {
  /** The stores the server serves, by namespace, kept up to date as namespaces open (the readiness check probes each one). */
  readonly stores: ReadonlyMap<string, Store>;
  /** Change-stream clients connected now. */
  readonly sseClients?: () => number;
  /**
   * Measure every served store (default true): a store composed with the metrics plugin reports
   * through it, any other is instrumented on its hooks when the server first sees it.
   * `false`: only stores composed with the plugin have store metrics.
   */
  readonly storeMetrics?: boolean;
}

/** What `/metrics` merges: the server's registry and each store's metrics handle (when the store has the plugin). */
export interface ServerMetrics {
  readonly registry: Registry;
  /** Prometheus text of the server and every served store with the metrics plugin. */
  text(): Promise<string>;
}

/** Marks the in-process access checks (`accessStatus`) so they are not counted as requests. */
const PROBE_HEADER = "x-dgent-access-check";
const PROBE_SECRET = randomBytes(16).toString("hex");

/**
 * prom-client's process metrics, collected once per process (they watch the event loop and GC
 * with observers of their own): every server in the process shows the same ones.
 */
let processMetrics: Registry | null = null;
function processRegistry(): Registry {
  if (processMetrics === null) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

const servers = new WeakMap<FastifyInstance, ServerMetrics>();

/** The metrics of a server made by `createServer` (its Fastify instance), for in-process reads. */
export function serverMetrics(app: FastifyInstance): ServerMetrics | undefined {
  return servers.get(app);
}

/** The store's metrics plugin handle, or `null` when it was composed without one. */
async function pluginHandle(store: Store): Promise<MetricsHandle | null> {
  try {
    return (await store.plugin("metrics")) as MetricsHandle;
  } catch {
    return null;
  }
}

export function registerObservability(app: FastifyInstance, _store: Store | null, opts: ObservabilityOptions): void {
  const stores = opts.stores;
  const measureAll = opts.storeMetrics !== false;
  const handleOf = (store: Store): Promise<MetricsHandle | null> => (measureAll ? metricsOf(store).catch(() => null) : pluginHandle(store));
  // Stores served from the start are measured from the start; namespaces opened on demand from
  // the end of their first request (that request itself is not in the store's numbers).
  let seen = 0;
  const attach = (): void => {
    if (!measureAll || stores.size === seen) return;
    seen = stores.size;
    for (const s of stores.values()) void handleOf(s);
  };
  attach();
  const registry = new Registry();
  // Counted in plain numbers per request, handed to prom-client when read (plugins/metrics/tally.ts).
  const requestTallies = new Tallies<"method" | "route" | "status">();
  const durationTallies = new HistogramTallies<"method" | "route">(DEFAULT_BUCKETS);
  const requests = new Counter({
    name: "dgent_http_requests_total",
    help: "HTTP requests answered, by method, route template and status.",
    labelNames: ["method", "route", "status"],
    registers: [registry],
    collect() {
      requestTallies.flush(this);
    },
  });
  new Histogram({
    name: "dgent_http_request_duration_seconds",
    help: "Time to answer an HTTP request (the change stream excluded: it lasts as long as its client), by method and route template.",
    labelNames: ["method", "route"],
    buckets: [...DEFAULT_BUCKETS],
    registers: [registry],
    collect() {
      durationTallies.flush(this);
    },
  });
  const errors = new Counter({
    name: "dgent_http_errors_total",
    help: "HTTP requests answered with an error, by route template and dgent error code.",
    labelNames: ["route", "code"],
    registers: [registry],
  });
  new Gauge({
    name: "dgent_sse_clients",
    help: "Change-stream (SSE) clients connected now.",
    registers: [registry],
    collect() {
      this.set(opts.sseClients?.() ?? 0);
    },
  });
  new Gauge({
    name: "dgent_namespaces_served",
    help: "Namespaces the server has open.",
    registers: [registry],
    collect() {
      this.set(stores.size);
    },
  });

  // Route template → protocol operation, so a failed request counts against its store's operation.
  const operations = new Map(ROUTES.map((r) => [`${r.method} /v1/ns/:ns${r.path}`, r.operationId]));
  const failed = new WeakMap<FastifyRequest, unknown>();
  const routeOf = (request: FastifyRequest): string => request.routeOptions.url ?? "unmatched";

  const children = new Map<string, { count: Tally; time: Observer | null }>();
  app.addHook("onError", async (request, _reply, error) => {
    failed.set(request, error);
  });
  // Callback style: a successful request costs no promise here.
  app.addHook("onResponse", (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    if (request.headers[PROBE_HEADER] === PROBE_SECRET) return done(); // an access check of ours, not a client's request
    attach();
    const route = routeOf(request);
    const status = reply.statusCode;
    // The labelled children, found once per (method, route, status).
    const key = `${request.method} ${route} ${status}`;
    let child = children.get(key);
    if (child === undefined) {
      child = {
        count: requestTallies.child({ method: request.method, route, status: String(status) }),
        time: route.endsWith("/changes") ? null : durationTallies.child({ method: request.method, route }),
      };
      children.set(key, child);
    }
    child.count.inc();
    child.time?.observe(reply.elapsedTime / 1000);
    if (status < 400) return done();
    const error = failed.get(request);
    const code = error === undefined ? (status === 404 ? "DGENT_NOT_FOUND" : `HTTP_${status}`) : codeOf(error);
    errors.inc({ route, code });
    const ns = (request.params as { ns?: unknown } | undefined)?.ns;
    const op = operations.get(`${request.method} ${route}`);
    const store = typeof ns === "string" ? stores.get(ns) : undefined;
    if (op === undefined || store === undefined || error === undefined) return done();
    handleOf(store)
      .then((handle) => handle?.recordError(op, error))
      .then(() => done(), done);
  });

  const text = async (): Promise<string> => {
    attach();
    const parts = [await registry.getMetricsAsJSON(), await processRegistry().getMetricsAsJSON()];
    for (const store of stores.values()) {
      const handle = await handleOf(store);
      if (handle !== null) parts.push(await handle.registry.getMetricsAsJSON());
    }
    return AggregatorRegistry.aggregate(parts).metrics();
  };
  servers.set(app, { registry, text });

  app.get("/healthz", async (_request, reply) => {
    void reply.header("cache-control", "no-store");
    return { status: "ok" };
  });
  app.get("/readyz", async (_request, reply) => {
    void reply.header("cache-control", "no-store");
    let ready = true;
    for (const s of stores.values()) {
      const report = await s.backend().catch(() => null);
      const landing = report?.tiers.find((t) => t.name === report.preferred);
      if (!report || !landing?.up) ready = false;
    }
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable" });
  });
  app.get("/metrics", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    const denied = await accessStatus(app, request, "*");
    if (denied !== null) return reply.code(denied.status).headers(denied.headers).send(denied.body);
    return reply.type(registry.contentType).send(await text());
  });
}

/** A refusal to pass on as it is: the API's own status, headers and coded JSON body. */
export interface Refusal {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

/**
 * Whether the request's token may read `namespace` (`"*"`: every namespace), decided by the API's
 * own access control: the same credentials are tried on `GET /v1/ns/:ns/datums?limit=1` in-process.
 * `null` when allowed, else the API's 401/403/429 answer. Without access control everything is allowed.
 */
export async function accessStatus(app: FastifyInstance, request: FastifyRequest, namespace: string): Promise<Refusal | null> {
  const headers: Record<string, string> = { [PROBE_HEADER]: PROBE_SECRET };
  if (typeof request.headers.authorization === "string") headers.authorization = request.headers.authorization;
  const answer = await app.inject({ method: "GET", url: `/v1/ns/${encodeURIComponent(namespace)}/datums?limit=1`, headers, remoteAddress: request.ip });
  if (answer.statusCode !== 401 && answer.statusCode !== 403 && answer.statusCode !== 429) return null;
  const passOn: Record<string, string> = {};
  for (const h of ["www-authenticate", "retry-after"]) {
    const v = answer.headers[h];
    if (typeof v === "string") passOn[h] = v;
  }
  return { status: answer.statusCode, headers: passOn, body: answer.json() as unknown };
}

/** The dgent code of an error as the server answers it (Fastify's own errors have `FST_…` codes). */
function codeOf(error: unknown): string {
  const code = errorCode(error);
  return code.startsWith("DGENT_") ? code : code === "FST_ERR_CTP_BODY_TOO_LARGE" ? "DGENT_PAYLOAD_TOO_LARGE" : "DGENT_INVALID_OPTIONS";
}
