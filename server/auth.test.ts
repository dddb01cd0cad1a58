import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, type Store } from "../core/store.js";
import { createServer, hashToken, type DgentServer } from "./index.js";
import { SseClient } from "./test/sse-client.js";

// Secrets are random per run, so finding one in the logs can only mean it was logged.
const admin = `adm-${randomUUID()}`;
const reader = `rd-${randomUUID()}`;
const writerB = `wb-${randomUUID()}`;
const expired = `ex-${randomUUID()}`;
const limited = `lim-${randomUUID()}`;
const wrong = `wrong-${randomUUID()}`;
let clock = 1_000_000;
const logs: string[] = [];
let server: DgentServer;
let base = "";
const stores: Store[] = [];

beforeAll(async () => {
  const a = createStore({ tiers: [memoryAdapter()], namespace: "team-a" });
  const b = createStore({ tiers: [memoryAdapter()], namespace: "team-b" });
  stores.push(a, b);
  await a.put({ id: "secret/plan", content: Buffer.from("x"), createdAt: 1, causalParent: null, metadata: {} });
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
  server = await createServer([a, b], {
    auth: {
      tokens: [
        { name: "admin", sha256: hashToken(admin), scopes: [{ namespace: "*", right: "admin" }] },
        { name: "reader", sha256: hashToken(reader), scopes: [{ namespace: "team-a", right: "read" }] },
        { name: "writer-b", sha256: hashToken(writerB), scopes: [{ namespace: "team-b", right: "write" }] },
        { name: "old", sha256: hashToken(expired), scopes: [{ namespace: "*", right: "admin" }], expires: clock - 1 },
        { name: "limited", sha256: hashToken(limited), scopes: [{ namespace: "team-b", right: "read" }] },
      ],
    },
    now: () => clock,
    bodyLimit: 4096,
    log: { stream, level: "info" },
  });
  base = await server.listen();
});
afterAll(async () => {
  await server.close();
  for (const s of stores) await s.close();
});

