import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packedReader, packedWriter } from "./container.js";
import { FORMAT_NAME, FORMAT_VERSION, manifestDigest, type ChunkEntry, type Manifest } from "./format.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-backup-container-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("packed archives synced in the background", () => {
  it("read back whole when synced after every chunk, and an aborted one leaves nothing", async () => {
    const path = join(dir, "a.dgbk");
    const writer = packedWriter(path, 1);
    const chunks = [Buffer.from("one"), Buffer.alloc(70_000, 7), Buffer.from("three")];
    const entries: ChunkEntry[] = chunks.map((c, i) => ({
      name: `datums-00000${i + 1}`,
      kind: "datums",
      records: 1,
      rawBytes: c.length,
      storedBytes: c.length,
      sha256: createHash("sha256").update(c).digest("hex"),
    }));
    for (const [i, c] of chunks.entries()) await writer.writeChunk((entries[i] as ChunkEntry).name, c);
    const body: Omit<Manifest, "archiveDigest"> = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      backupId: "20261204T000000000Z-00000000",
      kind: "full",
      parent: null,
      namespace: "default",
      source: { tier: "test", url: null },
      startedAt: 1,
      finishedAt: 2,
      cut: 1,
      compression: "none",
      encryption: null,
      counts: { datums: 3, state: 3, deletes: 0, refs: 0 },
      stateDigest: "",
      chunks: entries,
    };
    await writer.finish(Buffer.from(JSON.stringify({ ...body, archiveDigest: manifestDigest(body) })));
    const reader = packedReader(path);
    try {
      for (const [i, e] of entries.entries()) expect((await reader.readChunk(e)).equals(chunks[i] as Buffer)).toBe(true);
    } finally {
      await reader.close();
    }
    const other = packedWriter(join(dir, "b.dgbk"), 1);
    await other.writeChunk("datums-000001", Buffer.alloc(10_000, 1));
    await other.writeChunk("datums-000002", Buffer.alloc(10_000, 2));
    await other.abort();
    expect(readdirSync(dir)).toEqual(["a.dgbk"]);
  });
});
