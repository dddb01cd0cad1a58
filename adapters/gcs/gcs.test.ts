import { randomBytes } from "node:crypto";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { RANKS } from "../ranks.js";
import { defaultRegistry } from "../../compose/catalogue.js";
import { encodeEnvelope } from "../object-store/envelope.js";
import { crc32c, startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { gcsRig } from "../../test/harness/gcs-rig.js";
import { objectStoreCases } from "../../test/harness/object-store-cases.js";
import { classifyGcsError, gcsAdapter, gcsError, statusOf, type GcsOptions, type ObjectStoreAdapter } from "./index.js";

const BUCKET = "dgent-gcs-test";
let emulator: GcsEmulator;
let raw: Storage;

beforeAll(async () => {
  emulator = await startGcsEmulator();
  emulator.createBucket(BUCKET);
  raw = new Storage({ apiEndpoint: emulator.url, projectId: "test", retryOptions: { autoRetry: false } });
});
afterAll(() => emulator?.stop());

const rig = gcsRig(() => emulator, BUCKET);
objectStoreCases(rig);

async function opened(options: Partial<GcsOptions> = {}): Promise<ObjectStoreAdapter> {
  const adapter = rig.make(options);
  await adapter.open();
  return adapter;
}

/** What the SDK rejects with, or throws if it does not. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected the SDK call to fail");
    },
    (e: unknown) => e,
  );
}

describe("gcs: the tier", () => {
  it("is registered as 'gcs' with rank RANKS.gcs and validates its options eagerly", async () => {
    const adapter = (await defaultRegistry.createAdapter("gcs", { apiEndpoint: emulator.url, projectId: "test", bucket: BUCKET, namespace: "registry" })) as ObjectStoreAdapter;
    expect(adapter.name).toBe("gcs");
    expect(adapter.rank).toBe(RANKS.gcs);
    expect(adapter.capabilities).toMatchObject({ persistent: true, multiProcess: true, nativeCausalChain: false, batch: false, scan: true, query: true, queryCost: "scan" });
    await adapter.open();
    await adapter.put(makeDatum({ id: "via-registry", content: "r" }));
    expect((await adapter.get("via-registry"))?.id).toBe("via-registry");
    await adapter.close();
    for (const bad of [{}, { bucket: "b" }, { bucket: BUCKET, apiEndpoint: "localhost:1" }, { bucket: BUCKET, chunkSize: 1000 }, { bucket: BUCKET, storage: {} }]) {
      expect(() => gcsAdapter(bad as GcsOptions), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: "DGENT_INVALID_OPTIONS" }));
    }
  });

  it("uses a Storage passed in", async () => {
    const adapter = gcsAdapter({ bucket: BUCKET, namespace: `s-${randomBytes(4).toString("hex")}`, storage: raw });
    await adapter.open();
    await adapter.put(makeDatum({ id: "own-storage", content: "s" }));
    expect(emulator.names(BUCKET, adapter.root).length).toBeGreaterThan(1);
    await adapter.close();
  });

  it("chunked resumable uploads (308 Resume Incomplete between chunks) round-trip", async () => {
    const adapter = await opened({ resumableThreshold: 0, chunkSize: 256 * 1024 });
    const content = randomBytes(1024 * 1024);
    await rig.resetRequests();
    await adapter.put(makeDatum({ id: "chunked", content }));
    const r = await rig.requests();
    expect(r["upload.resumable.init"]).toBe(1);
    expect(r["upload.resumable.put"]).toBe(5); // 1 MiB plus the envelope, in 256 KiB chunks
    expect(Buffer.from((await adapter.get("chunked"))?.content ?? []).equals(content)).toBe(true);
    await adapter.close();
  });

  it("probe is true while the emulator answers and false once it is gone", async () => {
    const own = await startGcsEmulator();
    own.createBucket("dgent-probe");
    const adapter = gcsAdapter({ apiEndpoint: own.url, projectId: "test", bucket: "dgent-probe", maxAttempts: 1 });
    await adapter.open();
    expect(await adapter.probe()).toBe(true);
    await own.stop();
    expect(await adapter.probe()).toBe(false);
    await expect(adapter.get("x")).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    await adapter.close();
  });
});

describe("gcs: a 412 in each of its three shapes", () => {
  const bucket = () => raw.bucket(BUCKET);
  const create = { preconditionOpts: { ifGenerationMatch: 0 } };

  it("multipart upload: the SDK throws ApiError with code 412; the adapter answers no-op or DGENT_CONFLICT", async () => {
    const name = `shapes/${randomBytes(4).toString("hex")}`;
    await bucket().file(name).save("first", { resumable: false, ...create });
    const err = (await failure(bucket().file(name).save("second", { resumable: false, ...create }))) as { code?: unknown };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(412);
    expect(classifyGcsError(err)).toBe("precondition");

    const adapter = await opened();
    const d = makeDatum({ id: "shape/multipart", content: "v1" });
    await adapter.put(d);
    await rig.resetRequests();
    expect(await adapter.put({ ...d, createdAt: d.createdAt + 5 })).toBe(d.id);
    await expect(adapter.put({ ...d, content: Buffer.from("v2") })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect((await rig.requests())["upload.resumable.init"]).toBeUndefined();
    await adapter.close();
  });

  it("resumable initiation: the SDK throws a GaxiosError with no numeric code and response.status 412", async () => {
    const name = `shapes/${randomBytes(4).toString("hex")}`;
    await bucket().file(name).save("first", { resumable: false });
    const err = (await failure(bucket().file(name).save("second", { resumable: true, ...create }))) as {
      code?: unknown;
      response?: { status?: unknown };
    };
    expect(typeof err.code).not.toBe("number");
    expect(err.response?.status).toBe(412);
    expect(statusOf(err)).toBe(412);
    expect(classifyGcsError(err)).toBe("precondition");

    const adapter = await opened({ resumableThreshold: 0 });
    const d = makeDatum({ id: "shape/resumable-init", content: randomBytes(2048) });
    await adapter.put(d);
    await rig.resetRequests();
    await expect(adapter.put({ ...d, content: randomBytes(2048) })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    const r = await rig.requests();
    expect(r["upload.resumable.init"]).toBe(1);
    expect(r["upload.resumable.put"]).toBeUndefined(); // refused before any byte was sent
    expect(await adapter.put({ ...d, content: Buffer.from(d.content) })).toBe(d.id);
    await adapter.close();
  });

  it("resumable finalisation: the SDK rejects with a plain {code: 412} object when the object appeared mid-upload", async () => {
    const name = `shapes/${randomBytes(4).toString("hex")}`;
    emulator.onResumableFinal = (b, n) => {
      if (n === name) emulator.putObject(b, n, Buffer.from("sneaked in"));
    };
    try {
      const err = (await failure(bucket().file(name).save(randomBytes(4096), { resumable: true, ...create }))) as { code?: unknown };
      expect(err).not.toBeInstanceOf(Error);
      expect(err.code).toBe(412);
      expect(classifyGcsError(err)).toBe("precondition");
    } finally {
      emulator.onResumableFinal = null;
    }

    // Through the adapter: a rival datum lands while our upload is in flight.
    const adapter = await opened({ resumableThreshold: 0 });
    const layout = adapter.layout as NonNullable<typeof adapter.layout>;
    const race = async (mine: Datum, theirs: Datum) => {
      emulator.onResumableFinal = (b, n) => {
        if (n !== layout.dataKey(mine.id)) return;
        // A rival writer as the tier writes: its index markers first, then its datum.
        for (const key of layout.markerKeys(theirs.id, theirs.createdAt)) emulator.putObject(b, key, Buffer.from("rival"));
        emulator.putObject(b, n, encodeEnvelope(theirs));
      };
      try {
        await rig.resetRequests();
        return await adapter.put(mine);
      } finally {
        emulator.onResumableFinal = null;
        const r = await rig.requests();
        expect(r["upload.resumable.put"]).toBe(1); // the bytes went up, the finish was refused
      }
    };
    const mine = makeDatum({ id: "shape/resumable-final", content: randomBytes(4096), createdAt: 10 });
    await expect(race(mine, { ...mine, content: Buffer.from("theirs") })).rejects.toMatchObject({ code: "DGENT_CONFLICT" });
    expect(Buffer.from((await adapter.get(mine.id))?.content ?? []).toString()).toBe("theirs");
    const same = makeDatum({ id: "shape/resumable-final-same", content: randomBytes(4096), createdAt: 20 });
    expect(await race(same, { ...same, createdAt: 15 })).toBe(same.id);
    expect((await adapter.get(same.id))?.createdAt).toBe(15);
    expect((await adapter.list({ prefix: "shape/resumable-final-same", after: -1, limit: 5 })).map((d) => d.createdAt)).toEqual([15]);
    await adapter.close();
  });
});

describe("gcs: the error map", () => {
  it("reads the status from every shape and classifies it", () => {
    const apiError = Object.assign(new Error("precondition"), { code: 412, errors: [{ reason: "conditionNotMet" }] });
    const gaxios = Object.assign(new Error("Request failed with status code 412"), { code: undefined, response: { status: 412 } });
    const gaxiosNamed = Object.assign(new Error("Request failed"), { code: "412", response: { status: 412 } });
    const plain = { code: 412, message: "At least one of the pre-conditions you specified did not hold." };
    for (const shape of [apiError, gaxios, gaxiosNamed, plain]) {
      expect(statusOf(shape)).toBe(412);
      expect(classifyGcsError(shape)).toBe("precondition");
    }
    const cases: Array<[unknown, string]> = [
      [Object.assign(new Error("No such object"), { code: 404 }), "not-found"],
      [{ response: { status: 404 } }, "not-found"],
      [Object.assign(new Error("rate"), { code: 429 }), "unavailable"],
      [Object.assign(new Error("backend"), { code: 503 }), "unavailable"],
      [{ code: 500, message: "internal" }, "unavailable"],
      [Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "unavailable"],
      [Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), "unavailable"],
      [Object.assign(new Error("crc mismatch"), { code: "CONTENT_DOWNLOAD_MISMATCH" }), "unavailable"],
      [Object.assign(new Error("aborted"), { name: "AbortError" }), "unavailable"],
      [Object.assign(new Error("network timeout at: http://x"), { name: "FetchError", type: "request-timeout" }), "unavailable"],
      [Object.assign(new Error("forbidden"), { code: 403 }), "backend"],
      [Object.assign(new Error("bad"), { code: 400 }), "backend"],
      [new Error("no status"), "backend"],
      [undefined, "backend"],
    ];
    for (const [error, cls] of cases) expect(classifyGcsError(error), String((error as Error)?.message ?? error)).toBe(cls);
  });

  it("turns failures into coded errors with the action, status and a hint", () => {
    const denied = gcsError(Object.assign(new Error("Forbidden"), { code: 403 }), "download k");
    expect(denied).toMatchObject({ code: "DGENT_BACKEND_ERROR", unit: "gcs", retryable: false, details: { status: 403 } });
    expect(denied.message).toMatch(/download k failed with HTTP 403.*permission/);
    const busy = gcsError({ code: 503, message: "busy" }, "upload k");
    expect(busy).toMatchObject({ code: "DGENT_UNAVAILABLE", retryable: true });
    expect(gcsError(busy, "again")).toBe(busy);
  });
});

describe("gcs: the emulator behaves like GCS where the tier depends on it", () => {
  it("computes CRC32C (Castagnoli) as GCS reports it", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it("lists with prefix, delimiter, offsets and page tokens in byte order", async () => {
    const p = `list/${randomBytes(4).toString("hex")}/`;
    for (const n of ["a", "b/1", "b/2", "c", "é", "\u{1F989}", "\uFFFD"]) emulator.putObject(BUCKET, p + n, Buffer.from(n));
    const [all] = await raw.bucket(BUCKET).getFiles({ prefix: p });
    expect(all.map((f) => f.name.slice(p.length))).toEqual(["a", "b/1", "b/2", "c", "é", "\uFFFD", "\u{1F989}"]);
    const pages: string[][] = [];
    let query: { pageToken?: string } | null = {};
    while (query) {
      const [files, next]: [Array<{ name: string }>, { pageToken?: string } | null] = (await raw
        .bucket(BUCKET)
        .getFiles({ prefix: p, maxResults: 3, autoPaginate: false, ...query })) as never;
      pages.push(files.map((f) => f.name.slice(p.length)));
      query = next?.pageToken ? { pageToken: next.pageToken } : null;
    }
    expect(pages).toEqual([["a", "b/1", "b/2"], ["c", "é", "\uFFFD"], ["\u{1F989}"]]);
    const [top, , response] = (await raw.bucket(BUCKET).getFiles({ prefix: p, delimiter: "/", autoPaginate: false })) as never as [
      Array<{ name: string }>,
      unknown,
      { prefixes?: string[] },
    ];
    expect(top.map((f) => f.name.slice(p.length))).toEqual(["a", "c", "é", "\uFFFD", "\u{1F989}"]);
    expect(response.prefixes).toEqual([`${p}b/`]);
    const [window] = await raw.bucket(BUCKET).getFiles({ prefix: p, startOffset: `${p}b/2`, endOffset: `${p}é` });
    expect(window.map((f) => f.name.slice(p.length))).toEqual(["b/2", "c"]);
  });

  it("serves ranges and checks the hashes the SDK sends", async () => {
    const name = `range/${randomBytes(4).toString("hex")}`;
    const data = randomBytes(5000);
    await raw.bucket(BUCKET).file(name).save(data, { resumable: true, validation: "crc32c" });
    const [part] = await raw.bucket(BUCKET).file(name).download({ start: 10, end: 19 });
    expect(part.equals(data.subarray(10, 20))).toBe(true);
    const [meta] = await raw.bucket(BUCKET).file(name).getMetadata();
    expect(meta.crc32c).toBe(Buffer.from([(crc32c(data) >>> 24) & 255, (crc32c(data) >>> 16) & 255, (crc32c(data) >>> 8) & 255, crc32c(data) & 255]).toString("base64"));
    const res = await fetch(`${emulator.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=bad-hash`, { method: "POST", body: "{}" });
    const session = res.headers.get("location") as string;
    const put = await fetch(session, { method: "PUT", body: "data", headers: { "content-range": "bytes 0-3/4", "x-goog-hash": "crc32c=AAAAAA==" } });
    expect(put.status).toBe(400);
    expect(emulator.getObject(BUCKET, "bad-hash")).toBeUndefined();
  });
});
