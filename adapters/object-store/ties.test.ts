import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeDatum, type Datum } from "../../core/datum.js";
import { startGcsEmulator, type GcsEmulator } from "../../test/harness/gcs-emulator.js";
import { gcsRig } from "../../test/harness/gcs-rig.js";
import type { Rig } from "../../test/harness/object-store-cases.js";
import { s3Rig } from "../../test/harness/s3-rig.js";
import { startS3, type S3Server } from "../../test/harness/s3.js";
import type { ObjectStoreAdapter } from "./adapter.js";
import { encodeEnvelope } from "./envelope.js";
import { rng } from "../../testing/support.js";
import { referenceNewestFirst } from "../../test/references.js";
import { sha256Hex, timeKey, type KeyLayout } from "./keys.js";

// `list` when many datums share one createdAt (a putMany of datums made in one millisecond):
// the markers of a time sort by id ascending, the list wants id descending. The boundary's group
// is listed by name and read from the highest id down, so a list costs GETs for its results (and
// for garbage and hashed markers), not for the whole group. Objects are written straight into the
// servers' storage; requests are counted at the server.

const T = 1_700_000_000_000;
const bytes = (text: string) => new TextEncoder().encode(text);
const long = (tag: string) => `tie/${tag}${"x".repeat(120)}`; // over 100 bytes: a hashed marker

interface Plan {
  /** Datums stored with all their markers. */
  readonly datums: readonly Datum[];
  /** Datums whose markers exist but whose object does not (deleted, or a writer that died). */
  readonly missing?: readonly Datum[];
  /** Markers at another createdAt than their datum's (a writer that lost a race). */
  readonly misdated?: readonly { datum: Datum; at: number }[];
  /** Datums with a second, hashed marker at the same time (a stale duplicate). */
  readonly doubled?: readonly Datum[];
}

async function write(rig: Rig, layout: KeyLayout, plan: Plan): Promise<void> {
  const objects: { key: string; body: Uint8Array }[] = [];
  const markers = (d: Datum, at = d.createdAt) => {
    for (const key of layout.markerKeys(d.id, at)) objects.push({ key, body: bytes("bulk") });
  };
  for (const d of plan.datums) {
    objects.push({ key: layout.dataKey(d.id), body: encodeEnvelope(d) });
    markers(d);
  }
  for (const d of plan.missing ?? []) markers(d);
  for (const { datum, at } of plan.misdated ?? []) markers(datum, at);
  for (const d of plan.doubled ?? []) {
    for (const key of layout.markerKeys(d.id, d.createdAt)) {
      const dir = key.slice(0, key.lastIndexOf("/") + 1);
      objects.push({ key: `${dir}${timeKey(d.createdAt)}~${sha256Hex(d.id)}`, body: bytes("bulk") });
    }
  }
  await rig.bulk(objects);
}

/** What list must return: the stored datums that match, newest first, ties by id descending. */
function expected(datums: readonly Datum[], prefix: string, after: number, limit: number): string[] {
  return datums
    .filter((d) => d.id.startsWith(prefix) && d.createdAt > after)
    .sort(referenceNewestFirst)
    .slice(0, limit)
    .map((d) => d.id);
}

