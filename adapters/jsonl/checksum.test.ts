import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Datum } from "../../core/datum.js";
import { isDgentError } from "../../core/errors.js";
import { jsonlAdapter } from "./index.js";
import { checksumOk, LineBuffer, pushPut, putLine } from "./records.js";

const dir = mkdtempSync(join(tmpdir(), "dgent-jsonl-crc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `log-${++n}.jsonl`);
const datum = (id: string, content: string, createdAt = 1): Datum => ({ id, content: Buffer.from(content), createdAt, causalParent: null, metadata: { k: "v" } });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (error) {
    return isDgentError(error) ? error.code : String(error);
  }
}

/** Flips one character of `needle` inside the log, keeping the line valid JSON and valid base64. */
function flip(path: string, needle: string): void {
  const text = readFileSync(path, "latin1");
  const at = text.indexOf(needle);
  expect(at).toBeGreaterThan(0);
  const c = text[at] === "A" ? "B" : "A";
  writeFileSync(path, text.slice(0, at) + c + text.slice(at + 1), "latin1");
}

describe("jsonl: per-record checksum (record version 3)", () => {
  it("every put line carries a CRC-32 of the line before it", () => {
    const line = putLine(datum("a", "hello"));
    expect(line).toMatch(/^\{"v":3,"op":"put",.*,"crc":"[0-9a-f]{8}"\}$/);
    expect(checksumOk(line)).toBe(true);
    expect(checksumOk(line.replace("aGVsbG8=", "aGVsbG9="))).toBe(false);
    expect(checksumOk(line.replace(/,"crc":"[0-9a-f]{8}"/, ""))).toBe(false);
    expect(checksumOk('{"v":1,"op":"put","id":"a","createdAt":1,"causalParent":null,"metadata":{},"content":""}')).toBeNull();
  });

  it("the put path encodes each line once, byte for byte the line putLine gives", () => {
    const out = new LineBuffer(64); // small: the buffer grows mid-line
    const datums: Datum[] = [
      datum("a", "hello"),
      datum("empty", ""),
      { id: "ünï-cødé-✓", content: Buffer.from([0, 255, 10, 34, 92]), createdAt: 1_700_000_000_123, causalParent: "pärent\"q", metadata: {} },
      { id: "many", content: Buffer.alloc(5000, 7), createdAt: 0, causalParent: "a", metadata: { role: "ü\n\"x\"", step: "1", "k-𝄞": "v" } },
    ];
    let expected = "";
    for (const d of datums) {
      const line = putLine(d);
      expected += `${line}\n`;
      expect(pushPut(out, d)).toBe(Buffer.byteLength(line));
    }
    expect(out.buf.toString("utf8", 0, out.length)).toBe(expected);
    for (const line of expected.split("\n").slice(0, -1)) expect(checksumOk(line)).toBe(true);
  });

  it("a flipped byte in a record fails its read with DGENT_CORRUPT naming the id; the other datums still read", async () => {
    const path = fresh();
    const log = jsonlAdapter({ path });
    await log.open();
    const body = "0123456789".repeat(20);
    for (const id of ["a", "b", "c"]) await log.put(datum(id, `${id}:${body}`));
    await log.close();
    // "b:0" is "Yjow" in base64, found only in b's record; flip its first character.
    flip(path, Buffer.from(`b:${body}`).toString("base64").slice(0, 4));
    const again = jsonlAdapter({ path, readonly: true });
    await again.open();
    expect(Buffer.from((await again.get("a"))!.content).toString()).toBe(`a:${body}`);
    let caught: unknown;
    try {
      await again.get("b");
    } catch (error) {
      caught = error;
    }
    expect(isDgentError(caught, "DGENT_CORRUPT")).toBe(true);
    expect((caught as { details: { id: string } }).details.id).toBe("b");
    expect(await codeOf(again.getMany!(["c", "b"]))).toBe("DGENT_CORRUPT");
    expect(Buffer.from((await again.get("c"))!.content).toString()).toBe(`c:${body}`);
    await again.close();
    // The writer path reads the same way.
    const writer = jsonlAdapter({ path });
    await writer.open();
    expect(await codeOf(writer.get("b"))).toBe("DGENT_CORRUPT");
    await writer.close();
  });

  it("logs written before the checksum (versions 1 and 2) still open and read, and new puts append version 3 lines", async () => {
    const path = fresh();
    const v1 = (id: string, content: string) =>
      `{"v":1,"op":"put","id":"${id}","createdAt":1,"causalParent":null,"metadata":{},"content":"${Buffer.from(content).toString("base64")}"}`;
    writeFileSync(
      path,
      [v1("old-1", "first"), '{"v":2,"op":"begin","n":2}', v1("old-2", "second"), '{"v":1,"op":"del","id":"old-1"}', '{"v":2,"op":"commit","n":2}', ""].join("\n"),
    );
    const log = jsonlAdapter({ path });
    await log.open();
    expect(await log.get("old-1")).toBeNull();
    expect(Buffer.from((await log.get("old-2"))!.content).toString()).toBe("second");
    await log.put(datum("new", "third"));
    await log.close();
    const last = readFileSync(path, "utf8").trimEnd().split("\n").at(-1) as string;
    expect(JSON.parse(last)).toMatchObject({ v: 3, op: "put", id: "new" });
    const reopened = jsonlAdapter({ path });
    await reopened.open();
    expect(Buffer.from((await reopened.get("new"))!.content).toString()).toBe("third");
    await reopened.close();
  });
});
