import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDefaultStore } from "../compose/default-store.js";
import { makeDatum, type Datum } from "../core/datum.js";
import { run } from "./commands.js";
import { errorLine } from "./main.js";
import { parseCondition } from "./query-commands.js";

// `dgent list/count/children/chain/delete/get` over a real SQLite store under a temporary
// XDG_DATA_HOME: mostly through the CLI's in-process entry (what cli/main.ts runs), and the built
// binary as a child process for the exit codes a shell sees.

const home = mkdtempSync(join(tmpdir(), "dgent-query-cli-"));
const data = join(home, "data");
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
    env: { HOME: home, XDG_DATA_HOME: data },
  };
  try {
    return { code: await run(args, io), out, err };
  } catch (error) {
    // What cli/main.ts does with an error: one line, exit 2 for usage, else 1.
    return { code: (error as { code?: string }).code === "DGENT_USAGE" ? 2 : 1, out, err: err + errorLine(error) };
  }
}

/**
 * A command's JSON. A page (`list`, `children`) prints the array of items, as `dgent list --json`
 * always did, and its next cursor on stderr: it comes back here as `{ items, cursor }`.
 */
async function json<T>(args: string[]): Promise<T> {
  const r = await dgent([...args, "--json"]);
  expect(r.code, r.err).toBe(0);
  const value = JSON.parse(r.out) as unknown;
  if (!Array.isArray(value) || !["list", "children"].includes(args[0] as string)) return value as T;
  const next = /^next page: --cursor ([A-Za-z0-9_-]+)$/m.exec(r.err);
  return { items: value, cursor: next ? next[1] : null } as T;
}

async function seed(namespace: string, datums: readonly Datum[]): Promise<void> {
  const store = await openDefaultStore({ namespace, env: { HOME: home, XDG_DATA_HOME: data } });
  try {
    await store.putMany(datums);
  } finally {
    await store.close();
  }
}

/** Newest first: createdAt descending, then id descending (ids here are ASCII, so `<` is code point order). */
const newestFirst = (a: Datum, b: Datum) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

// 60 datums over 9 distinct times (ties broken by id), with tags holding LIKE's special characters,
// commas and equals signs, some without tags at all, and a few children of one parent.
const T0 = 1_700_000_000_000;
const THREADS = ["t1", "t%2", "t_3", "a\\b", "x=y,z"];
const ROLES = ["user", "agent", "tool"];
const DATUMS: Datum[] = Array.from({ length: 60 }, (_, i) =>
  makeDatum({
    id: `msg/${String(i).padStart(2, "0")}`,
    content: `content ${i}`,
    createdAt: T0 + (i % 9) * 1000,
    causalParent: i >= 50 ? "msg/00" : null,
    metadata: {
      ...(i % 7 === 6 ? {} : { role: ROLES[i % 3] as string }),
      ...(i % 4 === 3 ? {} : { thread: THREADS[i % 5] as string }),
    },
  }),
);
const ALL = [...DATUMS].sort(newestFirst).map((d) => d.id);

