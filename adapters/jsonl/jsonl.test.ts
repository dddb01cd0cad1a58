import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertId, assertMetadata, makeDatum, sameValue, type Datum } from "../../core/datum.js";
import { idArb, metadataArb } from "../../test/arbitraries.js";
import { storeScriptArb } from "../../test/arbitrary-scripts.js";
import { assertSameDatum, ReferenceStore, referenceList } from "../../test/references.js";
import type { AdapterContext } from "../../core/protocol.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { jsonlAdapter, type Durability, type JsonlAdapter, type JsonlOptions } from "./index.js";

let root: string;
let counter = 0;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "dgent-jsonl-unit-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh log path in a directory of its own. */
function freshPath(): string {
  const dir = join(root, `t${counter++}`);
  return join(dir, "log.jsonl");
}

interface Opened {
  adapter: JsonlAdapter;
  warnings: Array<{ message: string; details?: Readonly<Record<string, unknown>> }>;
}

async function openLog(options: JsonlOptions): Promise<Opened> {
  const warnings: Opened["warnings"] = [];
  const context: AdapterContext = {
    events: {
      evicted: () => undefined,
      change: () => undefined,
      warning: (message, details) => warnings.push({ message, details }),
    },
  };
  const adapter = jsonlAdapter(options);
  await adapter.open(context);
  return { adapter, warnings };
}

function datum(id: string, text = `content of ${id}`, extra: Partial<Datum> = {}): Datum {
  return makeDatum({ id, content: text, createdAt: extra.createdAt ?? 1_000 + counter++, causalParent: extra.causalParent ?? null, metadata: { ...(extra.metadata ?? {}) } });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code ?? `uncoded: ${(error as Error).message}`;
  }
  return "no error";
}

const text = (d: Datum | null) => (d === null ? null : Buffer.from(d.content).toString());

describe("jsonl: append-only law and records", () => {
  it("an identical re-put is a no-op that writes nothing; a different datum conflicts and writes nothing", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path, durability: "none" });
    const a = datum("a", "one", { metadata: { k: "v" } });
    expect(await adapter.put(a)).toBe("a");
    const size = statSync(path).size;
    expect(await adapter.put({ ...a, createdAt: a.createdAt + 5 })).toBe("a");
    expect(statSync(path).size).toBe(size);
    expect(await codeOf(adapter.put({ ...a, content: Buffer.from("two") }))).toBe("DGENT_CONFLICT");
    expect(await codeOf(adapter.put({ ...a, metadata: { k: "w" } }))).toBe("DGENT_CONFLICT");
    expect(await codeOf(adapter.putMany([datum("fresh"), { ...a, causalParent: "x" }]))).toBe("DGENT_CONFLICT");
    expect(statSync(path).size).toBe(size);
    expect(await adapter.get("fresh")).toBeNull();
    await adapter.close();
  });

  it("after a delete the id may be reused, and the reuse survives reopen", async () => {
    const path = freshPath();
    const first = await openLog({ path });
    await first.adapter.put(datum("a", "old"));
    expect(await first.adapter.delete("a")).toBe(true);
    expect(await first.adapter.delete("a")).toBe(false);
    await first.adapter.put(datum("a", "new"));
    await first.adapter.close();
    const second = await openLog({ path });
    expect(text(await second.adapter.get("a"))).toBe("new");
    expect((await second.adapter.stats()).count).toBe(1);
    await second.adapter.close();
  });

  it("writes one versioned JSON record per line with base64 content", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    await adapter.put(datum("x/1", "hi", { metadata: { role: "user" } }));
    await adapter.putMany([datum("x/2", "a"), datum("x/3", "b")]);
    await adapter.delete("x/1");
    await adapter.close();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.op)).toEqual(["put", "begin", "put", "put", "commit", "del"]);
    expect(lines.map((l) => l.v)).toEqual([3, 1, 3, 3, 1, 1]); // puts carry a checksum (version 3)
    expect(lines[0]).toMatchObject({ id: "x/1", causalParent: null, metadata: { role: "user" }, content: Buffer.from("hi").toString("base64") });
    expect(lines[0]?.crc).toMatch(/^[0-9a-f]{8}$/);
  });

  it("tricky metadata keys and ids with JSON-special characters round-trip through the log", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    const metadata = JSON.parse('{"__proto__":"p","constructor":"c","":"empty","\\u2028":"ls"}') as Record<string, string>;
    const d: Datum = { id: 'q"uote\\back/\u2028/é/😀', content: new Uint8Array([0, 10, 13, 255]), createdAt: 1.5, causalParent: null, metadata };
    await adapter.put(d);
    await adapter.close();
    const again = await openLog({ path });
    const got = await again.adapter.get(d.id);
    expect(Object.keys(got!.metadata).sort()).toEqual(Object.keys(metadata).sort());
    expect(sameValue(got!, d)).toBe(true);
    expect(await again.adapter.put({ ...d, createdAt: 2 })).toBe(d.id);
    expect(got!.createdAt).toBe(1.5);
    await again.adapter.close();
  });

  it("putMany stores a batch once even with repeated identical datums, and refuses a repeated id with different values", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    const a = datum("a");
    expect(await adapter.putMany([a, datum("b"), { ...a }])).toEqual(["a", "b", "a"]);
    expect((await adapter.stats()).count).toBe(2);
    expect(await codeOf(adapter.putMany([datum("c"), datum("d", "1"), datum("d", "2")]))).toBe("DGENT_CONFLICT");
    expect(await adapter.get("c")).toBeNull();
    await adapter.close();
  });

  it("stats report live count, file size and records; probe tells open from closed", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    await adapter.put(datum("a"));
    await adapter.put(datum("b"));
    await adapter.delete("a");
    const stats = await adapter.stats();
    expect(stats).toMatchObject({ count: 1, bytes: statSync(path).size, records: 3, path });
    expect(await adapter.probe()).toBe(true);
    await adapter.close();
    expect(await adapter.probe()).toBe(false);
  });

  it("big contents round-trip through the positioned read", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    const big = Buffer.alloc(3 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
    await adapter.put(makeDatum({ id: "big", content: big }));
    await adapter.put(datum("small"));
    expect(Buffer.from((await adapter.get("big"))!.content).equals(big)).toBe(true);
    expect(text(await adapter.get("small"))).toBe("content of small");
    await adapter.close();
  });
});

