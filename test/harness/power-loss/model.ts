/**
 * What a power loss leaves on disk, computed from plfs's journal (see plfs.c for the records and
 * test/README.md, "Power loss", for what the model assumes).
 *
 * The replay keeps, for every file, the bytes made durable by its last fsync/fdatasync apart
 * from the writes and truncations made since (pending), and for the namespace the names made
 * durable by an fsync of their directory apart from the creations, links, unlinks and renames
 * made since. `materialize` writes the disk as it is after a power loss at the current point:
 *
 * - strict: only what was made durable survives (a file created but never synced is empty; a
 *   name whose directory was never synced is gone);
 * - torn: each file also keeps a prefix of its pending writes, in the order they were made, the
 *   last one kept possibly cut at any byte; the namespace keeps a prefix of its pending changes
 *   (each rename whole). This is a disk that flushes in order and stops at an arbitrary byte.
 *   Half of the torn states (chosen by the generator) keep every pending namespace change and
 *   only prefixes of the data ("metadata first": a rename or a new name reached the disk before
 *   the data it names, as on file systems that journal metadata and write data later).
 */
import { linkSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type JournalOp =
  | { readonly kind: "write"; readonly ino: number; readonly offset: number; readonly data: Buffer }
  | { readonly kind: "truncate"; readonly ino: number; readonly size: number }
  | { readonly kind: "fsync"; readonly ino: number; readonly datasync: boolean }
  | { readonly kind: "fsyncdir"; readonly ino: number }
  | { readonly kind: "create"; readonly parent: number; readonly name: string; readonly ino: number; readonly dir: boolean }
  | { readonly kind: "link"; readonly parent: number; readonly name: string; readonly ino: number }
  | { readonly kind: "unlink"; readonly parent: number; readonly name: string }
  | { readonly kind: "rename"; readonly from: number; readonly fromName: string; readonly to: number; readonly toName: string; readonly ino: number };

/** Parses a plfs journal file. */
export function readJournal(path: string): JournalOp[] {
  const buf = readFileSync(path);
  const ops: JournalOp[] = [];
  let p = 0;
  const u8 = () => buf.readUInt8(p++);
  const u32 = () => {
    const v = buf.readUInt32LE(p);
    p += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(buf.readBigUInt64LE(p));
    p += 8;
    return v;
  };
  const name = () => {
    const n = buf.readUInt16LE(p);
    p += 2;
    const s = buf.toString("utf8", p, p + n);
    p += n;
    return s;
  };
  while (p < buf.length) {
    const type = String.fromCharCode(u8());
    switch (type) {
      case "W": {
        const ino = u64();
        const offset = u64();
        const len = u32();
        ops.push({ kind: "write", ino, offset, data: buf.subarray(p, p + len) });
        p += len;
        break;
      }
      case "T":
        ops.push({ kind: "truncate", ino: u64(), size: u64() });
        break;
      case "S":
        ops.push({ kind: "fsync", ino: u64(), datasync: u8() === 1 });
        break;
      case "D":
        ops.push({ kind: "fsyncdir", ino: u64() });
        break;
      case "C": {
        const parent = u64();
        const n = name();
        const ino = u64();
        ops.push({ kind: "create", parent, name: n, ino, dir: u8() === "d".charCodeAt(0) });
        break;
      }
      case "L": {
        const parent = u64();
        const n = name();
        ops.push({ kind: "link", parent, name: n, ino: u64() });
        break;
      }
      case "U": {
        const parent = u64();
        ops.push({ kind: "unlink", parent, name: name() });
        break;
      }
      case "N": {
        const from = u64();
        const fromName = name();
        const to = u64();
        const toName = name();
        ops.push({ kind: "rename", from, fromName, to, toName, ino: u64() });
        break;
      }
      default:
        throw new Error(`plfs journal ${path}: unknown record type ${JSON.stringify(type)} at byte ${p - 1}`);
    }
  }
  if (p !== buf.length) throw new Error(`plfs journal ${path} ends inside a record`);
  return ops;
}

/** Indices of the fsync/fdatasync/directory-fsync records: a cut at i is just before one, at i + 1 just after. */
export function syncPoints(ops: readonly JournalOp[]): number[] {
  const out: number[] = [];
  ops.forEach((op, i) => {
    if (op.kind === "fsync" || op.kind === "fsyncdir") out.push(i);
  });
  return out;
}

/** A seeded generator (mulberry32): the same seed gives the same torn states. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A file's bytes, growable. */
class Image {
  buf = Buffer.alloc(0);
  size = 0;

  clone(): Image {
    const c = new Image();
    c.buf = Buffer.from(this.buf.subarray(0, this.size));
    c.size = this.size;
    return c;
  }

  write(offset: number, data: Buffer): void {
    this.#ensure(offset + data.length);
    data.copy(this.buf, offset);
    if (offset + data.length > this.size) this.size = offset + data.length;
  }

  truncate(size: number): void {
    this.#ensure(size);
    if (size < this.size) this.buf.fill(0, size, this.size);
    this.size = size;
  }

  #ensure(n: number): void {
    if (n <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(n, this.buf.length * 2, 4096));
    this.buf.copy(grown, 0, 0, this.size);
    this.buf = grown;
  }
}