describe("dgent list and count", () => {
  beforeAll(() => seed("q", DATUMS));

  async function pageThrough(args: string[], limit: number): Promise<string[][]> {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await json(["list", "-n", "q", "--ids", "--limit", String(limit), ...args, ...(cursor ? ["--cursor", cursor] : [])]);
      pages.push(page.items);
      cursor = page.cursor;
      expect(pages.length).toBeLessThanOrEqual(ALL.length); // a cursor that never ends fails here
    } while (cursor !== null);
    return pages;
  }

  it("pages to the end with --cursor, every item once, in either order", async () => {
    const newest = await pageThrough([], 7);
    expect(newest.flat()).toEqual(ALL);
    expect(newest.slice(0, -1).every((p) => p.length === 7)).toBe(true);
    const oldest = await pageThrough(["--order", "oldest"], 11);
    expect(oldest.flat()).toEqual([...ALL].reverse());
    // A page that ends exactly at the last item still hands a cursor; the page after it is empty.
    expect((await pageThrough([], 20)).map((p) => p.length)).toEqual([20, 20, 20, 0]);
  });

  it("a cursor has no direction: the same position pages on either way", async () => {
    const first: { items: string[]; cursor: string } = await json(["list", "-n", "q", "--ids", "--limit", "10"]);
    const back: { items: string[] } = await json(["list", "-n", "q", "--ids", "--order", "oldest", "--limit", "100", "--cursor", first.cursor]);
    expect(back.items).toEqual(ALL.slice(0, 9).reverse());
  });

  it("a human page: ids on stdout, the next cursor on stderr", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 20; n++) {
      const r = await dgent(["list", "-n", "q", "--ids", "--limit", "25", ...(cursor ? ["--cursor", cursor] : [])]);
      expect(r.code, r.err).toBe(0);
      seen.push(...r.out.split("\n").filter(Boolean));
      const next = /^next page: --cursor ([A-Za-z0-9_-]+)\n$/.exec(r.err);
      if (next === null) {
        expect(r.err).toBe("");
        break;
      }
      cursor = next[1];
    }
    expect(seen).toEqual(ALL);
    const table = await dgent(["list", "-n", "q", "--limit", "3"]);
    expect(table.out.split("\n")[0]).toMatch(/^ID\s+CREATED\s+BYTES\s+PARENT\s+TAGS\s+CONTENT$/);
    expect(table.out.split("\n").filter(Boolean)).toHaveLength(5);
    const meta = await dgent(["list", "-n", "q", "--limit", "3", "--meta"]);
    expect(meta.out.split("\n")[0]).toMatch(/^ID\s+CREATED\s+PARENT\s+TAGS$/);
    expect(meta.out).toContain(ALL[0]);
  });

  it("--meta gives headers without content, --ids plain ids, the default whole datums", async () => {
    const meta: { items: Array<Record<string, unknown>> } = await json(["list", "-n", "q", "--meta", "--limit", "2"]);
    const d = DATUMS.find((x) => x.id === ALL[0]) as Datum;
    expect(meta.items[0]).toEqual({ id: d.id, createdAt: d.createdAt, createdAtIso: new Date(d.createdAt).toISOString(), causalParent: d.causalParent, metadata: d.metadata });
    const full: { items: Array<Record<string, unknown>> } = await json(["list", "-n", "q", "--limit", "2"]);
    expect(full.items[0]).toMatchObject({ id: d.id, content: `content ${d.id.slice(4).replace(/^0/, "")}`, metadata: d.metadata });
  });

  const tag = (d: Datum, k: string) => (Object.hasOwn(d.metadata, k) ? d.metadata[k] : undefined);
  const CASES: Array<[string[], (d: Datum) => boolean]> = [
    [["--where", "role=user"], (d) => tag(d, "role") === "user"],
    [["--where", "role=user,tool"], (d) => ["user", "tool"].includes(tag(d, "role") ?? "")],
    [["--where", "thread~t"], (d) => tag(d, "thread")?.startsWith("t") === true],
    [["--where", "thread~"], (d) => tag(d, "thread") !== undefined],
    [["--where", "thread=t%2"], (d) => tag(d, "thread") === "t%2"],
    [["--where", "thread~t_"], (d) => tag(d, "thread") === "t_3"],
    [["--where", "thread=a\\\\b"], (d) => tag(d, "thread") === "a\\b"],
    [["--where", "thread=x=y\\,z"], (d) => tag(d, "thread") === "x=y,z"],
    [["--where", "thread=x=y\\,z,t1"], (d) => ["x=y,z", "t1"].includes(tag(d, "thread") ?? "")],
    [["--where", "role?"], (d) => tag(d, "role") !== undefined],
    [["--where", "!role"], (d) => tag(d, "role") === undefined],
    [["--where", "role=agent", "--where", "thread~t"], (d) => tag(d, "role") === "agent" && tag(d, "thread")?.startsWith("t") === true],
    [["--where", "role=nobody"], () => false],
    [["--prefix", "msg/1"], (d) => d.id.startsWith("msg/1")],
    [["--id-from", "msg/10", "--id-to", "msg/20"], (d) => d.id >= "msg/10" && d.id < "msg/20"],
    [["--after", String(T0 + 2000), "--before", String(T0 + 6000)], (d) => d.createdAt > T0 + 2000 && d.createdAt < T0 + 6000],
    [["--after", new Date(T0 + 7000).toISOString()], (d) => d.createdAt > T0 + 7000],
    [["--parent", "msg/00", "--where", "role=agent"], (d) => d.causalParent === "msg/00" && tag(d, "role") === "agent"],
  ];

  it.each(CASES)("filters %j the way the reference does, and count agrees", async (args, keep) => {
    const expected = ALL.filter((id) => keep(DATUMS.find((d) => d.id === id) as Datum));
    const page: { items: string[]; cursor: string | null } = await json(["list", "-n", "q", "--ids", "--limit", "1000", ...args]);
    expect(page.items).toEqual(expected);
    expect(page.cursor).toBeNull();
    expect(await json(["count", "-n", "q", ...args])).toEqual({ count: expected.length });
    expect((await dgent(["count", "-n", "q", ...args])).out).toBe(`${expected.length}\n`);
  });

  it("filtered pages with a cursor pages to the end too", async () => {
    const pages = await pageThrough(["--where", "role=user,agent", "--order", "oldest"], 4);
    expect(pages.flat()).toEqual([...ALL].reverse().filter((id) => ["user", "agent"].includes((DATUMS.find((d) => d.id === id) as Datum).metadata.role ?? "")));
  });
});

