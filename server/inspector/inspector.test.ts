import { describe, expect, it } from "vitest";
import { memoryAdapter } from "../../adapters/memory/index.js";
import { createStore } from "../../core/index.js";
import { createServer, hashToken } from "../index.js";

const auth = {
  tokens: [
    { name: "a-reader", sha256: hashToken("token-for-a"), scopes: [{ namespace: "a", right: "read" as const }] },
    { name: "c-reader", sha256: hashToken("token-for-c"), scopes: [{ namespace: "c", right: "read" as const }] },
  ],
};

describe("the inspector's routes", () => {
  it("serves its page with a strict CSP, and lists only the namespaces the token may read", async () => {
    const a = createStore({ namespace: "a", tiers: [memoryAdapter()] });
    const b = createStore({ namespace: "b", tiers: [memoryAdapter()] });
    const server = await createServer([a, b], { auth, inspector: true });
    try {
      const { app } = server;
      const redirect = await app.inject({ method: "GET", url: "/inspector" });
      expect(redirect.statusCode).toBe(302);
      expect(redirect.headers.location).toBe("/inspector/");
      const page = await app.inject({ method: "GET", url: "/inspector/" });
      expect(page.statusCode).toBe(200);
      expect(page.headers["content-type"]).toMatch(/^text\/html/);
      expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'; script-src 'self'/);
      expect(page.body).toContain('<script type="module" src="app.js"></script>');
      for (const [file, type] of [["app.js", /^text\/javascript/], ["style.css", /^text\/css/]] as const) {
        const res = await app.inject({ method: "GET", url: `/inspector/${file}` });
        expect(res.statusCode).toBe(200);
        expect(res.headers["content-type"]).toMatch(type);
      }
      // No innerHTML anywhere: server values reach the page as text only.
      expect((await app.inject({ method: "GET", url: "/inspector/app.js" })).body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);

      const list = (authorization?: string) => app.inject({ method: "GET", url: "/inspector/namespaces", headers: authorization ? { authorization } : {} });
      const none = await list();
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ error: { code: "DGENT_UNAUTHORIZED" } });
      expect(none.body).not.toMatch(/"a"|"b"/);
      expect((await list("Bearer not-a-token")).statusCode).toBe(401);
      expect((await list("Bearer token-for-a")).json()).toEqual({ namespaces: ["a"] });
      expect((await list("Bearer token-for-c")).json()).toEqual({ namespaces: [] }); // may read none of the served ones
    } finally {
      await server.close();
      await a.close();
      await b.close();
    }
  });
});
