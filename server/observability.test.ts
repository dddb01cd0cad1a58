import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { createStore, dgentError, makeDatum, type Adapter } from "../core/index.js";
import { metricsPlugin, sampleValue } from "../plugins/metrics/index.js";
import { createServer, hashToken } from "./index.js";
import { serverMetrics } from "./observability.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-observability-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ALL = "all-namespaces-reader-token";
const ONLY_A = "namespace-a-admin-token";
const auth = {
  tokens: [
    { name: "prometheus", sha256: hashToken(ALL), scopes: [{ namespace: "*", right: "read" as const }] },
    { name: "a-admin", sha256: hashToken(ONLY_A), scopes: [{ namespace: "a", right: "admin" as const }] },
  ],
};
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const wire = (content: string) => {
  const d = makeDatum({ content });
  return { id: d.id, content: Buffer.from(content).toString("base64"), createdAt: d.createdAt, causalParent: null, metadata: {} };
};

describe("/healthz, /readyz and /metrics", () => {
  it("merges the server's metrics with each store's, behind a token that may read every namespace", async () => {
    const a = createStore({ namespace: "a", tiers: [sqliteAdapter({ path: join(dir, "a.db") })], plugins: [metricsPlugin()] });
    const b = createStore({ namespace: "b", tiers: [memoryAdapter()] }); // no metrics plugin: the server taps its hooks
    const server = await createServer([a, b], { auth });
    const url = await server.listen();
    try {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: "ready" });

      const putB = await fetch(`${url}/v1/ns/b/datums`, { method: "POST", headers: { ...bearer(ALL.replace("reader", "writer")), "content-type": "application/json" }, body: JSON.stringify(wire("to b")) });
      expect(putB.status).toBe(401); // not a token at all
      await b.put(makeDatum({ content: "in-process, to b" }));
      const put = await fetch(`${url}/v1/ns/a/datums`, { method: "POST", headers: { ...bearer(ONLY_A), "content-type": "application/json" }, body: JSON.stringify(wire("hello")) });
      expect(put.status).toBeLessThan(300);
      const missing = await fetch(`${url}/v1/ns/a/datums/nope`, { headers: bearer(ONLY_A) });
      expect(missing.status).toBe(404);
      const bad = await fetch(`${url}/v1/ns/a/datums`, { method: "POST", headers: { ...bearer(ONLY_A), "content-type": "application/json" }, body: JSON.stringify({ id: "x", content: "not base64!" }) });
      expect(bad.status).toBe(400);

      // No token, or a token that cannot read every namespace: the API's own 401/403, coded.
      const anonymous = await fetch(`${url}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("DGENT_UNAUTHORIZED");
      const scoped = await fetch(`${url}/metrics`, { headers: bearer(ONLY_A) });
      expect(scoped.status).toBe(403);
      expect(await scoped.text()).not.toMatch(/dgent_/);

      // An SSE client, acknowledged by the stream's first bytes.
      const controller = new AbortController();
      const sse = await fetch(`${url}/v1/ns/a/changes`, { headers: bearer(ALL), signal: controller.signal });
      const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/dgent change stream of a/);

      const res = await fetch(`${url}/metrics`, { headers: bearer(ALL) });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(sampleValue(text, "dgent_sse_clients")).toBe(1);
      expect(sampleValue(text, "dgent_namespaces_served")).toBe(2);
      expect(sampleValue(text, "dgent_operations_total", { namespace: "a", op: "put", tier: "sqlite", outcome: "stored" })).toBe(1);
      expect(sampleValue(text, "dgent_operations_total", { namespace: "a", op: "get", tier: "none", outcome: "miss" })).toBe(1);
      expect(sampleValue(text, "dgent_tier_up", { namespace: "a", tier: "sqlite" })).toBe(1);
      expect(sampleValue(text, "dgent_http_requests_total", { method: "POST", route: "/v1/ns/:ns/datums", status: "200" }) ?? sampleValue(text, "dgent_http_requests_total", { method: "POST", route: "/v1/ns/:ns/datums", status: "201" })).toBe(1);
      expect(sampleValue(text, "dgent_http_errors_total", { route: "/v1/ns/:ns/datums/:id", code: "DGENT_NOT_FOUND" })).toBe(1);
      expect(sampleValue(text, "dgent_http_errors_total", { route: "/v1/ns/:ns/datums", code: "DGENT_INVALID_CONTENT" })).toBe(1);
      expect(sampleValue(text, "dgent_http_errors_total", { route: "/metrics", code: "DGENT_UNAUTHORIZED" })).toBeUndefined(); // refusals of /metrics are its own answers
      // The failed put reached store a's metrics as an error of its operation.
      expect(sampleValue(text, "dgent_errors_total", { namespace: "a", op: "put", code: "DGENT_INVALID_CONTENT" })).toBe(1);
      // The access checks /metrics makes in-process are not counted as requests.
      const requestLines = text.split("\n").filter((l) => l.startsWith("dgent_http_requests_total{"));
      expect(requestLines.length).toBeGreaterThan(2);
      expect(requestLines.filter((l) => l.includes('method="GET"') && l.includes('route="/v1/ns/:ns/datums"'))).toEqual([]);
      expect(text).toMatch(/^process_cpu_user_seconds_total /m);
      expect(text.match(/^# TYPE dgent_operations_total /gm)).toHaveLength(1);
      // Store b was composed without the metrics plugin: the server measures it on its hooks.
      expect(sampleValue(text, "dgent_operations_total", { namespace: "b", op: "put", tier: "memory", outcome: "stored" })).toBe(1);
      expect(text.match(/^# TYPE dgent_tier_up /gm)).toHaveLength(1);
      expect(await serverMetrics(server.app)?.text()).toContain("dgent_http_requests_total");
      controller.abort();
      await reader.cancel().catch(() => undefined);
    } finally {
      await server.close();
      await a.close();
      await b.close();
    }
  });

  it("/readyz is 503 while a served namespace's preferred tier is down; /metrics shows it degraded", async () => {
    let down = true;
    const inner = memoryAdapter();
    const top: Adapter = {
      name: "top",
      rank: 30,
      capabilities: { ...inner.capabilities, persistent: true },
      open: async (c) => {
        if (down) throw dgentError("DGENT_UNAVAILABLE", "top is down");
        await inner.open(c);
      },
      close: () => inner.close(),
      put: (d) => inner.put(d),
      get: (id) => inner.get(id),
      delete: (id) => inner.delete(id),
      list: (o) => inner.list(o),
      probe: async () => !down,
    };
    const store = createStore({ namespace: "c", tiers: [top, memoryAdapter()], probeBackoffMs: { min: 60_000, max: 60_000 }, plugins: [metricsPlugin()] });
    store.hooks.warning.tap("test", () => undefined); // the degraded landing is announced; expected here
    const server = await createServer(store, { auth: null });
    const url = await server.listen();
    try {
      await store.open();
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: "unavailable" });
      const text = await (await fetch(`${url}/metrics`)).text(); // no access control: open
      expect(sampleValue(text, "dgent_tier_degraded", { namespace: "c", tier: "top" })).toBe(1);
      expect(sampleValue(text, "dgent_tier_up", { namespace: "c", tier: "memory" })).toBe(1);
    } finally {
      down = false;
      await server.close();
      await store.close();
    }
  });
});