describe("dgent children and chain --tail", () => {
  const chain = Array.from({ length: 30 }, (_, i) =>
    makeDatum({ id: `step/${String(i).padStart(2, "0")}`, content: `step ${i}`, createdAt: T0 + i, causalParent: i === 0 ? null : `step/${String(i - 1).padStart(2, "0")}` }),
  );
  const branches = Array.from({ length: 5 }, (_, i) =>
    makeDatum({ id: `branch/${i}`, content: `regenerated ${i}`, createdAt: T0 + 100, causalParent: "step/10", metadata: { attempt: String(i) } }),
  );
  beforeAll(() => seed("graph", [...chain, ...branches]));

  it("children pages through a datum's branches in either order", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: string[]; cursor: string | null } = await json(["children", "step/10", "-n", "graph", "--ids", "--limit", "2", ...(cursor ? ["--cursor", cursor] : [])]);
      seen.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    // The next step of the chain is a child too, older than the regenerated replies.
    expect(seen).toEqual(["branch/4", "branch/3", "branch/2", "branch/1", "branch/0", "step/11"]);
    const oldest: { items: string[] } = await json(["children", "step/10", "-n", "graph", "--ids", "--order", "oldest", "--where", "attempt~"]);
    expect(oldest.items).toEqual(["branch/0", "branch/1", "branch/2", "branch/3", "branch/4"]);
    expect(await json(["children", "step/29", "-n", "graph", "--ids"])).toEqual({ items: [], cursor: null });
    expect((await dgent(["children", "-n", "graph"])).err).toMatch(/missing ID.*\[DGENT_USAGE\]/);
    expect((await dgent(["children", "step/10", "--parent", "x", "-n", "graph"])).code).toBe(2);
  });

  it("chain --tail N gives the last N steps, oldest first; without it the whole chain", async () => {
    const tail: Array<{ id: string }> = await json(["chain", "step/29", "-n", "graph", "--tail", "5"]);
    expect(tail.map((d) => d.id)).toEqual(["step/25", "step/26", "step/27", "step/28", "step/29"]);
    const longer: Array<{ id: string }> = await json(["chain", "step/29", "-n", "graph", "--tail", "100"]);
    expect(longer.map((d) => d.id)).toEqual(chain.map((d) => d.id));
    const whole: Array<{ id: string }> = await json(["chain", "branch/3", "-n", "graph"]);
    expect(whole.map((d) => d.id)).toEqual([...chain.slice(0, 11).map((d) => d.id), "branch/3"]);
    const text = await dgent(["chain", "step/29", "-n", "graph", "-t", "2"]);
    expect(text.out).toMatch(/^step\/28 .*\n└─ step\/29 /);
    expect((await dgent(["chain", "nope", "-n", "graph", "--tail", "3"])).code).toBe(1);
    expect((await dgent(["chain", "step/29", "-n", "graph", "--tail", "0"])).err).toMatch(/--tail takes a positive whole number, got 0 \[DGENT_USAGE\]/);
    expect((await dgent(["chain", "step/29", "-n", "graph", "--tail", "-3"])).code).toBe(2);
  });
});

