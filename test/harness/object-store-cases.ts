import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { isDgentError } from "../../core/errors.js";
import { DEFAULT_LIST_LIMIT, DEFAULT_MAX_CHAIN_DEPTH } from "../../core/protocol.js";
import type { ObjectStoreAdapter } from "../../adapters/object-store/adapter.js";
import { encodeEnvelope } from "../../adapters/object-store/envelope.js";
import { referenceNewestFirst } from "../../testing/support.js";
import { KeyLayout, indexedDirs } from "../../adapters/object-store/keys.js";

/**
 * Cases both object-store tiers (s3, gcs) must pass beyond the conformance kit, each run against
 * the tier's real local server through a `Rig`. Request counts are read at the server.
 */
export interface Rig {
  readonly name: "s3" | "gcs";
  /** The bucket the rig's adapters use. */
  readonly bucket: string;
  /** An unopened adapter over a fresh namespace (or the given one), with the server's address. */
  make(options?: Record<string, unknown>): ObjectStoreAdapter;
  /** Requests the server saw since the last reset, by operation. */
  requests(): Promise<Readonly<Record<string, number>>>;
  resetRequests(): Promise<void>;
  /** The server's names for the operations the cases count. */
  readonly ops: { readonly list: string; readonly read: string; readonly write: string; readonly delete: readonly string[] };
  /** Fails the next `count` requests of `op` with `status` (0: connection reset, -1: no answer). */
  fault(status: number, count: number, op?: string): Promise<void>;
  /** Writes objects straight into the server's storage (no request counted). */
  bulk(objects: readonly { key: string; body: Uint8Array }[]): Promise<void>;
  /** Writes one object over HTTP with the raw SDK. */
  rawPut(key: string, body: Uint8Array): Promise<void>;
  /** Keys under `prefix`, listed with the raw SDK. */
  rawKeys(prefix: string): Promise<string[]>;
  /** Asserts the requests of a datum above the multipart/resumable threshold went that way. */
  expectBigUpload(requests: Readonly<Record<string, number>>): void;
  /** False: the server ignores create-only preconditions (a broken service). */
  enforcePreconditions(enforced: boolean): Promise<void>;
  /** An endpoint option pointing at a port nothing listens on. */
  readonly deadEndpoint: Record<string, unknown>;
}

const bytes = (text: string) => new TextEncoder().encode(text);
const sum = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((a, b) => a + b, 0);

async function opened(rig: Rig, options?: Record<string, unknown>): Promise<ObjectStoreAdapter> {
  const adapter = rig.make(options);
  await adapter.open();
  return adapter;
}

