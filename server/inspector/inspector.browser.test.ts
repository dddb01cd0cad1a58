/**
 * The inspector in a real browser: Debian's Chromium driven by playwright-core
 * (test/harness/browser.ts installs it when it is missing, and fails when it cannot), against a
 * real server over a SQLite store in a temporary folder. It clicks through as a user would and
 * keeps screenshots in test-artifacts/inspector/ (not committed).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteAdapter } from "../../adapters/sqlite/index.js";
import { createStore, makeDatum, type Store } from "../../core/index.js";
import { launchBrowser } from "../../test/harness/browser.js";
import { createServer, hashToken, type DgentServer } from "../index.js";

// What the callbacks run in the page use of the DOM (the test files compile without the DOM library).
interface DomNode {
  readonly dataset: Readonly<Record<string, string | undefined>>;
  readonly textContent: string | null;
  readonly value: string;
}
declare const document: { querySelector(selector: string): DomNode | null; querySelectorAll(selector: string): { readonly length: number } };
declare const sessionStorage: { getItem(key: string): string | null };

const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/inspector/", import.meta.url));
const TOKEN = "inspector-test-token-with-enough-entropy";
const NS = "agent-7";
const dir = mkdtempSync(join(tmpdir(), "dgent-inspector-"));

let browser: Browser;
let server: DgentServer;
let store: Store;
let url: string;
let page: Page;

const root = makeDatum({ id: "plan/root", content: JSON.stringify({ goal: "ship the inspector", steps: 3 }), metadata: { "dgent.codec": "json", kind: "plan" } });
const step = makeDatum({ id: "plan/step-1", content: "open the page in a real browser", causalParent: root.id, metadata: { "dgent.codec": "text", kind: "note" } });
const blob = makeDatum({ id: "plan/step-1/blob", content: new Uint8Array([0, 1, 2, 0xfe, 0xff, 0x41]), causalParent: step.id, metadata: { "dgent.codec": "bytes" } });
const other = makeDatum({ id: "scratch/x", content: "unrelated", metadata: { kind: "scratch" } });

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  store = createStore({ namespace: NS, tiers: [sqliteAdapter({ path: join(dir, "agent.db") })] });
  for (const d of [root, step, blob, other]) await store.put(d);
  await store.refs.set("head", step.id);
  server = await createServer(store, {
    auth: { tokens: [{ name: "inspector", sha256: hashToken(TOKEN), scopes: [{ namespace: NS, right: "admin" }] }] },
    inspector: true,
    heartbeatMs: 60_000,
  });
  url = await server.listen();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const rowIds = (page: Page) => page.$$eval("#datums tbody tr", (rows) => rows.map((r) => (r as unknown as DomNode).dataset.id));

describe("the inspector in Chromium", () => {
  it("token → namespace → list and filter → open a datum by codec → chain and children → refs → tier health → live stream", async () => {
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    // The first load has no token yet: its 401 is expected (and shown, checked below); nothing else may fail.
    page.on("console", (m) => void (m.type() === "error" && !m.text().includes("status of 401") && problems.push(`console: ${m.text()}`)));
    try {
      await page.goto(`${url}/inspector`); // redirects to /inspector/
      expect(page.url()).toBe(`${url}/inspector/`);
      // No token yet: the API's coded refusal is shown, nothing is listed.
      await page.waitForSelector("#status.error");
      expect(await page.textContent("#status")).toContain("DGENT_UNAUTHORIZED");

      await page.fill("#token", TOKEN);
      await page.click("#save-token");
      await page.waitForSelector(`#datums tbody tr[data-id="${other.id}"]`);
      expect(await page.$eval("#ns-select", (s) => (s as unknown as DomNode).value)).toBe(NS);
      expect((await rowIds(page)).sort()).toEqual([blob.id, step.id, root.id, other.id].sort());
      expect(await page.evaluate(() => sessionStorage.getItem("dgent.inspector.token"))).toBe(TOKEN);
      await shot(page, "1-list");

      // Filter by tag, then by prefix.
      await page.fill("#tag", "kind=note");
      await page.click("#load");
      await page.waitForFunction(() => document.querySelectorAll("#datums tbody tr").length === 1);
      expect(await rowIds(page)).toEqual([step.id]);
      await page.fill("#tag", "");
      await page.fill("#prefix", "plan/");
      await page.click("#load");
      await page.waitForFunction(() => document.querySelectorAll("#datums tbody tr").length === 3);
      expect((await rowIds(page)).sort()).toEqual([blob.id, step.id, root.id].sort());

      // Open the text datum: shown as text; its chain is root → it, its child the blob.
      await page.click(`#datums tbody tr[data-id="${step.id}"] .link`);
      await page.waitForFunction((id) => document.querySelector("#detail-id")?.textContent === id, step.id);
      expect(await page.textContent("#content")).toBe("open the page in a real browser");
      expect(await page.getAttribute("#content", "data-view")).toBe("text");
      await page.waitForSelector(`#tree li.current[data-id="${step.id}"]`);
      expect(await page.$$eval("#tree li.ancestor", (l) => l.map((x) => (x as unknown as DomNode).dataset.id))).toEqual([root.id]);
      expect(await page.$$eval("#tree li.current li.child", (l) => l.map((x) => (x as unknown as DomNode).dataset.id))).toEqual([blob.id]);
      expect(await page.textContent("#detail-meta")).toContain("kind");
      await shot(page, "2-datum-text");

      // The same bytes as hex.
      await page.click("#view-hex");
      expect(await page.textContent("#content")).toMatch(/^00000000 {2}6f 70 65 6e 20/);

      // Follow the chain up: the root is JSON, pretty-printed.
      await page.click(`#tree li.ancestor[data-id="${root.id}"] > .link`);
      await page.waitForFunction((id) => document.querySelector("#detail-id")?.textContent === id, root.id);
      expect(await page.getAttribute("#content", "data-view")).toBe("json");
      expect(JSON.parse((await page.textContent("#content")) ?? "")).toEqual({ goal: "ship the inspector", steps: 3 });
      expect(await page.textContent("#content")).toContain('\n  "goal"');
      await page.waitForSelector(`#tree li.current[data-id="${root.id}"] li.child[data-id="${step.id}"]`);
      // Expand a grandchild in the tree.
      await page.click(`#tree li.child[data-id="${step.id}"] > .expand`);
      await page.waitForSelector(`#tree li.child[data-id="${step.id}"] li.child[data-id="${blob.id}"]`);
      await shot(page, "3-chain-tree");

      // The blob: bytes codec → hex.
      await page.click(`#tree li.child[data-id="${blob.id}"] > .link`);
      await page.waitForFunction((id) => document.querySelector("#detail-id")?.textContent === id, blob.id);
      expect(await page.getAttribute("#content", "data-view")).toBe("hex");
      expect(await page.textContent("#content")).toContain("00 01 02 fe ff 41");

      // Refs: head → step; following it opens the datum.
      expect(await page.textContent('#refs tr[data-ref="head"]')).toContain(step.id);
      await page.click('#refs tr[data-ref="head"] .link');
      await page.waitForFunction((id) => document.querySelector("#detail-id")?.textContent === id, step.id);

      // Tier health from /info (the token is admin on the namespace).
      expect(await page.textContent("#health-summary")).toBe("writes land on sqlite");
      expect(await page.textContent('#health tr[data-tier="sqlite"]')).toContain("up");

      // The live stream (of the whole namespace: the prefix filter would apply to it too): a put
      // made now, and a ref moved through the API, arrive in the page.
      await page.fill("#prefix", "");
      await page.click("#stream-toggle");
      await page.waitForFunction(() => document.querySelector("#stream-state")?.textContent === "following");
      const live = makeDatum({ id: "plan/live", content: "arrived while watching", causalParent: step.id });
      await store.put(live);
      await page.waitForSelector(`#events li[data-key="${live.id}"]`);
      expect(await page.textContent(`#events li[data-key="${live.id}"]`)).toMatch(/^#\d+ put plan\/live$/);
      const moved = await fetch(`${url}/v1/ns/${NS}/refs/head`, { method: "PUT", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ target: live.id }) });
      expect(moved.status).toBe(200);
      await page.waitForSelector('#events li[data-op="setRef"]');
      await page.waitForFunction((id) => document.querySelector('#refs tr[data-ref="head"]')?.textContent?.includes(id) === true, live.id);
      await shot(page, "4-live");
      await page.click("#stream-toggle"); // stop following: the stream ends with the page
      expect(await page.textContent("#stream-toggle")).toBe("follow changes");
      expect(problems).toEqual([]);
    } catch (error) {
      // What the page showed when it went wrong, next to the other screenshots.
      await shot(page, "failure").catch(() => undefined);
      const seen = await page.evaluate(() => ({ status: document.querySelector("#status")?.textContent, stream: document.querySelector("#stream-state")?.textContent, events: document.querySelector("#events")?.textContent })).catch(() => null);
      throw new Error(`${error instanceof Error ? error.message : String(error)}\npage: ${JSON.stringify(seen)}\n${problems.join("\n")}`);
    }
  }, 300_000);
});
