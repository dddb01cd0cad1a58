/**
 * `importDatums` (bulk.ts), the bulk write of `dgent restore`: binary COPY into a staging table,
 * one INSERT … SELECT … ON CONFLICT DO NOTHING. It stores what putMany stores (contents, tags,
 * parents), never overwrites a held id, names the ids held with a different value, is all or
 * nothing, and logs and announces its rows as putMany does so that listeners hear them.
 */
import { spawn } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { resolveQuery } from "../../core/query.js";
import { createStore } from "../../core/store.js";
import { expectCode } from "../../testing/index.js";
import { assertBuilt, dropSchema, freshSchema, startPostgres, type PostgresServer } from "../../test/harness/postgres.js";
import { putsHeard } from "../../test/harness/heard.js";
import { until } from "../../test/harness/until.js";
import { copyBinary } from "./bulk.js";
import { postgresAdapter } from "./index.js";
import { ORIGIN } from "./notify.js";
import { identifiers } from "./sql.js";

let server: PostgresServer;
let raw: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  raw = new pg.Client(server.url);
  await raw.connect();
});
const schemas: string[] = [];
const schema = (label: string) => {
  const name = freshSchema(label);
  schemas.push(name);
  return name;
};
afterAll(async () => {
  await raw?.end();
  for (const name of schemas) if (server) await dropSchema(server, name);
  await server?.close();
});

const plain = (d: Datum | null) =>
  d && { id: d.id, content: Buffer.from(d.content).toString("hex"), createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata };

/** Datums with every field in use: unicode ids, parents, tags, fractional times, empty and binary contents. */
function sample(n: number, prefix: string): Datum[] {
  const out: Datum[] = [];
  const idOf = (i: number) => `${prefix}/${i}${i % 7 === 0 ? "/é😀" : ""}`;
  for (let i = 0; i < n; i++) {
    out.push(
      makeDatum({
        id: idOf(i),
        content: i % 11 === 0 ? Buffer.alloc(0) : Buffer.from(Array.from({ length: 40 + (i % 50) }, (_, k) => (i * 31 + k) & 0xff)),
        createdAt: 1_700_000_000_000 + i + (i % 3 === 0 ? 0.25 : 0),
        causalParent: i > 0 && i % 4 === 0 ? idOf(i - 1) : null,
        metadata: i % 5 === 0 ? {} : { kind: i % 2 ? "note" : "plan", n: String(i), "ключ": "значение" },
      }),
    );
  }
  return out;
}

describe("importDatums stores what putMany stores", () => {
  it("contents, parents and tags (queryable) equal a putMany of the same datums; a second import stores nothing", async () => {
    const ns = schema("bulk_same");
    const viaPut = postgresAdapter({ url: server.url, namespace: `${ns}_p`, listen: false });
    schemas.push(`${ns}_p`);
    const viaImport = postgresAdapter({ url: server.url, namespace: ns, listen: false });
    await viaPut.open();
    await viaImport.open();
    try {
      const datums = sample(700, "s");
      await viaPut.putMany(datums);
      expect(await viaImport.importDatums(datums)).toEqual({ stored: 700, conflicts: [] });
      const ids = datums.map((d) => d.id);
      expect((await viaImport.getMany(ids)).map(plain)).toEqual((await viaPut.getMany(ids)).map(plain));
      for (const where of [{ kind: "plan" }, { n: "13" }, { "ключ": "значение" }] as Array<Record<string, string>>) {
        const q = { ...resolveQuery({ where, order: "oldest" }), limit: 10_000 };
        const got = (await viaImport.query(q)).map((d) => d.id);
        expect(got.length).toBeGreaterThan(0);
        expect(got).toEqual((await viaPut.query(q)).map((d) => d.id));
      }
      // The tags table holds the same rows as after putMany.
      const tagRows = async (namespace: string) =>
        (await raw.query<{ r: string }>(`SELECT key || '=' || value || '@' || id AS r FROM ${identifiers(namespace, "data").tags} ORDER BY 1`)).rows.map((r) => r.r);
      expect(await tagRows(ns)).toEqual(await tagRows(`${ns}_p`));
      expect((await viaImport.causalChain?.("s/8", 100))?.map((d) => d.id)).toEqual(["s/7/é😀", "s/8"]);
      expect(await viaImport.importDatums(datums)).toEqual({ stored: 0, conflicts: [] });
      expect((await viaImport.stats?.())?.count).toBe(700);
    } finally {
      await viaPut.close();
      await viaImport.close();
    }
  });
});

