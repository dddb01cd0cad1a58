import { closeSync, constants, fdatasync, fdatasyncSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { sameValue, type Datum } from "../../core/datum.js";
import { jsonlAdapter, type Durability } from "../../adapters/jsonl/index.js";
import type { Contender, TierSetup } from "../contender.js";
import { isSkipped, unstorageFs } from "../peers.js";
import { CONTENT_BYTES } from "../workload.js";
import { dgentContender } from "./dgent.js";
import { dgentRefOps, measureRefs, type RefOps } from "./refs.js";

interface Entry {
  readonly id: string;
  readonly offset: number;
  readonly length: number;
  readonly parent: string | null;
}

/**
 * The raw baseline of the JSONL tier: one file opened `O_APPEND`, a JSON line per datum (content
 * base64), a `Map` of offsets and an array in time order; `get` is one `pread` + `JSON.parse` +
 * base64 decode; a durable put is `write` + `fdatasync`, a batch one `write` + one `fdatasync`.
 * Synchronous. No lock, no record version, no torn-tail framing: what dgent adds on top.
 */
export class RawJsonl {
  readonly #fd: number;
  readonly #sync: boolean;
  readonly #index = new Map<string, Entry>();
  readonly #byTime: Entry[] = [];
  #size = 0;
  #buf = Buffer.allocUnsafe(16 * 1024);

  constructor(path: string, sync: boolean) {
    this.#fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
    this.#sync = sync;
  }

  #line(d: Datum): string {
    const c = d.content;
    return `${JSON.stringify({ id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata, content: Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("base64") })}\n`;
  }

  #append(ds: readonly Datum[]): void {
    const fresh: Datum[] = [];
    for (const d of ds) {
      const prior = this.#index.get(d.id);
      if (prior === undefined) fresh.push(d);
      else if (!sameValue(this.#read(prior), d)) throw new Error(`conflict on ${d.id}`);
    }
    if (fresh.length === 0) return;
    const lines = fresh.map((d) => this.#line(d));
    const buf = Buffer.from(lines.length === 1 ? (lines[0] as string) : lines.join(""), "utf8");
    let done = 0;
    while (done < buf.length) done += writeSync(this.#fd, buf, done, buf.length - done);
    if (this.#sync) fdatasyncSync(this.#fd);
    let offset = this.#size;
    for (let i = 0; i < fresh.length; i++) {
      const d = fresh[i] as Datum;
      const length = Buffer.byteLength(lines[i] as string) - 1;
      const e = { id: d.id, offset, length, parent: d.causalParent };
      this.#index.set(d.id, e);
      this.#byTime.push(e);
      offset += length + 1;
    }
    this.#size = offset;
  }

  #read(e: Entry): Datum {
    if (e.length > this.#buf.length) this.#buf = Buffer.allocUnsafe(e.length);
    readSync(this.#fd, this.#buf, 0, e.length, e.offset);
    const r = JSON.parse(this.#buf.toString("utf8", 0, e.length)) as { id: string; createdAt: number; causalParent: string | null; metadata: Record<string, string>; content: string };
    return { id: r.id, content: Buffer.from(r.content, "base64"), createdAt: r.createdAt, causalParent: r.causalParent, metadata: r.metadata };
  }

  put(d: Datum): string {
    this.#append([d]);
    return d.id;
  }

  putMany(ds: readonly Datum[]): string[] {
    this.#append(ds);
    return ds.map((d) => d.id);
  }

  get(id: string): Datum | null {
    const e = this.#index.get(id);
    return e === undefined ? null : this.#read(e);
  }

  list(limit: number): Datum[] {
    const out: Datum[] = [];
    for (let i = this.#byTime.length - 1; i >= 0 && out.length < limit; i--) out.push(this.#read(this.#byTime[i] as Entry));
    return out;
  }

  chain(id: string): Datum[] {
    const out: Datum[] = [];
    let e = this.#index.get(id);
    while (e !== undefined && out.length <= 10_000) {
      out.push(this.#read(e));
      e = e.parent === null ? undefined : this.#index.get(e.parent);
    }
    return out.reverse();
  }

  readonly #refs = new Map<string, { target: string; version: number }>();

  /**
   * Refs by hand: a `Map` of name → version and a JSON line per move. A compare-and-set checks the
   * version, appends the line (+ fdatasync when durable) and updates the map; a 3-op transaction
   * checks both puts and the version, then appends the three lines in one write (+ one fdatasync).
   * No reflog in memory, no frame, no record version: what dgent adds on top.
   */
  refs(target: string): RefOps[] {
    for (const name of ["bench/cas", "bench/tx"]) this.#refs.set(name, { target, version: 1 });
    const move = (name: string, to: string, datums: readonly Datum[]) => {
      const now = this.#refs.get(name);
      if (now === undefined) throw new Error(`${name}: compare-and-set failed`);
      const expect = now.version;
      for (const d of datums) if (this.#index.has(d.id)) throw new Error(`conflict on ${d.id}`);
      const lines = datums.map((d) => this.#line(d));
      lines.push(`${JSON.stringify({ ref: name, from: now.target, to, version: expect + 1, at: Date.now() })}\n`);
      const buf = Buffer.from(lines.join(""), "utf8");
      let done = 0;
      while (done < buf.length) done += writeSync(this.#fd, buf, done, buf.length - done);
      if (this.#sync) fdatasyncSync(this.#fd);
      let offset = this.#size;
      for (const [i, d] of datums.entries()) {
        const length = Buffer.byteLength(lines[i] as string) - 1;
        const e = { id: d.id, offset, length, parent: d.causalParent };
        this.#index.set(d.id, e);
        this.#byTime.push(e);
        offset += length + 1;
      }
      this.#size += buf.length;
      this.#refs.set(name, { target: to, version: expect + 1 });
    };
    return [
      {
        name: this.#sync ? "raw ref line + fdatasync" : "raw ref line",
        cas: () => move("bench/cas", target, []),
        tx3: (ds) => move("bench/tx", (ds[1] as Datum).id, ds),
      },
    ];
  }

  #syncing: Promise<void> | null = null;
  #nextSync: Promise<void> | null = null;

  /**
   * A durable put by hand with fsync batching (group commit), for concurrent callers: the line is
   * written at once (as `put` with `sync` off), and the put resolves after an `fdatasync` that
   * started after its write. One sync is in flight at a time; every write that arrives meanwhile
   * waits for the next one, which they then share.
   */
  putGrouped(d: Datum): Promise<void> {
    this.#append([d]);
    if (this.#syncing === null) return this.#startSync();
    this.#nextSync ??= this.#syncing.then(() => {
      this.#nextSync = null;
      return this.#startSync();
    });
    return this.#nextSync;
  }

  #startSync(): Promise<void> {
    const p: Promise<void> = new Promise<void>((resolve, reject) => fdatasync(this.#fd, (error) => (error ? reject(error) : resolve()))).finally(() => {
      if (this.#syncing === p) this.#syncing = null;
    });
    this.#syncing = p;
    return p;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/**
 * The fsync floor of the disk under the benchmark: `fdatasync` alone, each after an untimed
 * append of one 1 KiB line to a file. A durable put cannot be cheaper than this.
 */
export function fsyncFloor(dir: string, samples: number): number[] {
  const fd = openSync(join(dir, "fsync-floor.bin"), constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o644);
  const line = Buffer.alloc(Math.ceil((CONTENT_BYTES * 4) / 3) + 200, 97);
  line[line.length - 1] = 10;
  const out: number[] = [];
  try {
    for (let i = 0; i < samples + 10; i++) {
      writeSync(fd, line);
      const t0 = process.hrtime.bigint();
      fdatasyncSync(fd);
      if (i >= 10) out.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * The concurrency section's JSONL tier: durable puts with `"group"` durability (the default) next
 * to raw appends with fsync batching (`RawJsonl#putGrouped`), and unstorage's fs driver (no fsync:
 * not the same guarantee, shown for scale).
 */
export async function jsonlGroupTier(dir: string, withPeers: boolean): Promise<TierSetup> {
  const base = join(dir, "jsonl-concurrent");
  mkdirSync(base, { recursive: true });
  const raw = new RawJsonl(join(base, "raw.jsonl"), false);
  const contenders: Contender[] = [
    dgentContender(jsonlAdapter({ dataDir: base, namespace: "dgent", durability: "group" }), 'createStore({ tiers: [jsonlAdapter({ durability: "group" })] })'),
    {
      name: "raw append + grouped fdatasync",
      kind: "raw",
      description: "writeSync to an O_APPEND fd, then the next fdatasync that starts after the write (one in flight; writes arriving meanwhile share the next); get = readSync at a known offset + JSON.parse + base64",
      put: (d) => raw.putGrouped(d),
      get: (id) => raw.get(id),
      prefill: async (ds) => {
        for (let i = 0; i < ds.length; i += 1000) raw.putMany(ds.slice(i, i + 1000));
      },
      close: async () => raw.close(),
    },
  ];
  const skipped: { name: string; reason: string }[] = [];
  if (withPeers) {
    const peer = await unstorageFs(base);
    if (isSkipped(peer)) skipped.push({ name: peer.name, reason: peer.skipped });
    else contenders.push({ ...peer, description: `${peer.description} — not durable, unlike the others: for scale` });
  }
  return {
    tier: "jsonl-group",
    label: 'jsonl, durability "group" (a put resolves after an fdatasync that started after its write)',
    contenders,
    ...(skipped.length ? { skipped } : {}),
    dispose: async () => undefined,
  };
}

export async function jsonlTier(dir: string, mode: Durability, withPeers: boolean): Promise<TierSetup> {
  const base = join(dir, `jsonl-${mode}`);
  mkdirSync(base, { recursive: true });
  const durable = mode !== "none";
  const raw = new RawJsonl(join(base, "raw.jsonl"), durable);
  const dgent = dgentContender(jsonlAdapter({ dataDir: base, namespace: "dgent", durability: mode }), `createStore({ tiers: [jsonlAdapter({ durability: "${mode}" })] })`);
  const contenders: Contender[] = [
    dgent,
    {
      name: durable ? "raw fs append + fdatasync" : "raw fs append",
      kind: "raw",
      description: `writeSync to an O_APPEND fd${durable ? " + fdatasyncSync per call" : ""}; get = readSync at a known offset + JSON.parse + base64; synchronous`,
      put: (d) => raw.put(d),
      putMany: (ds) => raw.putMany(ds),
      get: (id) => raw.get(id),
      list: (limit) => raw.list(limit),
      chain: (id) => raw.chain(id),
      prefill: async (ds) => {
        for (let i = 0; i < ds.length; i += 1000) raw.putMany(ds.slice(i, i + 1000));
      },
      close: async () => raw.close(),
    },
  ];
  const skipped: { name: string; reason: string }[] = [];
  if (withPeers) {
    const peer = await unstorageFs(base);
    if (isSkipped(peer)) skipped.push({ name: peer.name, reason: peer.skipped });
    else contenders.push(peer);
  }
  return {
    tier: `jsonl-${mode}`,
    label: `jsonl, durability "${mode}"${durable ? " (fdatasync before a put resolves)" : " (page cache; no fsync)"}`,
    contenders,
    ...(skipped.length ? { skipped } : {}),
    // Refs and transactions (benchmarks/tiers/refs.ts), before the timed writes.
    probe: async (ids, plan) => ({ refs: await measureRefs([await dgentRefOps(dgent.store, ids.get), ...raw.refs(ids.get)], plan("put")) }),
    dispose: async () => undefined,
  };
}
