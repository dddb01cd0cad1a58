import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, type Store } from "../core/store.js";
import { createServer, type DgentServer } from "./index.js";

// The API driven through a client made from the OpenAPI document alone: operationId → method,
// path and parameters; every answer is checked against the document's response schema.
let server: DgentServer;
let base = "";
let store: Store;
let doc: { paths: Record<string, Record<string, { operationId: string; parameters: { name: string; in: string }[]; responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };
const ajv = new Ajv({ strict: false, validateFormats: false });

interface Call {
  path?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  raw?: Buffer;
  headers?: Record<string, string>;
}

async function call(operationId: string, c: Call = {}): Promise<{ status: number; body: any; headers: Headers }> {
  for (const [template, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (op.operationId !== operationId) continue;
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent({ ns: "api", ...c.path }[name] as string).replaceAll(".", "%2E"));
      const qs = c.query ? `?${new URLSearchParams(c.query)}` : "";
      const headers: Record<string, string> = { ...c.headers };
      let body: string | Buffer | undefined;
      if (c.raw) {
        headers["content-type"] = "application/octet-stream";
        body = c.raw;
      } else if (c.body !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(c.body);
      }
      const res = await fetch(`${base}${path}${qs}`, { method: method.toUpperCase(), headers, ...(body !== undefined ? { body } : {}) });
      const type = res.headers.get("content-type") ?? "";
      const parsed = type.includes("json") ? await res.json() : Buffer.from(await res.arrayBuffer());
      const schema = op.responses[String(res.status)]?.content?.["application/json"]?.schema;
      if (schema && type.includes("json")) {
        const validate = ajv.compile(deref(schema) as object);
        expect(validate(parsed), `${operationId} ${res.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
      return { status: res.status, body: parsed, headers: res.headers };
    }
  }
  throw new Error(`the OpenAPI document has no operation ${operationId}`);
}

/** The schema with the document's local `$ref`s replaced by what they point at. */
function deref(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(deref);
  if (schema === null || typeof schema !== "object") return schema;
  const ref = (schema as { $ref?: string }).$ref;
  if (ref !== undefined) return deref(ref.slice(2).split("/").reduce<any>((node, key) => node[key], doc));
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, deref(v)]));
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const datum = (id: string, extra: Record<string, unknown> = {}) => ({ id, content: b64(`content of ${id}`), createdAt: 1000, causalParent: null, metadata: {}, ...extra });

beforeAll(async () => {
  store = createStore({ tiers: [memoryAdapter()], namespace: "api" });
  server = await createServer(store, { auth: null });
  base = await server.listen();
  doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as typeof doc;
});
afterAll(async () => {
  await server.close();
  await store.close();
});

describe("the OpenAPI document", () => {
  it("describes every route with an operationId, its parameters and coded error answers", () => {
    const ops = Object.values(doc.paths).flatMap((m) => Object.values(m).map((o) => o.operationId));
    expect(ops.sort()).toEqual(
      ["causalChain", "changes", "children", "count", "delete", "deleteMany", "deleteRef", "get", "getMany", "getRef", "info", "list", "listRefs", "put", "putMany", "putRaw", "query", "reflog", "search", "setRef", "transaction"].sort(),
    );
    const get = doc.paths["/v1/ns/{ns}/datums/{id}"]?.get;
    expect(get?.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(["path:ns", "path:id"]);
    expect(get?.responses["404"]?.content?.["application/json"]).toBeDefined();
  });
});

describe("datums", () => {
  it("put, get (JSON and raw bytes), list, delete, with ids holding / . and non-ASCII", async () => {
    const id = "thread/1/../é ünï";
    expect((await call("put", { body: datum(id, { metadata: { role: "user" } }) })).body).toEqual({ id });
    const got = await call("get", { path: { id } });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(datum(id, { metadata: { role: "user" } }));
    const raw = await call("get", { path: { id }, headers: { accept: "application/octet-stream" } });
    expect(raw.body.toString()).toBe(`content of ${id}`);
    expect(JSON.parse(raw.headers.get("x-dgent-metadata") as string)).toEqual({ role: "user" });
    expect((await call("list", { query: { prefix: "thread/1/" } })).body.items.map((d: { id: string }) => d.id)).toEqual([id]);
    expect((await call("delete", { path: { id } })).body).toEqual({ existed: true });
    expect((await call("delete", { path: { id } })).body).toEqual({ existed: false });
    const missing = await call("get", { path: { id } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("DGENT_NOT_FOUND");
  });

  it("raw bytes in, every byte value out; the append-only law is a 409 with a coded body", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const put = await call("putRaw", { path: { id: "raw/1" }, raw: bytes, query: { createdAt: "5" }, headers: { "x-dgent-metadata": JSON.stringify({ kind: "bin" }) } });
    expect(put.body).toEqual({ id: "raw/1" });
    const back = await call("get", { path: { id: "raw/1" }, headers: { accept: "application/octet-stream" } });
    expect(Buffer.compare(back.body, bytes)).toBe(0);
    const again = await call("put", { body: { id: "raw/1", content: b64("other"), createdAt: 5, causalParent: null, metadata: {} } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: "DGENT_CONFLICT", retryable: false, details: { id: "raw/1" } });
  });

  it("bad input is a 400 with the store's own code", async () => {
    const bad = await call("put", { body: { id: "", content: b64("x"), createdAt: 1, causalParent: null, metadata: {} } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("DGENT_INVALID_ID");
    const q = await call("query", { body: { where: { role: { like: "x" } } } });
    expect(q.status).toBe(400);
    expect(q.body.error).toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field: "where.role.like" } });
    const notJson = await fetch(`${base}/v1/ns/api/datums`, { method: "POST", headers: { "content-type": "application/json" }, body: "{" });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { code: string } }).error.code).toBe("DGENT_INVALID_OPTIONS");
  });

  it("causal chains, children, queries with cursors, count, getMany and deleteMany", async () => {
    await call("putMany", {
      body: {
        datums: [
          datum("c/1", { createdAt: 1, metadata: { role: "user" } }),
          datum("c/2", { createdAt: 2, causalParent: "c/1", metadata: { role: "bot" } }),
          datum("c/3", { createdAt: 3, causalParent: "c/2", metadata: { role: "user" } }),
          datum("c/3b", { createdAt: 4, causalParent: "c/2", metadata: { role: "user" } }),
        ],
      },
    });
    expect((await call("causalChain", { path: { id: "c/3" } })).body.items.map((d: { id: string }) => d.id)).toEqual(["c/1", "c/2", "c/3"]);
    expect((await call("causalChain", { path: { id: "c/3" }, query: { tail: "2" } })).body.items.map((d: { id: string }) => d.id)).toEqual(["c/2", "c/3"]);
    expect((await call("children", { path: { id: "c/2" }, query: { select: "ids", order: "oldest" } })).body).toEqual({ items: ["c/3", "c/3b"], cursor: null });
    const first = await call("query", { body: { prefix: "c/", where: { role: "user" }, order: "oldest", limit: 2, select: "meta" } });
    expect(first.body.items.map((h: { id: string }) => h.id)).toEqual(["c/1", "c/3"]);
    expect(first.body.items[0]).not.toHaveProperty("content");
    const second = await call("query", { body: { prefix: "c/", where: { role: "user" }, order: "oldest", limit: 2, select: "ids", cursor: first.body.cursor } });
    expect(second.body.items).toEqual(["c/3b"]);
    expect((await call("count", { body: { prefix: "c/", where: { role: "user" } } })).body).toEqual({ count: 3 });
    expect((await call("getMany", { body: { ids: ["c/2", "nope"] } })).body.items.map((d: { id: string } | null) => d?.id ?? null)).toEqual(["c/2", null]);
    expect((await call("deleteMany", { body: {} })).body.error.code).toBe("DGENT_INVALID_QUERY");
    expect((await call("deleteMany", { body: { prefix: "c/", where: { role: "bot" } } })).body).toEqual({ deleted: 1 });
    expect((await call("count", { body: { prefix: "c/" } })).body).toEqual({ count: 3 });
  });
});

describe("refs and transactions", () => {
  it("set with expectations (409 DGENT_REF_CONFLICT saying what the ref holds), get, list, log, delete", async () => {
    const name = "thread/9/head";
    await call("put", { body: datum("r/1") });
    await call("put", { body: datum("r/2") });
    const created = await call("setRef", { path: { name }, body: { target: "r/1", expect: { absent: true } } });
    expect(created.body).toMatchObject({ name, target: "r/1", version: 1 });
    const stale = await call("setRef", { path: { name }, body: { target: "r/2", expect: { version: 7 } } });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: "DGENT_REF_CONFLICT", details: { name, actual: { target: "r/1", version: 1 } } });
    expect((await call("setRef", { path: { name }, body: { target: "r/2", expect: { version: 1 } } })).body.version).toBe(2);
    expect((await call("getRef", { path: { name } })).body.target).toBe("r/2");
    expect((await call("listRefs", { query: { prefix: "thread/9/" } })).body.items.map((r: { name: string }) => r.name)).toEqual([name]);
    expect((await call("reflog", { path: { name } })).body.items.map((e: { to: string }) => e.to)).toEqual(["r/2", "r/1"]);
    expect((await call("deleteRef", { path: { name }, body: { expect: { target: "r/1" } } })).status).toBe(409);
    expect((await call("deleteRef", { path: { name }, body: { expect: { version: 2 } } })).body).toEqual({ existed: true });
    expect((await call("getRef", { path: { name } })).status).toBe(404);
  });

  it("a transaction commits puts, deletes and ref moves together, or nothing", async () => {
    const ok = await call("transaction", {
      body: { ops: [{ op: "put", datum: datum("t/1") }, { op: "setRef", name: "t/head", target: "t/1", expect: { absent: true } }] },
    });
    expect(ok.body.results).toEqual([{ op: "put", id: "t/1" }, { op: "setRef", ref: expect.objectContaining({ name: "t/head", version: 1 }) }]);
    const failed = await call("transaction", {
      body: { ops: [{ op: "put", datum: datum("t/2") }, { op: "delete", id: "t/1" }, { op: "setRef", name: "t/head", target: "t/2", expect: { version: 5 } }] },
    });
    expect(failed.status).toBe(409);
    expect((await call("get", { path: { id: "t/2" } })).status).toBe(404);
    expect((await call("get", { path: { id: "t/1" } })).status).toBe(200);
  });
});

describe("search", () => {
  it("is documented with its body and answer; a store without a search plugin answers 501 DGENT_UNSUPPORTED", async () => {
    const op = doc.paths["/v1/ns/{ns}/search"]?.post as unknown as { requestBody: { content: Record<string, { schema: { required: string[] } }> }; responses: Record<string, unknown> };
    expect(op.requestBody.content["application/json"]?.schema.required).toEqual(["query"]);
    expect(op.responses["501"]).toBeDefined();
    const r = await call("search", { body: { query: "anything", k: 3 } });
    expect(r.status).toBe(501);
    expect(r.body.error).toMatchObject({ code: "DGENT_UNSUPPORTED", details: { capability: "search", needs: ["recall", "fulltext"] } });
  });
});

describe("server shape", () => {
  it("healthz and readyz answer; unknown routes and namespaces are coded 404s; info reports the tiers", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: "ready" });
    const route = await fetch(`${base}/v2/nothing`);
    expect(route.status).toBe(404);
    expect(((await route.json()) as { error: { code: string } }).error.code).toBe("DGENT_NOT_FOUND");
    expect((await call("get", { path: { ns: "other", id: "x" } })).body.error.code).toBe("DGENT_NOT_FOUND");
    const info = await call("info");
    expect(info.body).toMatchObject({ namespace: "api", capabilities: { refs: true }, backend: { landing: "memory" } });
  });
});