const req = (path: string, token?: string, init: RequestInit = {}) =>
  fetch(`${base}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });

async function coded(res: Response): Promise<{ status: number; code: string; text: string }> {
  const text = await res.text();
  return { status: res.status, code: (JSON.parse(text) as { error: { code: string } }).error.code, text };
}

describe("access control", () => {
  it("no token, a wrong one, a malformed header or an expired one: 401 with one coded body, whatever exists", async () => {
    const answers = [
      await coded(await req("/v1/ns/team-a/datums/secret%2Fplan")),
      await coded(await req("/v1/ns/team-a/datums/nothing-here", wrong)),
      await coded(await req("/v1/ns/no-such-ns/datums/x", wrong)),
      await coded(await req("/v1/ns/team-a/datums/secret%2Fplan", undefined, { headers: { authorization: `Basic ${admin}` } })),
      await coded(await req("/v1/ns/team-a/datums/secret%2Fplan", expired)),
    ];
    for (const a of answers) expect(a).toEqual({ status: 401, code: "DGENT_UNAUTHORIZED", text: answers[0]?.text });
  });

  it("a valid token out of scope: 403 with one coded body, for a namespace that exists or not, a datum that exists or not", async () => {
    const answers = [
      await coded(await req("/v1/ns/team-b/datums/x", reader)),
      await coded(await req("/v1/ns/no-such-ns/datums/x", reader)),
      await coded(await req("/v1/ns/team-a/datums/secret%2Fplan", writerB)),
      await coded(await req("/v1/ns/team-a/datums/nothing", writerB)),
      // read-only on team-a: no write
      await coded(await req("/v1/ns/team-a/datums/secret%2Fplan", reader, { method: "DELETE" })),
      // write on team-b is not admin: no deleteMany of everything
      await coded(await req("/v1/ns/team-b/delete-many", writerB, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ all: true }) })),
    ];
    for (const a of answers) expect(a).toEqual({ status: 403, code: "DGENT_FORBIDDEN", text: answers[0]?.text });
    expect((await req("/v1/ns/team-a/datums/secret%2Fplan", reader)).status).toBe(200);
    expect((await req("/v1/ns/team-a/datums/secret%2Fplan", admin)).status).toBe(200);
  });

  it("rights nest: write reads, admin writes; the scope of a token is its namespaces only", async () => {
    expect((await req("/v1/ns/team-b/datums", writerB)).status).toBe(200);
    const put = await req("/v1/ns/team-b/datums", writerB, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "w/1", content: "", createdAt: 1, causalParent: null, metadata: {} }),
    });
    expect(put.status).toBe(200);
    expect((await req("/v1/ns/team-b/info", writerB)).status).toBe(403);
    expect((await req("/v1/ns/team-b/info", admin)).status).toBe(200);
  });

  it("a body past the limit is 413 DGENT_PAYLOAD_TOO_LARGE; nothing is written", async () => {
    const big = await req("/v1/ns/team-b/datums", writerB, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "big", content: Buffer.alloc(8192).toString("base64"), createdAt: 1, causalParent: null, metadata: {} }),
    });
    expect((await coded(big)).code).toBe("DGENT_PAYLOAD_TOO_LARGE");
    expect(big.status).toBe(413);
    expect((await req("/v1/ns/team-b/datums/big", writerB)).status).toBe(404);
  });

  it("CORS is off by default: no Access-Control-Allow-Origin, whatever the Origin", async () => {
    const res = await req("/v1/ns/team-a/datums", reader, { headers: { origin: "https://evil.example" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("the change stream takes ?access_token= (EventSource cannot send headers) and checks its scope", async () => {
    const ok = await SseClient.connect(`${base}/v1/ns/team-a/changes?access_token=${reader}`);
    expect(ok.response?.statusCode).toBe(200);
    ok.close();
    const no = await SseClient.connect(`${base}/v1/ns/team-b/changes?access_token=${reader}`);
    expect(no.response?.statusCode).toBe(403);
    no.close();
  });

  it("no token or secret appears in any log line, though every request above was logged", () => {
    const text = logs.join("");
    expect(text).toContain('"url":"/v1/ns/team-a/changes"');
    expect(text.split("\n").filter((l) => l.includes("incoming request")).length).toBeGreaterThan(20);
    for (const secret of [admin, reader, writerB, expired, limited, wrong, hashToken(admin), hashToken(reader)]) expect(text).not.toContain(secret);
    expect(text.toLowerCase()).not.toContain("bearer");
  });
});

describe("rate limits", () => {
  it("a token past its rate gets 429 with Retry-After until its bucket refills (injected clock); other tokens are not affected", async () => {
    let now = 0;
    const s = await createServer(stores[1] as Store, {
      auth: {
        tokens: [
          { name: "limited", sha256: hashToken(limited), scopes: [{ namespace: "team-b", right: "read" }] },
          { name: "writer-b", sha256: hashToken(writerB), scopes: [{ namespace: "team-b", right: "write" }] },
        ],
        rateLimit: { perSecond: 5, burst: 5 },
      },
      now: () => now,
    });
    const url = await s.listen();
    const get = (token: string) => fetch(`${url}/v1/ns/team-b/refs`, { headers: { authorization: `Bearer ${token}` } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await get(limited)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      const again = await get(limited);
      expect(again.headers.get("retry-after")).toBe("1");
      expect((await coded(again)).code).toBe("DGENT_RATE_LIMITED");
      expect((await get(writerB)).status).toBe(200);
      now += 200; // one request's worth at 5 a second
      expect((await get(limited)).status).toBe(200);
      expect((await get(limited)).status).toBe(429);
    } finally {
      await s.close();
    }
  });
});

describe("CORS when configured", () => {
  it("allows exactly the listed origins, with a preflight", async () => {
    const s = await createServer(stores[0] as Store, { auth: null, cors: { origins: ["https://app.example"] } });
    const url = await s.listen();
    try {
      const pre = await fetch(`${url}/v1/ns/team-a/datums`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
      const other = await fetch(`${url}/v1/ns/team-a/datums`, { headers: { origin: "https://evil.example" } });
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await s.close();
    }
  });
});