describe("jsonl: options", () => {
  it("dataDir + namespace give <dataDir>/<namespace>.jsonl; the registry builds it by name", async () => {
    const dir = join(root, `ns${counter++}`);
    const adapter = await defaultRegistry.createAdapter("jsonl", { dataDir: dir, namespace: "agent-7" });
    await adapter.open();
    await adapter.put(datum("a"));
    await adapter.close();
    expect(existsSync(join(dir, "agent-7.jsonl"))).toBe(true);
    expect(existsSync(join(dir, "agent-7.jsonl.lock"))).toBe(false);
  });

  it("bad options are refused eagerly with DGENT_INVALID_OPTIONS", () => {
    const bad: unknown[] = [
      { path: "/tmp/x.jsonl", namespace: "a" },
      { path: "/tmp/x.jsonl", dataDir: "/tmp" },
      { namespace: "../escape" },
      { durability: "sometimes" },
      { groupCommitMs: -1 },
      { unknown: true },
    ];
    for (const options of bad) {
      expect(() => jsonlAdapter(options as JsonlOptions), JSON.stringify(options)).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
  });

  it("an unwritable data directory fails open with DGENT_DATA_DIR_UNWRITABLE", async () => {
    const dir = join(root, `nw${counter++}`);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(join(root, `afile${counter}`), "not a directory");
    const adapter = jsonlAdapter({ dataDir: join(root, `afile${counter}`, "sub") });
    expect(await codeOf(adapter.open())).toBe("DGENT_DATA_DIR_UNWRITABLE");
  });
});

describe("jsonl: recovery", () => {
  async function seeded(path: string): Promise<number> {
    const { adapter } = await openLog({ path });
    await adapter.put(datum("a", "A"));
    await adapter.put(datum("b", "B", { causalParent: "a" }));
    await adapter.close();
    return statSync(path).size;
  }

  it("a torn last line is dropped with a warning, the file cut back, and new writes work", async () => {
    const path = freshPath();
    const good = await seeded(path);
    appendFileSync(path, '{"v":1,"op":"put","id":"c","createdAt":5,"causalPa');
    const { adapter, warnings } = await openLog({ path });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/torn tail .* line 3/);
    expect(warnings[0]!.details).toMatchObject({ line: 3, path });
    expect(statSync(path).size).toBe(good);
    expect(text(await adapter.get("a"))).toBe("A");
    expect((await adapter.causalChain("b", 100)).map((d) => d.id)).toEqual(["a", "b"]);
    expect(await adapter.get("c")).toBeNull();
    await adapter.put(datum("c", "C"));
    await adapter.close();
    const again = await openLog({ path });
    expect(again.warnings).toHaveLength(0);
    expect(text(await again.adapter.get("c"))).toBe("C");
    await again.adapter.close();
  });

  it("garbage lines at the end (e.g. zeros after a power loss) are a torn tail too", async () => {
    const path = freshPath();
    const good = await seeded(path);
    appendFileSync(path, Buffer.concat([Buffer.alloc(100), Buffer.from("\n"), Buffer.alloc(50), Buffer.from("\n")]));
    const { adapter, warnings } = await openLog({ path });
    expect(warnings).toHaveLength(1);
    expect(statSync(path).size).toBe(good);
    expect((await adapter.stats()).count).toBe(2);
    await adapter.close();
  });

  it("a putMany cut short before its commit line is dropped whole", async () => {
    const path = freshPath();
    const good = await seeded(path);
    const put = (id: string) => JSON.stringify({ v: 1, op: "put", id, createdAt: 9, causalParent: null, metadata: {}, content: "" });
    appendFileSync(path, `{"v":1,"op":"begin","n":3}\n${put("x")}\n${put("y")}\n`);
    const { adapter, warnings } = await openLog({ path });
    expect(warnings[0]!.message).toMatch(/without its commit/);
    expect(await adapter.get("x")).toBeNull();
    expect(await adapter.get("y")).toBeNull();
    expect(statSync(path).size).toBe(good);
    await adapter.close();
  });

  it("a corrupt line in the middle fails open with DGENT_CORRUPT_LOG naming file and line, leaving the file untouched", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    for (const id of ["a", "b", "c"]) await adapter.put(datum(id));
    await adapter.close();
    const lines = readFileSync(path, "utf8").split("\n");
    lines[1] = lines[1]!.slice(0, 20) + "#" + lines[1]!.slice(21);
    writeFileSync(path, lines.join("\n"));
    const before = readFileSync(path);
    for (let attempt = 0; attempt < 2; attempt++) {
      let caught: { code?: string; message: string } | null = null;
      try {
        await jsonlAdapter({ path }).open();
      } catch (error) {
        caught = error as { code?: string; message: string };
      }
      expect(caught?.code).toBe("DGENT_CORRUPT_LOG"); // not DGENT_LOCKED: a failed open releases the lock
      expect(caught?.message).toContain(path);
      expect(caught?.message).toContain("line 2");
    }
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it("a hand-edited record whose id or metadata put would refuse is not loaded: DGENT_CORRUPT_LOG naming the line and the rule", async () => {
    for (const [label, edit] of [
      ["a control character in the id", (r: Record<string, unknown>) => ({ ...r, id: "b\u0007" })],
      ["an id over 1024 bytes", (r: Record<string, unknown>) => ({ ...r, id: "x".repeat(1025) })],
      ["U+0000 in a metadata value", (r: Record<string, unknown>) => ({ ...r, metadata: { k: "a\u0000b" } })],
    ] as const) {
      const path = freshPath();
      const { adapter } = await openLog({ path });
      for (const id of ["a", "b", "c"]) await adapter.put(datum(id));
      await adapter.close();
      const lines = readFileSync(path, "utf8").split("\n");
      lines[1] = JSON.stringify(edit(JSON.parse(lines[1] as string) as Record<string, unknown>));
      writeFileSync(path, lines.join("\n"));
      const before = readFileSync(path);
      let caught: { code?: string; message: string } | null = null;
      try {
        await jsonlAdapter({ path }).open();
      } catch (error) {
        caught = error as { code?: string; message: string };
      }
      expect(caught?.code, label).toBe("DGENT_CORRUPT_LOG");
      expect(caught?.message, label).toContain("line 2");
      expect(readFileSync(path).equals(before), label).toBe(true);
    }
  });

  it("several bad lines at the end are more than a crash leaves: DGENT_CORRUPT_LOG, file untouched", async () => {
    const path = freshPath();
    await seeded(path);
    appendFileSync(path, '{"v":1,"op":"put","id":"c"\n{"v":1,"op":"put","id":"d"\n');
    const before = readFileSync(path);
    expect(await codeOf(jsonlAdapter({ path }).open())).toBe("DGENT_CORRUPT_LOG");
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it("a file that is not a dgent log is refused with DGENT_NOT_A_DATABASE and never truncated", async () => {
    const path = freshPath();
    await seeded(path);
    for (const content of ["my precious notes", "line one\nline two\n", "[1,2,3]\n"]) {
      writeFileSync(path, content);
      expect(await codeOf(jsonlAdapter({ path }).open()), content).toBe("DGENT_NOT_A_DATABASE");
      expect(readFileSync(path, "utf8")).toBe(content);
    }
  });

  it("a record from a newer format version fails open with DGENT_SCHEMA_TOO_NEW", async () => {
    const path = freshPath();
    await seeded(path);
    appendFileSync(path, '{"v":4,"op":"put","id":"z"}\n');
    expect(await codeOf(jsonlAdapter({ path }).open())).toBe("DGENT_SCHEMA_TOO_NEW");
  });
});

describe("jsonl: compaction", () => {
  it("keeps exactly the live datums, shrinks the file, and a reopen sees the same data", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    const all = Array.from({ length: 200 }, (_, i) => datum(`d/${String(i).padStart(3, "0")}`, `v${i}`, { createdAt: i, causalParent: i > 0 ? `d/${String(i - 1).padStart(3, "0")}` : null }));
    await adapter.putMany(all);
    for (let i = 0; i < 200; i += 2) await adapter.delete(all[i]!.id);
    await adapter.put(datum("d/000", "reborn", { createdAt: 1_000 }));
    const before = await adapter.stats();
    const listBefore = await adapter.list({ prefix: "", after: -1, limit: 1_000 });
    const result = await adapter.compact();
    expect(result).toMatchObject({ bytesBefore: before.bytes, datums: 101 });
    expect(result.bytesAfter).toBeLessThan(result.bytesBefore);
    expect(statSync(path).size).toBe(result.bytesAfter);
    const after = await adapter.stats();
    expect(after).toMatchObject({ count: 101, records: 101, bytes: result.bytesAfter });
    expect(await adapter.list({ prefix: "", after: -1, limit: 1_000 })).toEqual(listBefore);
    expect(await adapter.get("d/002")).toBeNull();
    expect(text(await adapter.get("d/000"))).toBe("reborn");
    await adapter.put(datum("late", "after compaction"));
    expect(text(await adapter.get("late"))).toBe("after compaction");
    await adapter.close();
    expect(readdirSync(join(path, "..")).sort()).toEqual(["log.jsonl"]);
    const reopened = await openLog({ path });
    expect(reopened.warnings).toHaveLength(0);
    const listed = await reopened.adapter.list({ prefix: "", after: -1, limit: 1_000 });
    expect(listed.map((d) => d.id).filter((id) => id !== "late")).toEqual(listBefore.map((d) => d.id));
    expect(listed.find((d) => d.id === "d/099")).toEqual(listBefore.find((d) => d.id === "d/099"));
    await reopened.adapter.close();
  });

  it("writes issued while compaction runs wait for it and all land", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path, durability: "group" });
    for (let i = 0; i < 100; i++) await adapter.put(datum(`old/${i}`));
    for (let i = 0; i < 50; i++) await adapter.delete(`old/${i}`);
    const compaction = adapter.compact();
    const writes = Array.from({ length: 100 }, (_, i) => adapter.put(datum(`new/${i}`)));
    const deletes = Array.from({ length: 10 }, (_, i) => adapter.delete(`old/${50 + i}`));
    await Promise.all([compaction, ...writes, ...deletes]);
    expect((await adapter.stats()).count).toBe(140);
    await adapter.close();
    const again = await openLog({ path });
    expect((await again.adapter.stats()).count).toBe(140);
    expect(text(await again.adapter.get("new/99"))).toBe("content of new/99");
    await again.adapter.close();
  });

  it("a temp file left by a compaction that was killed is removed on open; the log is intact", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    await adapter.put(datum("a"));
    await adapter.close();
    const orphan = `${path}.compact-999999-deadbeef.tmp`;
    writeFileSync(orphan, '{"v":1,"op":"put","id":"half');
    const again = await openLog({ path });
    expect(existsSync(orphan)).toBe(false);
    expect(again.warnings.some((w) => w.message.includes("compaction"))).toBe(true);
    expect(text(await again.adapter.get("a"))).toBe("content of a");
    await again.adapter.close();
  });
});