type DataOp = Extract<JournalOp, { kind: "write" | "truncate" }>;

function applyData(image: Image, op: DataOp): void {
  if (op.kind === "write") image.write(op.offset, op.data);
  else image.truncate(op.size);
}

/** One namespace change, applied whole: a rename removes and adds in one unit. */
interface NameUnit {
  readonly dirs: readonly number[];
  readonly effects: ReadonlyArray<{ readonly dir: number; readonly name: string; readonly ino: number | null }>;
}

type Names = Map<number, Map<string, number>>;

function applyUnit(names: Names, unit: NameUnit): void {
  for (const { dir, name, ino } of unit.effects) {
    let entries = names.get(dir);
    if (entries === undefined) names.set(dir, (entries = new Map()));
    if (ino === null) entries.delete(name);
    else entries.set(name, ino);
  }
}

export const ROOT_INO = 1;

export interface CrashOptions {
  /** null: strict (only what was synced); a generator: torn (prefixes of what was not). */
  readonly torn: (() => number) | null;
  /** mtime given to every file (a reboot takes a while): default one minute ago. */
  readonly mtime?: Date;
}

/**
 * Replays a journal forwards. `advance(k)` applies records up to (not including) index k;
 * `materialize(dir)` then writes the disk after a power loss at that point.
 */
export class PowerLossReplay {
  readonly #ops: readonly JournalOp[];
  #at = 0;
  readonly #dirs = new Set<number>([ROOT_INO]);
  readonly #durable = new Map<number, Image>();
  readonly #pending = new Map<number, DataOp[]>();
  readonly #names: Names = new Map([[ROOT_INO, new Map()]]);
  #pendingNames: NameUnit[] = [];

  constructor(ops: readonly JournalOp[]) {
    this.#ops = ops;
  }

  /** Records in the journal. */
  get length(): number {
    return this.#ops.length;
  }

  /** Records applied so far. */
  get at(): number {
    return this.#at;
  }

