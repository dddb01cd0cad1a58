import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { makeDatum } from "../core/datum.js";
import { createStore, type Store } from "../core/store.js";
import { fulltextPlugin } from "../plugins/fulltext/index.js";
import { hashingEmbedder, recall, recallPlugin } from "../plugins/recall/index.js";
import { createServer, hashToken, type DgentServer } from "./index.js";

// POST /v1/ns/{ns}/search against a real server: three namespaces — both search plugins, only
// fulltext, none — and tokens scoped per namespace and right.
const reader = "reader-token-0123456789abcdef";
const writerElsewhere = "writer-token-0123456789abcdef";
let server: DgentServer;
let base = "";
let both: Store;
let textOnly: Store;
let plain: Store;

beforeAll(async () => {
  both = createStore({ tiers: [memoryAdapter()], namespace: "both", plugins: [recallPlugin({ embedder: hashingEmbedder({ dimensions: 256 }) }), fulltextPlugin()] });
  textOnly = createStore({ tiers: [memoryAdapter()], namespace: "text", plugins: [fulltextPlugin()] });
  plain = createStore({ tiers: [memoryAdapter()], namespace: "plain" });
  const notes: Array<[string, string, string]> = [
    ["n/1", "the night train to Venice leaves at nine", "travel"],
    ["n/2", "the user prefers window seats on trains", "travel"],
    ["n/3", "buy milk and bread on the way home", "errand"],
    ["n/4", "Venice in winter is foggy and quiet", "travel"],
  ];
  for (const s of [both, textOnly]) {
    for (const [id, text, kind] of notes) await s.put(makeDatum({ id, content: text, createdAt: 1000, metadata: { kind } }));
  }
  server = await createServer([both, textOnly, plain], {
    auth: {
      tokens: [
        { name: "reader", sha256: hashToken(reader), scopes: [{ namespace: "*", right: "read" }] },
        { name: "elsewhere", sha256: hashToken(writerElsewhere), scopes: [{ namespace: "other", right: "write" }] },
      ],
    },
    changeLog: false,
  });
  base = await server.listen();
});
afterAll(async () => {
  await server.close();
  for (const s of [both, textOnly, plain]) await s.close();
});

async function search(ns: string, body: unknown, token = reader): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/v1/ns/${ns}/search`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe("POST /search", () => {
  it("auto fuses vector and text search when the store has both; ranks say where each hit came from", async () => {
    const r = await search("both", { query: "train to venice", k: 3 });
    expect(r.status).toBe(200);
    expect(r.body.mode).toBe("hybrid");
    expect(r.body.items).toHaveLength(3);
    expect(r.body.items[0].id).toBe("n/1");
    expect(r.body.items[0].ranks).toEqual({ vector: expect.any(Number), text: expect.any(Number) });
    expect(r.body.items.map((h: { id: string }) => h.id)).not.toContain("n/3");
  });

  it("each mode on its own, filters applied during the search, datums included on request", async () => {
    const text = await search("both", { query: "venice", mode: "text", filter: { where: { kind: "travel" } }, select: "full" });
    expect(text.body.mode).toBe("text");
    expect(text.body.items.map((h: { id: string }) => h.id).sort()).toEqual(["n/1", "n/4"]);
    const first = text.body.items[0];
    expect(Buffer.from(first.datum.content, "base64").toString()).toContain("Venice");
    const vector = await search("both", { query: "window seats", mode: "vector", k: 1, filter: { prefix: "n/" }, select: "meta", metric: "dot" });
    expect(vector.body).toMatchObject({ mode: "vector", items: [{ id: "n/2", datum: { id: "n/2", metadata: { kind: "travel" } } }] });
    expect(vector.body.items[0].datum.content).toBeUndefined();
    const errand = await search("both", { query: "venice", mode: "vector", filter: { where: { kind: "errand" } } });
    expect(errand.body.items.map((h: { id: string }) => h.id)).toEqual(["n/3"]);
  });

  it("a vector query: an array of numbers of the embedder's size", async () => {
    const embedded = await (await both.plugin(recall)).embed(["the user prefers window seats on trains"]);
    const r = await search("both", { query: Array.from(embedded[0] as Float32Array), k: 1 });
    expect(r.body).toMatchObject({ mode: "vector", items: [{ id: "n/2" }] });
    expect(r.body.items[0].score).toBeCloseTo(1, 5);
    const wrong = await search("both", { query: [1, 2, 3] });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe("DGENT_INVALID_QUERY");
  });

  it("auto with only fulltext is a text search; a mode the store lacks is 501 DGENT_UNSUPPORTED naming the plugin", async () => {
    expect((await search("text", { query: "milk" })).body).toMatchObject({ mode: "text", items: [{ id: "n/3" }] });
    const vector = await search("text", { query: "milk", mode: "vector" });
    expect(vector.status).toBe(501);
    expect(vector.body.error).toMatchObject({ code: "DGENT_UNSUPPORTED", details: { capability: "search", mode: "vector", needs: ["recall"] } });
    const hybrid = await search("text", { query: "milk", mode: "hybrid" });
    expect(hybrid.status).toBe(501);
    expect(hybrid.body.error.details.needs).toEqual(["recall", "fulltext"]);
    const none = await search("plain", { query: "milk" });
    expect(none.status).toBe(501);
    expect(none.body.error).toMatchObject({ code: "DGENT_UNSUPPORTED", details: { needs: ["recall", "fulltext"] } });
  });

  it("bad requests are 400 DGENT_INVALID_QUERY with the field", async () => {
    for (const [body, field] of [
      [{ query: "x", mode: "fuzzy" }, "mode"],
      [{ query: 42 }, "query"],
      [{ query: "x", select: "all" }, "select"],
      [{ query: "x", mode: "text", metric: "dot" }, "metric"],
      [{ query: [0.5], mode: "text" }, "query"],
      [{ query: "x", k: 0 }, "k"],
    ] as const) {
      const r = await search("both", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatchObject({ code: "DGENT_INVALID_QUERY", details: { field } });
    }
  });

  it("takes the read right on the namespace: no token 401, a token scoped elsewhere 403, before the plugin is looked at", async () => {
    const none = await fetch(`${base}/v1/ns/both/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "venice" }) });
    expect(none.status).toBe(401);
    const elsewhere = await search("plain", { query: "venice" }, writerElsewhere);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.code).toBe("DGENT_FORBIDDEN");
  });
});