describe("dgent delete by filters and dgent get of several ids", () => {
  const datums = Array.from({ length: 12 }, (_, i) =>
    makeDatum({ id: `${i < 8 ? "session/a" : "session/b"}/${i}`, content: `d${i}`, createdAt: T0 + i, metadata: { role: i % 2 ? "user" : "agent" } }),
  );
  beforeAll(() => seed("del", datums));
  const count = async (...args: string[]) => ((await json(["count", "-n", "del", ...args])) as { count: number }).count;

  it("refuses without --yes (saying how many would go), then deletes and reports the count", async () => {
    const refused = await dgent(["delete", "-n", "del", "--prefix", "session/a/"]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/^dgent: refusing to delete 8 datums without --yes.*\[DGENT_USAGE\]\n$/);
    expect(await count()).toBe(12);

    expect(await json(["delete", "-n", "del", "--prefix", "session/a/", "--where", "role=user", "--yes"])).toEqual({ deleted: 4 });
    expect(await count("--prefix", "session/a/")).toBe(4);
    const plain = await dgent(["delete", "-n", "del", "--where", "role=user", "-y"]);
    expect(plain.out).toBe("deleted 2 datums\n");
    expect(await count()).toBe(6);

    expect((await dgent(["delete", "-n", "del"])).err).toMatch(/delete needs an ID, filters .*\[DGENT_USAGE\]/);
    expect((await dgent(["delete", "-n", "del", "--all"])).err).toMatch(/refusing to delete 6 datums without --yes/);
    expect((await dgent(["delete", "-n", "del", "--all", "--prefix", "x", "--yes"])).code).toBe(2);
    expect((await dgent(["delete", "session/b/8", "--prefix", "x", "-n", "del"])).code).toBe(2);
    expect((await dgent(["delete", "-n", "del", "--prefix", "", "--yes"])).err).toMatch(/match every datum; say --all --yes/);
    expect(await count()).toBe(6);

    // One id keeps working as before, --yes or not.
    expect(await json(["delete", "session/b/8", "-n", "del"])).toEqual({ id: "session/b/8", deleted: true });
    expect((await dgent(["delete", "session/b/8", "-n", "del"])).code).toBe(1);
    expect(await json(["delete", "-n", "del", "--all", "--yes"])).toEqual({ deleted: 5 });
    expect(await count()).toBe(0);
  });

  it("get with several ids answers in order, null where absent, exit 1 when one is missing", async () => {
    await seed("many", datums);
    const r = await dgent(["get", "session/b/9", "nope", "session/a/0", "session/b/9", "-n", "many", "--json"]);
    expect(r.code).toBe(1);
    const got = JSON.parse(r.out) as Array<{ id: string; content: string } | null>;
    expect(got.map((d) => d?.content ?? null)).toEqual(["d9", null, "d0", "d9"]);
    expect(r.err).toBe('dgent: no datum with id "nope"\n');
    const raw = await dgent(["get", "session/a/1", "session/a/2", "-n", "many"]);
    expect(raw).toEqual({ code: 0, out: "d1d2", err: "" });
    expect(await json(["get", "session/a/1", "-n", "many"])).toMatchObject({ id: "session/a/1", content: "d1" });
  });
});