describe("importDatums never overwrites a held id", () => {
  it("an id held with the same value is left, one held with a different value is named and kept, the rest are stored", async () => {
    const ns = schema("bulk_conflict");
    const a = postgresAdapter({ url: server.url, namespace: ns, listen: false });
    await a.open();
    try {
      const same = makeDatum({ id: "same", content: "one", createdAt: 1 });
      const held = makeDatum({ id: "differs", content: "held", createdAt: 2, metadata: { k: "v" } });
      await a.put(same);
      await a.put(held);
      const incoming = [
        makeDatum({ id: "new-1", content: "n1", createdAt: 3 }),
        makeDatum({ id: "same", content: "one", createdAt: 1 }),
        makeDatum({ id: "differs", content: "other", createdAt: 2, metadata: { k: "v" } }),
        makeDatum({ id: "new-2", content: "n2", createdAt: 4 }),
      ];
      expect(await a.importDatums(incoming)).toEqual({ stored: 2, conflicts: ["differs"] });
      expect(Buffer.from((await a.get("differs"))?.content ?? []).toString()).toBe("held");
      expect(Buffer.from((await a.get("new-2"))?.content ?? []).toString()).toBe("n2");
      // A metadata change alone is a conflict too.
      expect(await a.importDatums([makeDatum({ id: "same", content: "one", createdAt: 1, metadata: { k: "w" } })])).toEqual({ stored: 0, conflicts: ["same"] });
      expect((await a.stats?.())?.count).toBe(4);
    } finally {
      await a.close();
    }
  });

  it("is all or nothing: metadata Postgres cannot store fails the call before anything is written", async () => {
    const ns = schema("bulk_atomic");
    const a = postgresAdapter({ url: server.url, namespace: ns, listen: false });
    await a.open();
    try {
      // Built by hand: makeDatum refuses such metadata before any tier sees it.
      const bad: Datum[] = [makeDatum({ id: "ok", content: "x", createdAt: 1 }), { id: "bad", content: Buffer.from("y"), createdAt: 2, causalParent: null, metadata: { k: "a\u0000b" } }];
      await expectCode(a.importDatums(bad), "DGENT_INVALID_METADATA");
      expect((await a.stats?.())?.count).toBe(0);
      // The connection (and its staging table) is usable after a failed call.
      await expectCode(a.importDatums([makeDatum({ id: "ok", content: "x", createdAt: 1 }), { id: "x\u0000", content: Buffer.from("z"), createdAt: 1, causalParent: null, metadata: {} }]), "DGENT_BACKEND_ERROR");
      expect((await a.stats?.())?.count).toBe(0);
      expect(await a.importDatums([bad[0] as Datum])).toEqual({ stored: 1, conflicts: [] });
    } finally {
      await a.close();
    }
  });
});

describe("the binary COPY encoding", () => {
  it("frames every field so the server stores it as putMany's parameters do", async () => {
    const datums = sample(50, "enc");
    const data = copyBinary(datums, datums.map((d) => JSON.stringify(d.metadata)));
    expect(data.subarray(0, 11).toString("latin1")).toBe("PGCOPY\n\xff\r\n\0");
    expect(data.readInt16BE(data.length - 2)).toBe(-1);
    const a = postgresAdapter({ url: server.url, namespace: schema("bulk_enc"), listen: false });
    await a.open();
    try {
      await a.importDatums(datums);
      expect((await a.getMany(datums.map((d) => d.id))).map(plain)).toEqual(datums.map(plain));
      // More than one CopyData message (1 MiB each): 3 000 datums of 1 KiB.
      const big = Array.from({ length: 3000 }, (_, i) => makeDatum({ id: `big/${i}`, content: Buffer.alloc(1024, i & 0xff), createdAt: i, metadata: { i: String(i) } }));
      expect(copyBinary(big, big.map((d) => JSON.stringify(d.metadata))).length).toBeGreaterThan(2 * 2 ** 20);
      expect(await a.importDatums(big)).toEqual({ stored: 3000, conflicts: [] });
      expect((await a.getMany(big.map((d) => d.id))).map(plain)).toEqual(big.map(plain));
    } finally {
      await a.close();
    }
  });
});

describe("listeners hear imported datums as they hear putMany", () => {
  it("with a listener, each stored datum has one change-log row (held ids none); without one, no rows", async () => {
    const ns = schema("bulk_log");
    const ids = identifiers(ns, "data");
    const writer = postgresAdapter({ url: server.url, namespace: ns, listen: false });
    await writer.open();
    const logRows = async () => (await raw.query<{ op: string; id: string; origin: string }>(`SELECT op, id, origin FROM ${ids.changes} ORDER BY seq`)).rows;
    try {
      await writer.importDatums([makeDatum({ id: "quiet", content: "q", createdAt: 1 })]);
      expect(await logRows()).toEqual([]);
      const listener = createStore({ tiers: [postgresAdapter({ url: server.url, namespace: ns })] });
      listener.hooks.externalChange.tap("test", () => undefined);
      await listener.open();
      try {
        await writer.importDatums([makeDatum({ id: "quiet", content: "q", createdAt: 1 }), makeDatum({ id: "loud-1", content: "a", createdAt: 2 }), makeDatum({ id: "loud-2", content: "b", createdAt: 3 })]);
        expect(await logRows()).toEqual([
          { op: "put", id: "loud-1", origin: ORIGIN },
          { op: "put", id: "loud-2", origin: ORIGIN },
        ]);
      } finally {
        await listener.close();
      }
    } finally {
      await writer.close();
    }
  });

  it("a store in this process hears every datum another process imports", async () => {
    assertBuilt();
    const ns = schema("bulk_hear");
    const { store: listener, heard } = await putsHeard(server.url, ns);
    try {
      const child = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { postgresAdapter } = await import(${JSON.stringify(new URL("../../dist/adapters/postgres/index.js", import.meta.url).href)});
           const a = postgresAdapter({ url: process.env.URL, namespace: process.env.NS, listen: false });
           await a.open();
           const datums = Array.from({ length: 3000 }, (_, i) => ({ id: "h/" + i, content: Buffer.from("c" + i), createdAt: 1000 + i, causalParent: null, metadata: { i: String(i) } }));
           for (let i = 0; i < datums.length; i += 1000) await a.importDatums(datums.slice(i, i + 1000));
           await a.close();`,
        ],
        { env: { ...process.env, URL: server.url, NS: ns }, stdio: ["ignore", "inherit", "inherit"] },
      );
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code).toBe(0);
      await until("every imported datum heard", () => heard.size === 3000);
      expect([...heard].sort()).toEqual(Array.from({ length: 3000 }, (_, i) => `h/${i}`).sort());
    } finally {
      await listener.close();
    }
  });
});
