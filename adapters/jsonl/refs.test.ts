import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { REFLOG_LIMIT, type RefMove } from "../../core/refs.js";
import { createStore } from "../../core/store.js";
import { Scope, type Suite } from "../../testing/support.js";
import { refsSuite, transactionsSuite } from "../../testing/suites/refs.js";
import { jsonlAdapter, type JsonlAdapter } from "./index.js";

let root: string;
let n = 0;
const freshPath = () => join(root, `r${n++}`, "log.jsonl");
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "dgent-jsonl-refs-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const move = (by = "tester", at = 1_700_000_000_000): RefMove => ({ by, at });
const datum = (id: string, content = id): Datum => makeDatum({ id, content, createdAt: 1_700_000_000_000 });
const lines = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { v: number; op: string; n?: number; name?: string });

function collecting(warnings: string[]) {
  return { events: { evicted: () => undefined, change: () => undefined, warning: (m: string) => warnings.push(m) } };
}

async function opened(path: string, warnings: string[] = []): Promise<JsonlAdapter> {
  const a = jsonlAdapter({ path });
  await a.open(collecting(warnings));
  return a;
}

// The kit's ref and transaction suites, run on the JSONL tier with reopen and cleanup.
const target = {
  name: "jsonl",
  create: () => jsonlAdapter({ path: freshPath() }),
  reopen: (previous: object) => jsonlAdapter({ path: (previous as JsonlAdapter).path }),
  destroy: (instance: object) => rmSync(dirname((instance as JsonlAdapter).path), { recursive: true, force: true }),
};
const suite: Suite = {
  fw: { describe, it, beforeAll, afterAll } as never,
  target,
  options: {} as never,
  test(name, body) {
    it(name, async () => {
      const scope = new Scope(target);
      try {
        await body(scope);
      } finally {
        await scope.dispose();
      }
    });
  },
};
describe("jsonl: the kit's refs and transactions suites", () => {
  refsSuite(suite);
  transactionsSuite(suite);
});

