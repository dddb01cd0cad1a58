import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "./commands.js";
import { errorLine } from "./main.js";

// `dgent search` and `dgent reindex` over a SQLite store composed by a config file with the
// recall plugin (the hashing embedder: words and spellings, not meaning).

const home = mkdtempSync(join(tmpdir(), "dgent-search-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

interface Result {
  code: number;
  out: string;
  err: string;
}

async function dgent(args: string[]): Promise<Result> {
  let out = "";
  let err = "";
  const io = {
    stdout: (c: string | Uint8Array) => (out += typeof c === "string" ? c : Buffer.from(c).toString("utf8")),
    stderr: (c: string) => (err += c),
    stdin: Readable.from([]) as NodeJS.ReadableStream,
    env: { HOME: home, XDG_DATA_HOME: join(home, "data") },
  };
  try {
    return { code: await run(args, io), out, err };
  } catch (error) {
    return { code: (error as { code?: string }).code === "DGENT_USAGE" ? 2 : 1, out, err: err + errorLine(error) };
  }
}

let configs = 0;
function config(plugins: string): string {
  const path = join(home, `dgent${++configs}.config.yaml`);
  writeFileSync(path, `version: 1\ntiers:\n  - adapter: sqlite\n    options: { path: "${join(home, `store${configs}.db`)}" }\nplugins:\n${plugins}`);
  return path;
}

const RECALL = "  - plugin: recall\n    options: { embedder: { hashing: { dimensions: 128 } }, ann: false }\n";

describe("dgent search", () => {
  const file = config(RECALL);
  const put = async (id: string, text: string, meta: string[] = []) => {
    const r = await dgent(["--config", file, "put", text, "--id", id, ...meta.flatMap((m) => ["--meta", m])]);
    expect(r.code, r.err).toBe(0);
  };

  it("finds the nearest datums, best first; --json gives ids and scores; filters apply during the search", async () => {
    await put("n/cats", "cats purr and sleep in the sun", ["topic=pets"]);
    await put("n/dogs", "dogs bark at the postman", ["topic=pets"]);
    await put("n/stocks", "stock markets fell sharply today", ["topic=money"]);
    await put("n/bonds", "bond markets rallied", ["topic=money"]);
    const table = await dgent(["--config", file, "search", "cats sleeping in the sun", "--k", "2"]);
    expect(table.code, table.err).toBe(0);
    expect(table.out.split("\n")[2]).toMatch(/^1\s+[\d.]+\s+n\/cats\s+cats purr and sleep in the sun$/);
    expect(table.err).toBe("vector search, 2 of k=2\n");

    const json = await dgent(["--config", file, "search", "markets", "--k", "5", "--json"]);
    expect(json.code, json.err).toBe(0);
    const hits = JSON.parse(json.out) as Array<{ id: string; score: number }>;
    expect(hits).toHaveLength(4);
    expect(hits.slice(0, 2).map((h) => h.id).sort()).toEqual(["n/bonds", "n/stocks"]);
    expect(hits[0]?.score).toBeGreaterThanOrEqual(hits[1]?.score as number);

    const filtered = await dgent(["--config", file, "search", "markets", "--k", "5", "--where", "topic=pets", "--json"]);
    expect((JSON.parse(filtered.out) as Array<{ id: string }>).map((h) => h.id).sort()).toEqual(["n/cats", "n/dogs"]);
    const prefixed = await dgent(["--config", file, "search", "markets", "--prefix", "n/b", "--json"]);
    expect((JSON.parse(prefixed.out) as Array<{ id: string }>).map((h) => h.id)).toEqual(["n/bonds"]);

    await dgent(["--config", file, "delete", "n/stocks"]);
    const after = JSON.parse((await dgent(["--config", file, "search", "stock markets", "--json"])).out) as Array<{ id: string }>;
    expect(after.map((h) => h.id)).not.toContain("n/stocks");
  });

  it("reindex catches up and says what it did; --full embeds everything again", async () => {
    const r = await dgent(["--config", file, "reindex"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^recall: checked 3, embedded 0, skipped 0, removed 0 in \d+ ms\n$/);
    const full = await dgent(["--config", file, "reindex", "--full", "--json"]);
    expect(full.code, full.err).toBe(0);
    expect(JSON.parse(full.out)).toMatchObject({ recall: { checked: 3, embedded: 3, removed: 0 } });
    const hits = JSON.parse((await dgent(["--config", file, "search", "dogs bark", "--k", "1", "--json"])).out) as Array<{ id: string }>;
    expect(hits.map((h) => h.id)).toEqual(["n/dogs"]);
  });

  it("with the fulltext plugin too: hybrid by default (reciprocal rank fusion), --mode text and vector; reindex does both", async () => {
    const both = config(`${RECALL}  - fulltext\n`);
    for (const [id, text] of [["h/1", "the quarterly earnings report beat estimates"], ["h/2", "earnings season starts next week"], ["h/3", "a recipe for lemon tart"]] as const) {
      expect((await dgent(["--config", both, "put", text, "--id", id])).code).toBe(0);
    }
    const hybrid = await dgent(["--config", both, "search", "quarterly earnings", "--k", "2", "--json"]);
    expect(hybrid.code, hybrid.err).toBe(0);
    expect(hybrid.err).toBe("hybrid search, 2 of k=2\n");
    expect((JSON.parse(hybrid.out) as Array<{ id: string }>)[0]?.id).toBe("h/1");
    const text = await dgent(["--config", both, "search", "lemon", "--mode", "text", "--json"]);
    expect(text.err).toMatch(/^text search/);
    expect((JSON.parse(text.out) as Array<{ id: string }>).map((h) => h.id)).toEqual(["h/3"]);
    expect((await dgent(["--config", both, "search", "lemon", "--mode", "vector"])).err).toMatch(/^vector search/);
    const reindex = await dgent(["--config", both, "reindex", "--json"]);
    expect(reindex.code, reindex.err).toBe(0);
    expect(Object.keys(JSON.parse(reindex.out) as object).sort()).toEqual(["fulltext", "recall"]);
  });

  it("refuses bad arguments as usage errors, and a store without a search plugin with a hint", async () => {
    expect((await dgent(["--config", file, "search"])).code).toBe(2);
    expect((await dgent(["--config", file, "search", "a", "b"])).err).toMatch(/quote it/);
    for (const k of ["0", "1001", "x"]) expect((await dgent(["--config", file, "search", "q", "--k", k])).err).toMatch(/--k takes a whole number from 1 to 1000/);
    expect((await dgent(["--config", file, "search", "q", "--mode", "words"])).code).toBe(2);
    expect((await dgent(["--config", file, "search", "q", "--where", "oops"])).code).toBe(2);
    const text = await dgent(["--config", file, "search", "q", "--mode", "text"]);
    expect(text.code).toBe(1);
    expect(text.err).toMatch(/needs the "fulltext" plugin/);

    const bare = config("  - cache\n");
    const none = await dgent(["--config", bare, "search", "q"]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no search plugin.*"recall"/);
    expect((await dgent(["--config", bare, "reindex"])).code).toBe(1);
  });
});
