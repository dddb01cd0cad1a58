/**
 * The power-loss model itself, on plain file operations: what it keeps and drops is what
 * test/README.md ("Power loss") says, so the tier tests built on it prove what they claim.
 */
import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountPowerLossFs, rng, scratchRoot, syncPoints, type PowerLossFs } from "./index.js";

let fs: PowerLossFs;
let scratch: string;
beforeAll(async () => {
  fs = await mountPowerLossFs();
  scratch = mkdtempSync(join(scratchRoot(), "dgent-plfs-model-"));
});
afterAll(async () => {
  await fs?.unmount();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

let dirs = 0;
function syncDir(path: string): void {
  const fd = openSync(path, "r");
  fsyncSync(fd);
  closeSync(fd);
}

/** The disk after a power loss at journal position `at` (default: now), strict or torn with `seed`. */
function crash(at?: number, seed: number | null = null): string {
  const replay = fs.replay();
  replay.advance(at ?? replay.length);
  const out = join(scratch, String(dirs++));
  mkdirSync(out);
  replay.materialize(out, { torn: seed === null ? null : rng(seed) });
  return out;
}

/** A fresh directory on the mount whose own name is durable. */
function fresh(name: string): string {
  const dir = join(fs.root, name);
  mkdirSync(dir);
  syncDir(fs.root);
  return dir;
}

describe("plfs power-loss model", () => {
  it("reads back what was written, like any file system", () => {
    const dir = fresh("plain");
    const fd = openSync(join(dir, "f"), "w+");
    writeSync(fd, "hello ");
    writeSync(fd, "world");
    closeSync(fd);
    expect(readFileSync(join(dir, "f"), "utf8")).toBe("hello world");
  });

  it("drops a write never synced, keeps one fdatasync'd, and keeps a name only once its directory is synced", () => {
    const dir = fresh("sync");
    const fd = openSync(join(dir, "log"), "a");
    writeSync(fd, "one\n");
    fdatasyncSync(fd);
    const afterFirstSync = fs.mark();
    syncDir(dir);
    writeSync(fd, "two\n");
    closeSync(fd);

    // Before the directory sync the file's name is not durable: the file is gone.
    expect(existsSync(join(crash(afterFirstSync), "sync", "log"))).toBe(false);
    // After it: the synced line survives, the unsynced one does not.
    expect(readFileSync(join(crash(), "sync", "log"), "utf8")).toBe("one\n");
    // Torn: a prefix of the unsynced write may survive too, never anything else.
    const seen = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const text = readFileSync(join(crash(undefined, seed), "sync", "log"), "utf8");
      expect("one\ntwo\n".startsWith(text) && text.startsWith("one\n"), text).toBe(true);
      seen.add(text);
    }
    expect(seen.size).toBeGreaterThan(2);
  });

  it("undoes a rename whose directory was not synced; a metadata-first torn state may keep it with the data not yet there", () => {
    const dir = fresh("rename");
    const old = openSync(join(dir, "log"), "w");
    writeSync(old, "old");
    fsyncSync(old);
    closeSync(old);
    syncDir(dir);
    const tmp = openSync(join(dir, "log.tmp"), "w");
    writeSync(tmp, "new");
    closeSync(tmp); // no fsync of the data
    renameSync(join(dir, "log.tmp"), join(dir, "log"));

    expect(readFileSync(join(crash(), "rename", "log"), "utf8")).toBe("old");
    const outcomes = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) outcomes.add(readFileSync(join(crash(undefined, seed), "rename", "log"), "utf8"));
    // The rename reached the disk before the data: the classic empty file after a crash.
    expect(outcomes).toContain("");
    expect(outcomes).toContain("old");
    expect(outcomes).toContain("new");

    syncDir(dir);
    expect(readFileSync(join(crash(), "rename", "log"), "utf8")).toBe(""); // the name is durable, the data never was
  });

  it("journals every sync, so cuts can be placed on each side of it", () => {
    const dir = fresh("points");
    const before = fs.journal().length;
    const fd = openSync(join(dir, "f"), "w");
    for (let i = 0; i < 5; i++) {
      writeSync(fd, `line ${i}\n`);
      fdatasyncSync(fd);
    }
    closeSync(fd);
    const journal = fs.journal();
    expect(syncPoints(journal).filter((i) => i >= before)).toHaveLength(5);
    expect(fs.mark()).toBe(journal.length);
  });
});