describe("jsonl: refs in the log", () => {
  it("declares refs and transactions", () => {
    const a = jsonlAdapter({ path: freshPath() });
    expect(a.capabilities).toMatchObject({ refs: true, transactions: true });
  });

  it("refs and reflogs survive a reopen; a ref move is one version-2 line, a transaction one version-2 frame", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.putMany([datum("x"), datum("y")]);
    await a.setRef("head", "x", { absent: true }, move("alice", 1));
    await a.commit(
      [
        { op: "put", datum: datum("z") },
        { op: "delete", id: "x" },
        { op: "setRef", name: "head", target: "z", expect: { version: 1 } },
      ],
      move("bob", 2),
    );
    await a.close();
    expect(lines(path).map((l) => `${l.v}:${l.op}`)).toEqual([
      "1:begin", "3:put", "3:put", "1:commit", // putMany frames stay version 1; puts carry a checksum (3)
      "2:ref",
      "2:begin", "3:put", "1:del", "2:ref", "2:commit",
    ]);
    expect(lines(path)[5]?.n).toBe(3);

    const b = await opened(path);
    expect(await b.getRef("head")).toEqual({ name: "head", target: "z", version: 2, updatedAt: 2 });
    expect(await b.get("x")).toBeNull();
    expect((await b.get("z"))?.id).toBe("z");
    expect(await b.reflog("head", 10)).toEqual([
      { name: "head", from: "x", to: "z", version: 2, at: 2, by: "bob" },
      { name: "head", from: null, to: "x", version: 1, at: 1, by: "alice" },
    ]);
    expect((await b.listRefs("")).map((r) => r.name)).toEqual(["head"]);
    await b.close();
  });

  it("a failed expectation or a conflicting put writes nothing to the file", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.put(datum("x"));
    await a.setRef("r", "x", undefined, move());
    const size = statSync(path).size;
    await expect(a.commit([{ op: "put", datum: datum("new") }, { op: "setRef", name: "r", target: "new", expect: { version: 5 } }], move())).rejects.toMatchObject({
      code: "DGENT_REF_CONFLICT",
      details: { name: "r", actual: { version: 1, target: "x" } },
    });
    await expect(a.commit([{ op: "setRef", name: "q", target: "x" }, { op: "put", datum: datum("x", "other") }], move())).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(statSync(path).size).toBe(size);
    expect(await a.get("new")).toBeNull();
    expect(await a.getRef("q")).toBeNull();
    // An identical re-put and a delete of a missing id write nothing either.
    await a.commit([{ op: "put", datum: datum("x") }, { op: "delete", id: "never" }, { op: "deleteRef", name: "missing" }], move());
    expect(statSync(path).size).toBe(size);
    await a.close();
  });

  it("a transaction whose frame is cut short is dropped whole on open, with a warning; the log then takes writes", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.put(datum("keep"));
    await a.setRef("head", "keep", undefined, move());
    const before = statSync(path).size;
    await a.commit(
      [
        { op: "put", datum: datum("a") },
        { op: "delete", id: "keep" },
        { op: "setRef", name: "head", target: "a", expect: { version: 1 } },
      ],
      move(),
    );
    await a.close();
    const whole = readFileSync(path);
    // Every cut inside the frame: after the begin line, inside the put, after the delete, inside the commit line.
    const frame = whole.subarray(before).toString("utf8");
    const cuts = [frame.indexOf("\n") + 1, frame.indexOf('"op":"put"') + 20, frame.indexOf('"op":"ref"'), frame.lastIndexOf('"op":"commit"'), frame.length - 1];
    for (const cut of cuts) {
      writeFileSync(path, whole.subarray(0, before + Buffer.byteLength(frame.slice(0, cut))));
      const warnings: string[] = [];
      const b = await opened(path, warnings);
      expect(warnings.join("\n"), `cut at ${cut}`).toMatch(/torn tail/);
      expect((await b.get("keep"))?.id, `cut at ${cut}`).toBe("keep");
      expect(await b.get("a"), `cut at ${cut}`).toBeNull();
      expect(await b.getRef("head"), `cut at ${cut}`).toMatchObject({ target: "keep", version: 1 });
      expect(await b.reflog("head", 10), `cut at ${cut}`).toHaveLength(1);
      await b.setRef("head", "keep", { version: 1 }, move());
      await b.close();
      const c = await opened(path);
      expect((await c.getRef("head"))?.version).toBe(2);
      await c.close();
    }
    // The whole frame back: all of it is there.
    writeFileSync(path, whole);
    const d = await opened(path);
    expect(await d.get("keep")).toBeNull();
    expect((await d.getRef("head"))?.target).toBe("a");
    await d.close();
  });

  it("the reflog keeps the last REFLOG_LIMIT moves per ref, across a reopen and a compaction", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.putMany([datum("p"), datum("q")]);
    const moves = REFLOG_LIMIT + 30;
    for (let i = 1; i <= moves; i++) await a.setRef("busy", i % 2 ? "p" : "q", i === 1 ? { absent: true } : { version: i - 1 }, move("w", i));
    await a.setRef("gone", "p", undefined, move("w", 1));
    await a.deleteRef("gone", { version: 1 }, move("w", 2));
    const check = async (x: JsonlAdapter, when: string) => {
      const log = await x.reflog("busy", REFLOG_LIMIT);
      expect(log, when).toHaveLength(REFLOG_LIMIT);
      expect(log[0], when).toMatchObject({ version: moves, at: moves });
      expect(log[REFLOG_LIMIT - 1], when).toMatchObject({ version: moves - REFLOG_LIMIT + 1 });
      expect(await x.getRef("busy"), when).toEqual({ name: "busy", target: moves % 2 ? "p" : "q", version: moves, updatedAt: moves });
      expect(await x.getRef("gone"), when).toBeNull();
      expect((await x.reflog("gone", 10)).map((e) => [e.from, e.to, e.version]), when).toEqual([["p", null, 1], [null, "p", 1]]);
    };
    await check(a, "before compaction");
    const recordsBefore = (await a.stats()).records as number;
    await a.compact();
    const recordsAfter = (await a.stats()).records as number;
    expect(recordsAfter).toBe(2 + REFLOG_LIMIT + 2); // two datums, busy's last 100 moves, gone's two
    expect(recordsAfter).toBeLessThan(recordsBefore);
    await check(a, "after compaction");
    await a.close();
    const b = await opened(path);
    await check(b, "after compaction and reopen");
    expect((await b.stats()).records).toBe(recordsAfter);
    // The ref keeps moving from where it was.
    expect((await b.setRef("busy", "p", { version: moves }, move())).version).toBe(moves + 1);
    await b.close();
  });

  it("a read-only open serves refs and reflogs and refuses moves", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.put(datum("x"));
    await a.setRef("head", "x", undefined, move());
    await a.close();
    const r = jsonlAdapter({ path, readonly: true });
    await r.open();
    expect((await r.getRef("head"))?.target).toBe("x");
    expect(await r.reflog("head", 5)).toHaveLength(1);
    await expect(r.setRef("head", "x", undefined, move())).rejects.toMatchObject({ code: "DGENT_BACKEND_ERROR" });
    expect((await r.getRef("head"))?.version).toBe(1);
    await r.close();
  });

  it("a ref record in a version-1 line, or a malformed one, is a bad line like any other", async () => {
    const path = freshPath();
    const a = await opened(path);
    await a.put(datum("x"));
    await a.close();
    const good = statSync(path).size;
    for (const bad of ['{"v":1,"op":"ref","name":"h","from":null,"to":"x","version":1,"at":1,"by":"b"}', '{"v":2,"op":"ref","name":"h","from":null,"to":null,"version":1,"at":1,"by":"b"}']) {
      truncateSync(path, good);
      appendFileSync(path, `${bad}\n`);
      const warnings: string[] = [];
      const b = await opened(path, warnings);
      expect(warnings.join("\n")).toMatch(/torn tail/);
      expect(await b.getRef("h")).toBeNull();
      await b.close();
      expect(statSync(path).size).toBe(good);
    }
  });

  it("through a store: update() increments a counter in one transaction per try, and the store's actor is in the reflog", async () => {
    const path = freshPath();
    const store = createStore({ tiers: [jsonlAdapter({ path })], actor: "counter-test" });
    await store.open();
    const text = (d: Datum | null) => (d === null ? 0 : Number(new TextDecoder().decode(d.content)));
    let k = 0;
    await Promise.all(
      Array.from({ length: 25 }, () =>
        store.refs.update("count", ({ datum: d }) => makeDatum({ id: `c${k++}`, content: String(text(d) + 1), causalParent: d?.id ?? null }), { attempts: 1000, backoffMs: { min: 0, max: 2 } }),
      ),
    );
    const ref = await store.refs.get("count");
    expect(text(await store.get(ref?.target as string))).toBe(25);
    expect((await store.refs.log("count")).every((e) => e.by === "counter-test")).toBe(true);
    await store.close();
  });
});