function tieCases(rig: () => Rig): void {
  let adapter: ObjectStoreAdapter;
  const open = async (plan: Plan): Promise<ObjectStoreAdapter> => {
    adapter = rig().make();
    await adapter.open();
    await write(rig(), adapter.layout as KeyLayout, plan);
    return adapter;
  };
  const cost = async (limit: number, prefix = "", after = -1) => {
    await rig().resetRequests();
    const got = await adapter.list({ prefix, after, limit });
    const r = await rig().requests();
    return { ids: got.map((d) => d.id), list: r[rig().ops.list] ?? 0, read: r[rig().ops.read] ?? 0, total: Object.values(r).reduce((a, b) => a + b, 0) };
  };
  afterAll(() => adapter?.close());

  it("list(100) over 300 datums of one millisecond reads 100 datums, not 300", async () => {
    const tied = Array.from({ length: 300 }, (_, i) => makeDatum({ id: `tie/${String(i).padStart(3, "0")}`, content: `d${i}`, createdAt: T }));
    await open({ datums: tied });
    const r = await cost(100);
    expect(r.ids).toEqual(expected(tied, "", -1, 100));
    expect(r.ids[0]).toBe("tie/299");
    // The group is listed to its end (a page of 101, then one of up to 1000), read from the top.
    expect(r.list).toBe(2);
    expect(r.read).toBe(100);
    expect(r.total).toBe(102);
    // The same through the directory index, and a small limit.
    const d = await cost(10, "tie/");
    expect(d.ids).toEqual(expected(tied, "tie/", -1, 10));
    expect(d.read).toBe(10);
    expect(d.list).toBe(2);
    await adapter.close();
  });

  it("newer datums, then the boundary's group: only the group's top ids are read", async () => {
    const newer = Array.from({ length: 40 }, (_, i) => makeDatum({ id: `new/${i}`, content: "n", createdAt: T + 1 + i }));
    const tied = Array.from({ length: 300 }, (_, i) => makeDatum({ id: `tie/${String(i).padStart(3, "0")}`, content: `d${i}`, createdAt: T }));
    const older = Array.from({ length: 20 }, (_, i) => makeDatum({ id: `old/${i}`, content: "o", createdAt: T - 1 - i }));
    const all = [...newer, ...tied, ...older];
    await open({ datums: all });
    let r = await cost(100);
    expect(r.ids).toEqual(expected(all, "", -1, 100));
    expect(r.read).toBe(100);
    expect(r.list).toBe(2);
    // A limit that ends exactly before the group: nothing of it is listed beyond its first marker.
    r = await cost(40);
    expect(r.ids).toEqual(expected(all, "", -1, 40));
    expect(r).toMatchObject({ read: 40, list: 1 });
    // Past the group: all of it, then the older ones.
    r = await cost(350);
    expect(r.ids).toEqual(expected(all, "", -1, 350));
    expect(r.read).toBe(350);
    // after cuts the walk as before.
    r = await cost(1000, "", T - 5);
    expect(r.ids).toEqual(expected(all, "", T - 5, 1000));
    expect(r.read).toBe(344);
    await adapter.close();
  });

  it("garbage and hashed markers in the group are read as well, and results stay exact", async () => {
    const tied = Array.from({ length: 200 }, (_, i) => makeDatum({ id: `tie/${String(i).padStart(3, "0")}`, content: `d${i}`, createdAt: T }));
    // Long ids sorting above and below every short one: their markers name a hash, not the id.
    const hashed = ["~a", "~b", "~c", "0a", "0b"].map((tag) => makeDatum({ id: long(tag), content: tag, createdAt: T }));
    const gone = ["tie/500", "tie/501", "tie/502"].map((id) => makeDatum({ id, content: "gone", createdAt: T }));
    const moved = makeDatum({ id: "tie/600", content: "moved", createdAt: T - 1 });
    const datums = [...tied, ...hashed, moved];
    await open({ datums, missing: gone, misdated: [{ datum: moved, at: T }], doubled: [tied[199] as Datum, tied[198] as Datum] });
    const r = await cost(100);
    expect(r.ids).toEqual(expected(datums, "", -1, 100));
    expect(r.ids.slice(0, 4)).toEqual([long("~c"), long("~b"), long("~a"), "tie/199"]);
    // 5 hashed + 2 hashed duplicates + 3 missing + 1 misdated, then the top 97 short ids.
    expect(r.read).toBe(5 + 2 + 3 + 1 + 97);
    expect(r.list).toBe(2);
    await adapter.close();
  });

  it("random groups of ties, garbage and prefixes: the same results as sorting everything", async () => {
    for (let seed = 1; seed <= 2; seed++) {
      const rand = rng(seed);
      const pick = <X>(xs: readonly X[]): X => xs[Math.floor(rand() * xs.length)] as X;
      const times = Array.from({ length: 6 }, (_, i) => T + i * 10);
      const dirs = ["a/", "a/x/", "a/y/", "b/", ""];
      const datums: Datum[] = [];
      const missing: Datum[] = [];
      const misdated: { datum: Datum; at: number }[] = [];
      const doubled: Datum[] = [];
      for (let i = 0; i < 250; i++) {
        const tail = rand() < 0.05 ? `${i}${"L".repeat(110)}` : `${Math.floor(rand() * 1e6).toString(36)}-${i}`;
        const d = makeDatum({ id: `${pick(dirs)}${tail}`, content: `c${i}`, createdAt: pick(times) });
        const fate = rand();
        if (fate < 0.05) missing.push(d);
        else if (fate < 0.08) {
          datums.push(d);
          misdated.push({ datum: d, at: pick(times.filter((t) => t !== d.createdAt)) });
        } else {
          datums.push(d);
          if (fate > 0.97) doubled.push(d);
        }
      }
      await open({ datums, missing, misdated, doubled });
      for (const limit of [1, 7, 30, 100, 300]) {
        for (const prefix of ["", "a/", "a/x/", "a/x/1", "b", "zz"]) {
          const after = pick([-1, -1, T + 15, T + 40]);
          const got = await adapter.list({ prefix, after, limit });
          expect(got.map((d) => d.id), `seed ${seed}, limit ${limit}, prefix ${JSON.stringify(prefix)}, after ${after}`).toEqual(
            expected(datums, prefix, after, limit),
          );
        }
      }
      await adapter.close();
    }
  }, 300_000);
}

describe("s3: list over ties in createdAt", () => {
  let server: S3Server;
  const BUCKET = "dgent-s3-ties";
  beforeAll(async () => {
    server = await startS3();
    await server.createBucket(BUCKET);
  });
  const rig = s3Rig(() => server, BUCKET);
  afterAll(async () => {
    rig.close();
    await server?.stop();
  });
  tieCases(() => rig);
});

describe("gcs: list over ties in createdAt", () => {
  let emulator: GcsEmulator;
  const BUCKET = "dgent-gcs-ties";
  beforeAll(async () => {
    emulator = await startGcsEmulator();
    emulator.createBucket(BUCKET);
  });
  const rig = gcsRig(() => emulator, BUCKET);
  afterAll(() => emulator?.stop());
  tieCases(() => rig);
});