function layoutOf(adapter: ObjectStoreAdapter): KeyLayout {
  const layout = adapter.layout;
  if (!layout) throw new Error("adapter not open");
  return layout;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<Error & { code: string; retryable: boolean }> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code}, but the call succeeded`);
    },
    (e: unknown) => e,
  );
  expect(isDgentError(error), String(error)).toBe(true);
  expect((error as { code: string }).code, (error as Error).message).toBe(code);
  return error as Error & { code: string; retryable: boolean };
}

export function objectStoreCases(rig: Rig): void {
  describe(`${rig.name}: the append-only law under races`, () => {
    it("ten writers on ten separate clients race for one id: one wins, nine get DGENT_CONFLICT, one marker per directory", async () => {
      const first = await opened(rig);
      const writers = [first, ...(await Promise.all(Array.from({ length: 9 }, () => opened(rig, { namespace: nsOf(first) }))))];
      const id = "race/contested";
      const rivals = writers.map((_, i) => makeDatum({ id, content: `rival ${i}`, createdAt: 1000 + i }));
      const settled = await Promise.allSettled(writers.map((w, i) => w.put(rivals[i] as Datum)));
      const won = settled.flatMap((s, i) => (s.status === "fulfilled" ? [i] : []));
      expect(won).toHaveLength(1);
      for (const s of settled) if (s.status === "rejected") expect((s.reason as { code: string }).code).toBe("DGENT_CONFLICT");
      const winner = rivals[won[0] as number] as Datum;
      const stored = await first.get(id);
      expect(Buffer.from(stored?.content ?? []).toString()).toBe(`rival ${won[0]}`);
      expect(stored?.createdAt).toBe(winner.createdAt);
      expect((await first.list({ prefix: "", after: -1, limit: 100 })).map((d) => d.id)).toEqual([id]);
      // Losers took back their markers (they pointed at other times): one per indexed directory.
      const layout = layoutOf(first);
      for (const dir of indexedDirs(id, layout.indexDepth)) expect(await rig.rawKeys(layout.dirPrefix(dir))).toHaveLength(1);
      await Promise.all(writers.map((w) => w.close()));
    });

    it("ten identical puts from ten clients all succeed, store one datum and keep one createdAt", async () => {
      const first = await opened(rig);
      const writers = [first, ...(await Promise.all(Array.from({ length: 9 }, () => opened(rig, { namespace: nsOf(first) }))))];
      const copies = writers.map((_, i) => makeDatum({ id: "same", content: "one value", createdAt: 5000 + i, metadata: { k: "v" } }));
      const ids = await Promise.all(writers.map((w, i) => w.put(copies[i] as Datum)));
      expect(ids).toEqual(copies.map(() => "same"));
      const listed = await first.list({ prefix: "", after: -1, limit: 100 });
      expect(listed).toHaveLength(1);
      expect(copies.map((c) => c.createdAt)).toContain(listed[0]?.createdAt);
      expect(await rig.rawKeys(layoutOf(first).dirPrefix(""))).toHaveLength(1);
      await Promise.all(writers.map((w) => w.close()));
    });
  });

  describe(`${rig.name}: large contents`, () => {
    it("a 20 MB datum round-trips through the large-upload path; an identical re-put is a no-op and a different one conflicts", async () => {
      const adapter = await opened(rig);
      const content = new Uint8Array(20 * 1000 * 1000);
      for (let i = 0; i < content.length; i += 4096) content.set(randomBytes(Math.min(4096, content.length - i)), i);
      const big = makeDatum({ id: "big/one", content, metadata: { kind: "blob" } });
      await rig.resetRequests();
      await adapter.put(big);
      rig.expectBigUpload(await rig.requests());
      const back = await adapter.get(big.id);
      expect(back?.content.byteLength).toBe(content.byteLength);
      expect(Buffer.from(back?.content ?? []).equals(Buffer.from(content))).toBe(true);
      expect(back?.metadata).toEqual({ kind: "blob" });
      expect(await adapter.put({ ...big, content: content.slice(), createdAt: big.createdAt + 1 })).toBe(big.id);
      const other = content.slice();
      other[other.length - 1] = (other[other.length - 1] as number) ^ 0xff;
      await expectCode(adapter.put({ ...big, content: other }), "DGENT_CONFLICT");
      expect(Buffer.from((await adapter.get(big.id))?.content ?? []).equals(Buffer.from(content))).toBe(true);
      await adapter.close();
    });

    it("metadata far beyond the service's header limits (S3 2 KB, GCS 8 KiB) round-trips: the envelope is in the body", async () => {
      const adapter = await opened(rig);
      const metadata: Record<string, string> = { long: "ü".repeat(40_000) };
      for (let i = 0; i < 500; i++) metadata[`tag-${i}`] = `value ${i} ${"x".repeat(50)}`;
      const d = makeDatum({ id: "meta/heavy", content: "small", causalParent: "meta/parent", metadata });
      await adapter.put(d);
      const back = await adapter.get(d.id);
      expect(back?.metadata).toEqual(metadata);
      expect(back?.causalParent).toBe("meta/parent");
      await adapter.close();
    });
  });

  describe(`${rig.name}: requests per operation, counted at the server`, () => {
    it("get is one read; put is one write per indexed directory plus the create; list reads one page", async () => {
      const adapter = await opened(rig);
      const d = makeDatum({ id: "a/b/c", content: "x", createdAt: 10 });
      await rig.resetRequests();
      await adapter.put(d);
      let r = await rig.requests();
      expect(r[rig.ops.write]).toBe(indexedDirs(d.id, layoutOf(adapter).indexDepth).length + 1);
      expect(sum(r)).toBe(r[rig.ops.write]);
      await rig.resetRequests();
      await adapter.get(d.id);
      r = await rig.requests();
      expect(r).toEqual({ [rig.ops.read]: 1 });
      await rig.resetRequests();
      expect((await adapter.list({ prefix: "a/b/", after: -1, limit: 10 })).map((x) => x.id)).toEqual([d.id]);
      r = await rig.requests();
      expect(r).toEqual({ [rig.ops.list]: 1, [rig.ops.read]: 1 });
      await rig.resetRequests();
      expect(await adapter.delete(d.id)).toBe(true);
      r = await rig.requests();
      expect(Object.keys(r).sort()).toEqual([...rig.ops.delete].sort());
      await adapter.close();
    });
  });

  describe(`${rig.name}: the index stays consistent when a writer dies half way`, () => {
    it("markers without their datum (a writer died before the create) are skipped, then repaired after the grace", async () => {
      const adapter = await opened(rig);
      const layout = layoutOf(adapter);
      const kept = makeDatum({ id: "w/kept", content: "k", createdAt: 100 });
      await adapter.put(kept);
      const orphan = makeDatum({ id: "w/orphan", content: "never written", createdAt: 200 });
      for (const key of layout.markerKeys(orphan.id, orphan.createdAt)) await rig.rawPut(key, bytes("nonce"));
      expect((await adapter.list({ prefix: "w/", after: -1, limit: 10 })).map((d) => d.id)).toEqual([kept.id]);
      expect(await adapter.get(orphan.id)).toBeNull();
      // Within the grace (default 15 min) a marker may belong to a put in flight: it stays.
      const orphanMarkers = layout.markerKeys(orphan.id, orphan.createdAt);
      expect(await rig.rawKeys(layout.dirPrefix("w/"))).toEqual(expect.arrayContaining([orphanMarkers[1]]));
      const repairer = await opened(rig, { namespace: nsOf(adapter), repairAfterMs: 0 });
      expect((await repairer.list({ prefix: "w/", after: -1, limit: 10 })).map((d) => d.id)).toEqual([kept.id]);
      expect((await repairer.list({ prefix: "", after: -1, limit: 10 })).map((d) => d.id)).toEqual([kept.id]);
      for (const dir of ["", "w/"]) expect(await rig.rawKeys(layout.dirPrefix(dir))).toEqual(layout.markerKeys(kept.id, kept.createdAt).filter((k) => k.startsWith(layout.dirPrefix(dir))));
      // The id is free: the writer's retry (or anyone) can still store it, and it is listed.
      await adapter.put(orphan);
      expect((await adapter.list({ prefix: "w/", after: -1, limit: 10 })).map((d) => d.id)).toEqual([orphan.id, kept.id]);
      await Promise.all([adapter.close(), repairer.close()]);
    });

    it("a stale marker (another createdAt) never shows a datum twice or at the wrong time", async () => {
      const adapter = await opened(rig);
      const layout = layoutOf(adapter);
      const a = makeDatum({ id: "s/a", content: "a", createdAt: 100 });
      const b = makeDatum({ id: "s/b", content: "b", createdAt: 150 });
      await adapter.put(a);
      await adapter.put(b);
      for (const key of layout.markerKeys(a.id, 999)) await rig.rawPut(key, bytes("stale"));
      const listed = await adapter.list({ prefix: "s/", after: -1, limit: 10 });
      expect(listed.map((d) => [d.id, d.createdAt])).toEqual([
        [b.id, 150],
        [a.id, 100],
      ]);
      expect((await adapter.list({ prefix: "s/", after: 120, limit: 10 })).map((d) => d.id)).toEqual([b.id]);
      expect((await adapter.list({ prefix: "s/", after: -1, limit: 1 })).map((d) => d.id)).toEqual([b.id]);
      await adapter.close();
    });

    it("delete removes the datum and leaves its markers for list to skip; a re-put is listed again", async () => {
      const adapter = await opened(rig);
      const layout = layoutOf(adapter);
      const d = makeDatum({ id: "del/x", content: "x", createdAt: 300 });
      await adapter.put(d);
      expect(await adapter.delete(d.id)).toBe(true);
      expect(await adapter.delete(d.id)).toBe(false);
      expect(await adapter.list({ prefix: "del/", after: -1, limit: 10 })).toEqual([]);
      expect(await rig.rawKeys(layout.dirPrefix("del/"))).toHaveLength(1);
      await adapter.put(d);
      expect((await adapter.list({ prefix: "del/", after: -1, limit: 10 })).map((x) => x.id)).toEqual([d.id]);
      await adapter.close();
    });
  });

  describe(`${rig.name}: errors are mapped once, and only retryable ones are retried`, () => {
    it("503 and 429 on writes are retried with backoff until the write lands", async () => {
      const adapter = await opened(rig, { retryBaseDelayMs: 1 });
      const d = makeDatum({ id: "retry/w", content: "w" });
      await rig.resetRequests();
      await rig.fault(503, 2, rig.ops.write);
      await rig.fault(429, 1, rig.ops.write);
      await adapter.put(d);
      const writes = (await rig.requests())[rig.ops.write];
      expect(writes).toBe(indexedDirs(d.id, layoutOf(adapter).indexDepth).length + 1 + 3);
      expect((await adapter.get(d.id))?.id).toBe(d.id);
      await adapter.close();
    });

    it("a reset connection is retried; persistent 5xx ends as DGENT_UNAVAILABLE (retryable) after maxAttempts", async () => {
      const adapter = await opened(rig, { retryBaseDelayMs: 1, maxAttempts: 3 });
      const d = makeDatum({ id: "retry/r", content: "r" });
      await adapter.put(d);
      await rig.resetRequests();
      await rig.fault(0, 1, rig.ops.read);
      expect((await adapter.get(d.id))?.id).toBe(d.id);
      expect((await rig.requests())[rig.ops.read]).toBe(2);
      await rig.resetRequests();
      await rig.fault(500, 3, rig.ops.read);
      const err = await expectCode(adapter.get(d.id), "DGENT_UNAVAILABLE");
      expect(err.retryable).toBe(true);
      expect(err.message).toContain("500");
      expect((await rig.requests())[rig.ops.read]).toBe(3);
      await adapter.close();
    });

    it("a request the server never answers is abandoned after requestTimeoutMs and retried", async () => {
      // The timeout is a real one, so it is far above what an answered request takes on a loaded
      // machine; a retry that still ran late would be retried again (hence "at least two").
      const adapter = await opened(rig, { retryBaseDelayMs: 1, requestTimeoutMs: 1_000 });
      const d = makeDatum({ id: "retry/hang", content: "h" });
      await adapter.put(d);
      await rig.resetRequests();
      await rig.fault(-1, 1, rig.ops.read);
      const started = performance.now();
      expect((await adapter.get(d.id))?.id).toBe(d.id);
      expect(performance.now() - started).toBeGreaterThanOrEqual(950); // the hung request was waited for, then abandoned
      expect((await rig.requests())[rig.ops.read]).toBeGreaterThanOrEqual(2);
      await adapter.close();
    });

    it("403 is DGENT_BACKEND_ERROR and is not retried", async () => {
      const adapter = await opened(rig, { retryBaseDelayMs: 1 });
      await rig.resetRequests();
      await rig.fault(403, 1, rig.ops.read);
      const err = await expectCode(adapter.get("anything"), "DGENT_BACKEND_ERROR");
      expect(err.retryable).toBe(false);
      expect((err as unknown as { unit: string }).unit).toBe(rig.name);
      expect((await rig.requests())[rig.ops.read]).toBe(1);
      await adapter.close();
    });

    it("an endpoint nobody listens on is DGENT_UNAVAILABLE at open", async () => {
      const adapter = rig.make({ ...rig.deadEndpoint, retryBaseDelayMs: 1, maxAttempts: 2 });
      const err = await expectCode(adapter.open(), "DGENT_UNAVAILABLE");
      expect(err.retryable).toBe(true);
      expect(await adapter.probe()).toBe(false);
    });

    it("a missing bucket fails open with DGENT_BACKEND_ERROR; createBucket: true creates it", async () => {
      const bucket = `dgent-missing-${randomBytes(4).toString("hex")}`;
      const err = await expectCode(rig.make({ bucket }).open(), "DGENT_BACKEND_ERROR");
      expect(err.message).toContain("createBucket");
      const adapter = rig.make({ bucket, createBucket: true });
      await adapter.open();
      await adapter.put(makeDatum({ id: "in-new-bucket", content: "y" }));
      expect((await adapter.get("in-new-bucket"))?.id).toBe("in-new-bucket");
      expect(await adapter.probe()).toBe(true);
      await adapter.close();
    });

    it("a service that ignores create-only preconditions is refused at open, before anything is written", async () => {
      const adapter = rig.make();
      await rig.enforcePreconditions(false);
      try {
        const err = await expectCode(adapter.open(), "DGENT_BACKEND_ERROR");
        expect(err.message).toMatch(/ignores create-only preconditions/);
        expect(await rig.rawKeys(adapter.root)).toEqual([`${adapter.root}dgent.json`]);
      } finally {
        await rig.enforcePreconditions(true);
      }
      const again = rig.make({ namespace: nsOf(adapter) });
      await again.open();
      await again.close();
    });

    it("an object that is not a datum is DGENT_BACKEND_ERROR, never returned as data", async () => {
      const adapter = await opened(rig);
      await rig.rawPut(layoutOf(adapter).dataKey("junk"), bytes("not an envelope"));
      const err = await expectCode(adapter.get("junk"), "DGENT_BACKEND_ERROR");
      expect(err.message).toContain("not a dgent datum");
      await adapter.close();
    });
  });

  describe(`${rig.name}: namespace, manifest and keys`, () => {
    it("the manifest fixes indexDepth; another value is refused, a newer layout is DGENT_SCHEMA_TOO_NEW", async () => {
      const adapter = await opened(rig, { indexDepth: 1 });
      expect(adapter.layout?.indexDepth).toBe(1);
      await adapter.put(makeDatum({ id: "x/y/z", content: "deep" }));
      const again = await opened(rig, { namespace: nsOf(adapter) });
      expect(again.layout?.indexDepth).toBe(1);
      expect((await again.list({ prefix: "x/y/", after: -1, limit: 5 })).map((d) => d.id)).toEqual(["x/y/z"]);
      const err = await expectCode(rig.make({ namespace: nsOf(adapter), indexDepth: 2 }).open(), "DGENT_INVALID_OPTIONS");
      expect(err.message).toContain("indexDepth 1");
      const future = rig.make();
      await rig.rawPut(`${future.root}dgent.json`, bytes(JSON.stringify({ format: "dgent-object-store", layout: 99, indexDepth: 3 })));
      await expectCode(future.open(), "DGENT_SCHEMA_TOO_NEW");
      await Promise.all([adapter.close(), again.close()]);
    });

    it("ids that would be unsafe as keys ('..', '//', './', trailing '/') are distinct datums", async () => {
      const adapter = await opened(rig);
      const ids = ["u/../v", "u/v", "u//v", "./u", "u/", "u", ".", "..", "u/./v"];
      for (const [i, id] of ids.entries()) await adapter.put(makeDatum({ id, content: `c${i}`, createdAt: i }));
      for (const [i, id] of ids.entries()) expect(Buffer.from((await adapter.get(id))?.content ?? []).toString()).toBe(`c${i}`);
      expect((await adapter.list({ prefix: "u/", after: -1, limit: 20 })).map((d) => d.id)).toEqual(["u/./v", "u/", "u//v", "u/v", "u/../v"]);
      expect((await adapter.stats()).count).toBe(ids.length);
      await adapter.close();
    });

    it("namespaces in one bucket do not see each other", async () => {
      const a = await opened(rig);
      const b = await opened(rig);
      await a.put(makeDatum({ id: "shared-id", content: "in a" }));
      await b.put(makeDatum({ id: "shared-id", content: "in b" }));
      expect(Buffer.from((await a.get("shared-id"))?.content ?? []).toString()).toBe("in a");
      expect(Buffer.from((await b.get("shared-id"))?.content ?? []).toString()).toBe("in b");
      expect(a.root).not.toBe(b.root);
      await Promise.all([a.close(), b.close()]);
    });
  });
}

/**
 * `list` and `causalChain` at bounded cost on a namespace of `total` datums (10 000 by default),
 * written straight into the server's storage: the requests each call makes are counted at the
 * server and must not grow with the bucket.
 */
export function listCostCases(rig: Rig, total = 10_000): void {
  describe(`${rig.name}: list and causalChain read a bounded number of objects`, () => {
    it(`on ${total} datums, list, a prefix list, an after-list and a 40-deep chain each cost about one request per result`, async () => {
      const adapter = await opened(rig);
      const layout = layoutOf(adapter);
      const datums: Datum[] = [];
      let parent: string | null = null;
      for (let i = 0; i < total; i++) {
        // 50 datums of agent-7 spread over time, a 40-long causal chain among the newest noise.
        const agent = i % 200 === 0;
        const chained = i >= total - 40;
        const id = agent ? `agent-7/${String(i).padStart(6, "0")}` : chained ? `chain/${i}` : `noise/${i}`;
        const d = makeDatum({ id, content: `datum ${i}`, createdAt: 1_000_000 + i, causalParent: chained ? parent : null, metadata: { i: String(i) } });
        if (chained) parent = id;
        datums.push(d);
      }
      const objects: { key: string; body: Uint8Array }[] = [];
      for (const d of datums) {
        objects.push({ key: layout.dataKey(d.id), body: encodeEnvelope(d) });
        for (const key of layout.markerKeys(d.id, d.createdAt)) objects.push({ key, body: bytes("bulk") });
      }
      let t = performance.now();
      await rig.bulk(objects);
      console.log(`${rig.name}: wrote ${objects.length} objects for ${total} datums in ${Math.round(performance.now() - t)} ms`);
      t = performance.now();
      const newest = [...datums].sort(referenceNewestFirst);

      const cost = async (call: () => Promise<Datum[]>, expected: Datum[]) => {
        await rig.resetRequests();
        const got = await call();
        expect(got.map((d) => d.id)).toEqual(expected.map((d) => d.id));
        return rig.requests();
      };

      // The newest 20 of everything: one listing page, one GET per result.
      let r = await cost(() => adapter.list({ prefix: "", after: -1, limit: 20 }), newest.slice(0, 20));
      expect(r[rig.ops.list]).toBe(1);
      expect(r[rig.ops.read]).toBe(20);

      // The default limit of 100.
      r = await cost(() => adapter.list({ prefix: "", after: -1, limit: DEFAULT_LIST_LIMIT }), newest.slice(0, 100));
      expect(r[rig.ops.list]).toBe(1);
      expect(r[rig.ops.read]).toBe(100);

      // One agent's 50 datums among 10 000: its own directory index.
      const agent = newest.filter((d) => d.id.startsWith("agent-7/"));
      expect(agent).toHaveLength(Math.ceil(total / 200));
      r = await cost(() => adapter.list({ prefix: "agent-7/", after: -1, limit: 100 }), agent);
      expect(r[rig.ops.list]).toBe(1);
      expect(r[rig.ops.read]).toBe(agent.length);

      // A prefix inside a directory: markers are filtered by name, only matches are read.
      const sub = agent.filter((d) => d.id.startsWith("agent-7/001"));
      expect(sub.length).toBeGreaterThan(0);
      r = await cost(() => adapter.list({ prefix: "agent-7/001", after: -1, limit: 100 }), sub);
      expect(r[rig.ops.list]).toBe(1);
      expect(r[rig.ops.read]).toBe(sub.length);

      // after: the walk stops at the first older marker.
      const recent = newest.filter((d) => d.id.startsWith("noise/") && d.createdAt > 1_000_000 + total - 300);
      r = await cost(() => adapter.list({ prefix: "noise/", after: 1_000_000 + total - 300, limit: 1000 }), recent);
      expect(r[rig.ops.list]).toBe(1);
      expect(r[rig.ops.read]).toBe(recent.length);

      // The chain: one GET per link, no listing.
      await rig.resetRequests();
      const chain = await adapter.causalChain(parent as string, DEFAULT_MAX_CHAIN_DEPTH);
      expect(chain).toHaveLength(40);
      expect(chain[0]?.causalParent).toBeNull();
      r = await rig.requests();
      expect(r).toEqual({ [rig.ops.read]: 40 });
      console.log(`${rig.name}: the bounded calls took ${Math.round(performance.now() - t)} ms`);
      await adapter.close();
    });
  });
}

function nsOf(adapter: ObjectStoreAdapter): string {
  const parts = adapter.root.split("/");
  return parts[parts.length - 2] as string;
}