describe("jsonl: group commit and lifecycle", () => {
  for (const durability of ["group", "fsync", "none"] as const) {
    it(`${durability}: 500 concurrent puts and deletes resolve and are all present after reopen`, async () => {
      const path = freshPath();
      const { adapter } = await openLog({ path, durability });
      const ids = await Promise.all(Array.from({ length: 500 }, (_, i) => adapter.put(datum(`c/${i}`))));
      expect(ids).toHaveLength(500);
      expect(await Promise.all(Array.from({ length: 100 }, (_, i) => adapter.delete(`c/${i}`)))).toEqual(Array(100).fill(true));
      await adapter.close();
      const again = await openLog({ path });
      expect((await again.adapter.stats()).count).toBe(400);
      expect(await again.adapter.get("c/50")).toBeNull();
      expect(text(await again.adapter.get("c/499"))).toBe("content of c/499");
      await again.adapter.close();
    });
  }

  it("group: puts issued together are written by their sync in one piece; until then reads, re-puts and conflicts see them", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path, durability: "group" });
    await adapter.put(datum("first"));
    const size = statSync(path).size;
    const pending = Array.from({ length: 20 }, (_, i) => adapter.put(datum(`q/${i}`)));
    // Same job: the lines wait for the sync the end of this job starts, and are read from there.
    expect(statSync(path).size).toBe(size);
    expect(text(await adapter.get("q/7"))).toBe("content of q/7");
    expect((await adapter.getMany(["q/0", "first", "q/19"])).map((d) => (d === null ? null : text(d)))).toEqual(["content of q/0", "content of first", "content of q/19"]);
    expect(await codeOf(adapter.put({ ...datum("q/3"), content: Buffer.from("other") }))).toBe("DGENT_CONFLICT");
    expect(await Promise.all([...pending, adapter.put(datum("q/3"))])).toHaveLength(21);
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as { id: string }).id);
    expect(lines).toEqual(["first", ...Array.from({ length: 20 }, (_, i) => `q/${i}`)]);
    expect(text(await adapter.get("q/7"))).toBe("content of q/7");
    await adapter.close();
    const again = await openLog({ path });
    expect((await again.adapter.stats()).count).toBe(21);
    await again.adapter.close();
  });

  it("group: a batch too big to queue is written after the queued lines, in order, and everything reads back", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path, durability: "group" });
    const big = Array.from({ length: 6 }, (_, i) => datum(`big/${i}`, `${i}`.repeat(300_000)));
    const done = Promise.all([adapter.put(datum("queued-before")), adapter.putMany(big), adapter.put(datum("queued-after"))]);
    expect(text(await adapter.get("queued-after"))).toBe("content of queued-after");
    expect(text(await adapter.get("big/5"))).toBe("5".repeat(300_000));
    await done;
    const ops = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { op: string; id?: string });
    expect(ops.map((r) => r.id ?? r.op)).toEqual(["queued-before", "begin", ...big.map((d) => d.id), "commit", "queued-after"]);
    await adapter.close();
    const again = await openLog({ path });
    expect((await again.adapter.stats()).count).toBe(8);
    expect(text(await again.adapter.get("big/0"))).toBe("0".repeat(300_000));
    await again.adapter.close();
  });

  it("a second adapter on the same path in this process is refused with DGENT_LOCKED until the first closes", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path });
    const second = jsonlAdapter({ path });
    expect(await codeOf(second.open())).toBe("DGENT_LOCKED");
    expect(await codeOf(jsonlAdapter({ path: join(path, "..", ".", "log.jsonl") }).open())).toBe("DGENT_LOCKED");
    await adapter.close();
    await second.open();
    await second.put(datum("ok"));
    await second.close();
  });

  it("close is idempotent (also concurrently), releases the lock, and later calls fail with DGENT_CLOSED", async () => {
    const path = freshPath();
    const { adapter } = await openLog({ path, durability: "group" });
    const pending = adapter.put(datum("a"));
    await Promise.all([adapter.close(), adapter.close()]);
    expect(await pending).toBe("a");
    await adapter.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(await codeOf(adapter.get("a"))).toBe("DGENT_CLOSED");
    expect(await codeOf(adapter.compact())).toBe("DGENT_CLOSED");
    expect(await codeOf(adapter.open())).toBe("DGENT_CLOSED");
  });
});

