import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../memory/index.js";
import { makeDatum } from "../../core/datum.js";
import { isDgentError } from "../../core/errors.js";
import { createStore, type Store } from "../../core/store.js";
import { fulltextPlugin } from "../../plugins/fulltext/index.js";
import { createServer, hashToken, type DgentServer } from "../../server/index.js";
import { httpSearch, type RemoteSearch } from "./index.js";

// httpSearch against a real server: a store with the fulltext plugin, one without.
const token = "search-client-token-0123456789";
let server: DgentServer;
let words: Store;
let plain: Store;
let remote: RemoteSearch;
let bare: RemoteSearch;

beforeAll(async () => {
  words = createStore({ tiers: [memoryAdapter()], namespace: "words", plugins: [fulltextPlugin()] });
  plain = createStore({ tiers: [memoryAdapter()], namespace: "plain" });
  await words.put(makeDatum({ id: "a", content: "the night train to Venice", createdAt: 1, metadata: { kind: "travel" } }));
  await words.put(makeDatum({ id: "b", content: "milk and bread", createdAt: 2, metadata: { kind: "errand" } }));
  server = await createServer([words, plain], { auth: { tokens: [{ name: "r", sha256: hashToken(token), scopes: [{ namespace: "*", right: "read" }] }] }, changeLog: false });
  const url = await server.listen();
  remote = httpSearch({ url, token, namespace: "words" });
  bare = httpSearch({ url, token, namespace: "plain" });
});
afterAll(async () => {
  remote.close();
  bare.close();
  await server.close();
  await words.close();
  await plain.close();
});

describe("httpSearch", () => {
  it("searches the served store with filters and brings datums back as datums", async () => {
    const hits = await remote.search("venice train", { k: 5, filter: { where: { kind: "travel" } }, select: "full" });
    expect(hits.map((h) => h.id)).toEqual(["a"]);
    const datum = hits[0]?.datum as { content: Uint8Array } | null;
    expect(new TextDecoder().decode(datum?.content)).toBe("the night train to Venice");
  });

  it("the server's errors come back with their codes", async () => {
    const error = await bare.search("milk").catch((e: unknown) => e);
    expect(isDgentError(error, "DGENT_UNSUPPORTED")).toBe(true);
    const bad = await remote.search("milk", { k: 0 }).catch((e: unknown) => e);
    expect(isDgentError(bad, "DGENT_INVALID_QUERY")).toBe(true);
  });
});