describe("bad input names the flag", () => {
  beforeAll(() => seed("bad", [makeDatum({ id: "x/1", content: "x", metadata: { role: "user" } }), makeDatum({ id: "x/2", content: "y", metadata: { role: "tool" } })]));

  it.each([
    [["--where", "role"], /--where "role": no operator/],
    [["--where", "=user"], /--where "=user": no tag name/],
    [["--where", "role?x"], /--where "role\?x": \? ends the condition/],
    [["--where", "role~a,b"], /--where "role~a,b": a prefix takes one value/],
    [["--where", "role=a\\"], /--where "role=a\\\\": ends with a lone backslash/],
    [["--where", "!role=user"], /--where "!role=user": !key takes no operator/],
    [["--where", "!"], /no tag name after !/],
    [["--where", "role=a", "--where", "role~b"], /--where names tag "role" twice/],
    [["--order", "sideways"], /--order takes newest or oldest/],
    [["--ids", "--meta"], /give --ids or --meta, not both/],
    [["--limit", "ten"], /--limit takes a whole number/],
    [["--before", "someday"], /--before takes epoch milliseconds or an ISO date/],
    [["extra"], /list takes no arguments; did you mean --prefix extra\?/],
  ])("list %j is a usage error (exit 2)", async (args, message) => {
    const r = await dgent(["list", "-n", "bad", ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/ \[DGENT_USAGE\]\n$/);
    expect(r.out).toBe("");
  });

  it("a malformed or foreign cursor, a huge limit or a bad tag name is DGENT_INVALID_QUERY naming the flag (exit 1)", async () => {
    const page: { cursor: string } = await json(["list", "-n", "bad", "--where", "role=user,tool", "--limit", "1", "--ids"]);
    const cases: Array<[string[], RegExp]> = [
      [["--cursor", "not-a-cursor"], /^dgent: --cursor: is not a cursor dgent made/],
      [["--cursor", "a+b/c=="], /^dgent: --cursor: is not a cursor dgent made/],
      [["--cursor", page.cursor, "--where", "role=user"], /^dgent: --cursor: was made for a query with other filters/],
      [["--limit", "100001"], /^dgent: --limit: must be an integer from 0 to 100000, got 100001/],
      [["--where", "ro\u0001le=x"], /^dgent: --where \(where\.ro\\x01le\): .*control character/],
    ];
    for (const [args, message] of cases) {
      const r = await dgent(["list", "-n", "bad", ...args]);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err).toMatch(/ \[DGENT_INVALID_QUERY\]\n$/);
    }
    // The cursor goes on with the filters it was made for, in either order.
    expect(await json(["list", "-n", "bad", "--where", "role=user,tool", "--cursor", page.cursor, "--ids"])).toEqual({ items: ["x/1"], cursor: null });
    expect((await dgent(["count", "-n", "bad", "--where", "k=v", "--cursor", "c"])).err).toMatch(/Unknown option '--cursor'/);
  });

  it("hostile tag values are escaped in tables and exact in JSON", async () => {
    const evil = "\u001b[2J\u001b]0;pwned\u0007\u202Eevil";
    await seed("hostile", [makeDatum({ id: "h/1", content: "c", metadata: { note: evil } })]);
    const table = await dgent(["list", "-n", "hostile", "--meta", "--where", `note~\u001b[2J`]);
    expect(table.out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(table.out).toContain("note=\\x1b[2J\\x1b]0;pwned\\x07\\u{202e}evil");
    const out = (await dgent(["list", "-n", "hostile", "--meta", "--json", "--where", `note=${evil}`])).out;
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect((JSON.parse(out) as Array<{ metadata: unknown }>)[0]?.metadata).toEqual({ note: evil });
  });
});

describe("--where syntax", () => {
  const special = (s: string) => s.replace(/[\\=~?,!]/g, (c) => `\\${c}`);

  it("parses each operator", () => {
    expect(parseCondition("role=user")).toEqual(["role", "user"]);
    expect(parseCondition("role=")).toEqual(["role", ""]);
    expect(parseCondition("role=user,tool")).toEqual(["role", { in: ["user", "tool"] }]);
    expect(parseCondition("url=http://h/?a=b")).toEqual(["url", "http://h/?a=b"]);
    expect(parseCondition("role~us")).toEqual(["role", { prefix: "us" }]);
    expect(parseCondition("role~")).toEqual(["role", { prefix: "" }]);
    expect(parseCondition("role?")).toEqual(["role", { exists: true }]);
    expect(parseCondition("!role")).toEqual(["role", { exists: false }]);
    expect(parseCondition("\\!k\\=\\?=a\\,b")).toEqual(["!k=?", "a,b"]);
    expect(parseCondition("a\\\\=\\\\")).toEqual(["a\\", "\\"]);
  });

  it("any tag and values, escaped, parse back to themselves", () => {
    const text = fc.string({ unit: "grapheme-composite", maxLength: 12 });
    fc.assert(
      fc.property(text.filter((k) => k.length > 0), fc.array(text, { minLength: 1, maxLength: 4 }), fc.constantFrom("=", "~"), (key, values, op) => {
        if (op === "~") expect(parseCondition(`${special(key)}~${special(values[0] as string)}`)).toEqual([key, { prefix: values[0] }]);
        else expect(parseCondition(`${special(key)}=${values.map(special).join(",")}`)).toEqual([key, values.length === 1 ? values[0] : { in: values }]);
        expect(parseCondition(`!${special(key)}`)).toEqual([key, { exists: false }]);
        expect(parseCondition(`${special(key)}?`)).toEqual([key, { exists: true }]);
      }),
    );
  });
});

describe("the built binary", () => {
  const BIN = new URL("../dist/cli/main.js", import.meta.url).pathname;
  const bin = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: data } });
    return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  it("exits 2 on bad --where and a refused delete, 1 on a bad cursor, 0 on a page", async () => {
    await seed("bin", [makeDatum({ id: "b/1", content: "one", metadata: { role: "user" } }), makeDatum({ id: "b/2", content: "two", metadata: { role: "tool" } })]);
    const bad = bin(["list", "-n", "bin", "--where", "role"]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/^dgent: --where "role": no operator.*\[DGENT_USAGE\]\n$/)]);
    const cursor = bin(["list", "-n", "bin", "--cursor", "zzz"]);
    expect([cursor.code, cursor.stderr]).toEqual([1, expect.stringMatching(/^dgent: --cursor: .*\[DGENT_INVALID_QUERY\]\n$/)]);
    const refused = bin(["delete", "-n", "bin", "--where", "role?"]);
    expect([refused.code, refused.stderr]).toEqual([2, expect.stringMatching(/refusing to delete 2 datums without --yes/)]);
    const page = bin(["list", "-n", "bin", "--where", "role=user", "--ids", "--order", "oldest"]);
    expect(page).toEqual({ code: 0, stdout: "b/1\n", stderr: "" });
    expect(bin(["delete", "-n", "bin", "--where", "role?", "--yes"]).stdout).toBe("deleted 2 datums\n");
    expect(bin(["count", "-n", "bin"]).stdout).toBe("0\n");
  });
});
