import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { httpAdapter } from "../adapters/http/index.js";
import { memoryAdapter } from "../adapters/memory/index.js";
import { makeDatum } from "../core/datum.js";
import { createStore } from "../core/store.js";
import { createServer, hashToken } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-serve-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TLS", () => {
  it("serves https with the given key and certificate; the http tier trusts it through ca", async () => {
    const key = join(dir, "key.pem");
    const cert = join(dir, "cert.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const store = createStore({ tiers: [memoryAdapter()], namespace: "tls" });
    const server = await createServer(store, {
      auth: { tokens: [{ name: "t", sha256: hashToken("tls-token"), scopes: [{ namespace: "tls", right: "write" }] }] },
      https: { key: readFileSync(key), cert: readFileSync(cert) },
    });
    const url = await server.listen();
    try {
      expect(url.startsWith("https://")).toBe(true);
      const tier = httpAdapter({ url, token: "tls-token", namespace: "tls", ca: readFileSync(cert, "utf8") });
      await tier.open();
      await tier.put(makeDatum({ id: "secure", content: "over tls" }));
      expect(Buffer.from((await store.get("secure"))?.content ?? []).toString()).toBe("over tls");
      await tier.close();
      // Without the certificate trusted, the tier refuses the server.
      const untrusting = httpAdapter({ url, token: "tls-token", namespace: "tls" });
      await expect(untrusting.open()).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE" });
      await untrusting.close();
    } finally {
      await server.close();
      await store.close();
    }
  });
});