describe("jsonl: round-trip property", () => {
  it("any valid datums (unicode ids and tags, arbitrary bytes) read back equal, before and after reopen and compaction", async () => {
    const validId = fc.string({ unit: "binary", minLength: 1, maxLength: 24 }).filter((s) => {
      try {
        assertId(s);
        return true;
      } catch {
        return false;
      }
    });
    const arbDatum = fc.record({
      id: fc.oneof(validId, idArb),
      content: fc.uint8Array({ maxLength: 300 }),
      createdAt: fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e15, noNaN: true })),
      // Valid tags only (no U+0000, no lone surrogate): replay refuses what put would refuse.
      metadata: fc.oneof(
        fc.dictionary(fc.string({ unit: "binary", maxLength: 8 }), fc.string({ unit: "binary", maxLength: 12 }), { maxKeys: 4 }),
        metadataArb,
      ).filter((m) => {
        try {
          assertMetadata(m);
          return true;
        } catch {
          return false;
        }
      }),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(arbDatum, { selector: (d) => d.id, maxLength: 30 }), fc.boolean(), async (raw, batch) => {
        const datums: Datum[] = raw.map((d, i) => ({ ...d, causalParent: i > 0 ? raw[i - 1]!.id : null }));
        const path = freshPath();
        const { adapter } = await openLog({ path, durability: "none" });
        if (batch) await adapter.putMany(datums);
        else for (const d of datums) await adapter.put(d);
        const check = async (a: JsonlAdapter) => {
          for (const d of datums) assertSameDatum(await a.get(d.id), d);
          expect((await a.stats()).count).toBe(datums.length);
        };
        await check(adapter);
        await adapter.compact();
        await check(adapter);
        await adapter.close();
        const again = await openLog({ path });
        expect(again.warnings).toEqual([]);
        await check(again.adapter);
        await again.adapter.close();
      }),
      { numRuns: 60 },
    );
  });

  // Deletes, re-puts of deleted ids (same value or another), conflicts and identical re-puts,
  // batches, compactions and reopens in any order: after every step get, list and stats agree
  // with the reference model. Reopening replays tombstones followed by re-puts.
  it("any script of puts, batches, deletes, re-puts, compactions and reopens agrees with the reference model", async () => {
    await fc.assert(
      fc.asyncProperty(storeScriptArb, fc.constantFrom<Durability>("none", "group"), async (script, durability) => {
        const path = freshPath();
        let { adapter } = await openLog({ path, durability });
        const model = new ReferenceStore();
        const pool = [...new Set(script.flatMap((s) => (s.op === "put" ? [s.datum.id] : s.op === "putMany" ? s.datums.map((d) => d.id) : s.op === "delete" ? [s.id] : [])))];
        const queries = [
          { prefix: "", after: -1, limit: 1000 },
          { prefix: "", after: 2, limit: 2 },
          ...pool.map((id) => ({ prefix: [...id][0] as string, after: -1, limit: 3 })),
        ];
        const check = async (step: number) => {
          const where = `step ${step} (${script[step]?.op ?? "start"})`;
          for (const id of pool) {
            const want = model.live.get(id);
            const got = await adapter.get(id);
            if (want === undefined) expect(got, `${where}: ${JSON.stringify(id)} was deleted or never stored`).toBeNull();
            else assertSameDatum(got, want, where);
          }
          for (const q of queries) {
            expect((await adapter.list(q)).map((d) => d.id), `${where}: list ${JSON.stringify(q)}`).toEqual(referenceList(model.live.values(), q).map((d) => d.id));
          }
          expect((await adapter.stats()).count, where).toBe(model.live.size);
        };
        try {
          for (const [step, s] of script.entries()) {
            switch (s.op) {
              case "put": {
                const outcome = model.put(s.datum);
                if (outcome === "conflict") expect(await codeOf(adapter.put(s.datum))).toBe("DGENT_CONFLICT");
                else expect(await adapter.put(s.datum)).toBe(s.datum.id);
                break;
              }
              case "putMany": {
                const outcome = model.putMany(s.datums);
                if (outcome === "conflict") expect(await codeOf(adapter.putMany(s.datums))).toBe("DGENT_CONFLICT");
                else expect(await adapter.putMany(s.datums)).toEqual(s.datums.map((d) => d.id));
                break;
              }
              case "delete":
                expect(await adapter.delete(s.id)).toBe(model.delete(s.id) === "deleted");
                break;
              case "compact":
                expect((await adapter.compact()).datums).toBe(model.live.size);
                break;
              case "reopen": {
                await adapter.close();
                const again = await openLog({ path, durability });
                expect(again.warnings).toEqual([]);
                adapter = again.adapter;
                break;
              }
            }
            await check(step);
          }
          await adapter.close();
          const last = await openLog({ path, durability });
          adapter = last.adapter;
          expect(last.warnings).toEqual([]);
          await check(script.length);
        } finally {
          await adapter.close();
        }
      }),
      { numRuns: 100 },
    );
  });
});