  advance(k: number): void {
    if (k < this.#at || k > this.#ops.length) throw new Error(`cannot replay to ${k} from ${this.#at} (journal of ${this.#ops.length})`);
    while (this.#at < k) this.#apply(this.#ops[this.#at++] as JournalOp);
  }

  #apply(op: JournalOp): void {
    switch (op.kind) {
      case "write":
      case "truncate":
        this.#pendingOf(op.ino).push(op);
        return;
      case "fsync":
        if (this.#dirs.has(op.ino)) this.#syncDir(op.ino);
        else this.#syncFile(op.ino);
        return;
      case "fsyncdir":
        this.#syncDir(op.ino);
        return;
      case "create":
        if (op.dir) this.#dirs.add(op.ino);
        else this.#durable.set(op.ino, new Image());
        this.#pendingNames.push({ dirs: [op.parent], effects: [{ dir: op.parent, name: op.name, ino: op.ino }] });
        return;
      case "link":
        this.#pendingNames.push({ dirs: [op.parent], effects: [{ dir: op.parent, name: op.name, ino: op.ino }] });
        return;
      case "unlink":
        this.#pendingNames.push({ dirs: [op.parent], effects: [{ dir: op.parent, name: op.name, ino: null }] });
        return;
      case "rename":
        this.#pendingNames.push({
          dirs: op.from === op.to ? [op.from] : [op.from, op.to],
          effects: [
            { dir: op.from, name: op.fromName, ino: null },
            { dir: op.to, name: op.toName, ino: op.ino },
          ],
        });
        return;
    }
  }

  #pendingOf(ino: number): DataOp[] {
    let list = this.#pending.get(ino);
    if (list === undefined) this.#pending.set(ino, (list = []));
    return list;
  }

  #syncFile(ino: number): void {
    let image = this.#durable.get(ino);
    if (image === undefined) this.#durable.set(ino, (image = new Image()));
    for (const op of this.#pending.get(ino) ?? []) applyData(image, op);
    this.#pending.delete(ino);
  }

  /** Every pending change to this directory's names becomes durable (a rename whole, in both directories). */
  #syncDir(ino: number): void {
    const keep: NameUnit[] = [];
    for (const unit of this.#pendingNames) {
      if (unit.dirs.includes(ino)) applyUnit(this.#names, unit);
      else keep.push(unit);
    }
    this.#pendingNames = keep;
  }

  /** Writes the disk after a power loss here into `dir` (which must exist and be empty). */
  materialize(dir: string, options: CrashOptions): void {
    const { torn } = options;
    const pick = (n: number): number => (torn === null ? 0 : Math.floor(torn() * (n + 1)));
    const names: Names = new Map([...this.#names].map(([d, entries]) => [d, new Map(entries)]));
    const metadataFirst = torn !== null && torn() < 0.5;
    const units = metadataFirst ? this.#pendingNames.length : pick(this.#pendingNames.length);
    for (let i = 0; i < units; i++) applyUnit(names, this.#pendingNames[i] as NameUnit);

    const image = (ino: number): Buffer => {
      const durable = this.#durable.get(ino) ?? new Image();
      const pending = this.#pending.get(ino) ?? [];
      if (torn === null || pending.length === 0) return durable.buf.subarray(0, durable.size);
      const img = durable.clone();
      const whole = pick(pending.length);
      for (let i = 0; i < whole; i++) applyData(img, pending[i] as DataOp);
      const next = pending[whole];
      if (next !== undefined && next.kind === "write" && next.data.length > 1) {
        img.write(next.offset, next.data.subarray(0, Math.floor(torn() * next.data.length)));
      }
      return img.buf.subarray(0, img.size);
    };

    const mtime = options.mtime ?? new Date(Date.now() - 60_000);
    const placed = new Map<number, string>();
    const visit = (ino: number, path: string, depth: number): void => {
      for (const [name, child] of names.get(ino) ?? []) {
        const full = join(path, name);
        if (this.#dirs.has(child)) {
          if (depth > 64) continue; // a directory renamed into itself cannot happen; be safe anyway
          mkdirSync(full);
          visit(child, full, depth + 1);
        } else if (placed.has(child)) {
          linkSync(placed.get(child) as string, full);
        } else {
          writeFileSync(full, image(child));
          utimesSync(full, mtime, mtime);
          placed.set(child, full);
        }
      }
    };
    visit(ROOT_INO, dir, 0);
  }
}
