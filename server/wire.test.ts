import { describe, expect, it } from "vitest";
import { decodeBase64, fromWire } from "./wire.js";

/** The rule decodeBase64 keeps: what the server accepted before it (the regex, then Node's decoder). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const reference = (text: string): Uint8Array | null => (text.length % 4 !== 0 || !BASE64.test(text) ? null : new Uint8Array(Buffer.from(text, "base64")));

describe("wire: base64 content", () => {
  it("accepts and refuses exactly what the regex rule does, with the same bytes, in a Uint8Array of its own", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .\né";
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const cases = ["", "====", "A===", "AA==", "AB==", "AAA=", "AAB=", "eHh4", "eHh4\n", "eHh-", "eHh_", "eH=4", "ZQ==ZQ=="];
    for (let i = 0; i < 20_000; i++) {
      let s = "";
      const len = rand(13);
      for (let j = 0; j < len; j++) s += alphabet[rand(rand(4) === 0 ? alphabet.length : 65)];
      cases.push(s);
    }
    for (let i = 0; i < 2_000; i++) cases.push(Buffer.from(Array.from({ length: rand(40) }, () => rand(256))).toString("base64"));
    let accepted = 0;
    for (const text of cases) {
      const want = reference(text);
      const got = decodeBase64(text);
      if (want === null) {
        expect(got, JSON.stringify(text)).toBeNull();
        continue;
      }
      accepted++;
      expect(got, JSON.stringify(text)).not.toBeNull();
      expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
      expect((got as Uint8Array).byteLength).toBe((got as Uint8Array).buffer.byteLength);
      expect(Buffer.from(got as Uint8Array).equals(Buffer.from(want))).toBe(true);
    }
    expect(accepted).toBeGreaterThan(2_000);
  });

  it("fromWire refuses content that is not base64 with DGENT_INVALID_CONTENT", () => {
    expect(() => fromWire({ id: "a", content: "eH=4", createdAt: 1, causalParent: null, metadata: {} })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_CONTENT" }));
    expect(() => fromWire({ id: "a", content: 12, createdAt: 1, causalParent: null, metadata: {} })).toThrow(expect.objectContaining({ code: "DGENT_INVALID_CONTENT" }));
    expect(Buffer.from(fromWire({ id: "a", content: "eHh4", createdAt: 1 }).content).toString()).toBe("xxx");
  });
});
