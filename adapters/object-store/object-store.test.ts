import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { makeDatum } from "../../core/datum.js";
import { dgentError, isDgentError } from "../../core/errors.js";
import { copyBytes, datumArb, idArb, idPairArb, type BytesForm } from "../../test/arbitraries.js";
import { assertSameDatum, referenceCompareIds } from "../../test/references.js";
import { decodeEnvelope, decodeHead, encodeEnvelope } from "./envelope.js";
import { indexedDirs, KeyLayout, MAX_INLINE_ID_HEX, namespaceRoot, parseTimeKey, queryDir, timeKey } from "./keys.js";
import { importOptional } from "../../core/adapter-support.js";
import { withRetry } from "./retry.js";
import { runProcess } from "../../test/harness/run.js";

// The pieces both object-store tiers share, without a server: key layout, envelope, retry and
// the optional-dependency import.

const validId = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 40 })
  .filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && s.isWellFormed() && Buffer.byteLength(s) <= 1024);

describe("time keys", () => {
  it("sort newest first and round-trip every non-negative createdAt", () => {
    const time = fc.oneof(fc.double({ min: 0, max: 1e16, noNaN: true }), fc.integer({ min: 0, max: 2 ** 53 - 1 }));
    fc.assert(
      fc.property(time, time, (a, b) => {
        expect(parseTimeKey(timeKey(a))).toBe(a === 0 ? 0 : a);
        const ka = timeKey(a);
        const kb = timeKey(b);
        expect(ka).toHaveLength(16);
        if (a > b) expect(ka < kb).toBe(true);
        else if (a < b) expect(ka > kb).toBe(true);
        else expect(ka).toBe(kb);
      }),
    );
    expect(timeKey(-0)).toBe(timeKey(0));
    expect(parseTimeKey("not-a-time-key!!")).toBeNull();
  });
});

describe("key layout", () => {
  const layout = new KeyLayout("dgent/ns/", 2);

  it("indexes the root and each /-level up to the depth", () => {
    expect(indexedDirs("a/b/c/d", 2)).toEqual(["", "a/", "a/b/"]);
    expect(indexedDirs("plain", 3)).toEqual([""]);
    expect(indexedDirs("a//b", 3)).toEqual(["", "a/", "a//"]);
    expect(indexedDirs("x/", 3)).toEqual(["", "x/"]);
    expect(queryDir("a/b/", 2)).toEqual({ dir: "a/b/", exact: true });
    expect(queryDir("a/b/c", 2)).toEqual({ dir: "a/b/", exact: false });
    expect(queryDir("a/b/c/", 2)).toEqual({ dir: "a/b/", exact: false });
    expect(queryDir("", 2)).toEqual({ dir: "", exact: true });
  });

  it("gives every id short, safe keys, and markers that parse back to id and time", () => {
    fc.assert(
      fc.property(validId, fc.integer({ min: 0, max: 4_102_444_800_000 }), (id, createdAt) => {
        const data = layout.dataKey(id);
        expect(data).toMatch(/^dgent\/ns\/d\/[0-9a-f]{64}$/);
        const markers = layout.markerKeys(id, createdAt);
        expect(markers).toHaveLength(indexedDirs(id, 2).length);
        for (const [i, key] of markers.entries()) {
          expect(key).toMatch(/^dgent\/ns\/t\/[0-9a-f]{32}\/[0-9a-f]{16}[.~][0-9a-f]+$/);
          const dir = indexedDirs(id, 2)[i] as string;
          const parsed = layout.parseMarker(key, layout.dirPrefix(dir));
          expect(parsed?.createdAt).toBe(createdAt);
          expect(parsed?.id).toBe(id);
          expect(layout.dataKeyOfHash(parsed?.hash as string)).toBe(data);
        }
      }),
    );
  });

  it("hashes ids too long to spell out, and keeps every key under 1024 bytes", () => {
    const id = "é".repeat(512);
    const [marker] = layout.markerKeys(id, 5);
    expect(Buffer.from(id).toString("hex").length).toBeGreaterThan(MAX_INLINE_ID_HEX);
    const parsed = layout.parseMarker(marker as string, layout.dirPrefix(""));
    expect(parsed).toMatchObject({ id: null, createdAt: 5 });
    expect(layout.dataKeyOfHash(parsed?.hash as string)).toBe(layout.dataKey(id));
    expect(Buffer.byteLength(marker as string)).toBeLessThan(1024);
    expect(layout.parseMarker("dgent/ns/t/whatever", layout.dirPrefix(""))).toBeNull();
  });

  it("orders tied markers by id in code point order, like the protocol", () => {
    const order = (ids: readonly string[]) => {
      const keys = ids.map((id) => layout.markerKeys(id, 7)[0] as string).sort();
      return keys.map((k) => layout.parseMarker(k, layout.dirPrefix(""))?.id);
    };
    const ids = ["b", "a", "\uFFFD", "\u{1F989}", "aa", "a/"];
    expect(order(ids)).toEqual(["a", "a/", "aa", "b", "\uFFFD", "\u{1F989}"]);
    // Object stores list keys in UTF-8 byte order; ids apart only in surrogate order included.
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(idArb, idPairArb.map(([a]) => a), idPairArb.map(([, b]) => b)), { minLength: 2, maxLength: 12 }), (ids) => {
        expect(order(ids)).toEqual([...ids].sort(referenceCompareIds));
      }),
      { numRuns: 300 },
    );
  });

  it("roots a namespace under the prefix", () => {
    expect(namespaceRoot("dgent/", "agent-7")).toBe("dgent/agent-7/");
    expect(namespaceRoot("apps/x", "n")).toBe("apps/x/n/");
    expect(namespaceRoot("", "n")).toBe("n/");
  });
});

describe("the datum envelope", () => {
  it("round-trips any datum, including metadata far past the header limits of S3 and GCS", () => {
    fc.assert(
      fc.property(
        validId,
        fc.uint8Array({ maxLength: 300 }),
        fc.option(validId, { nil: null }),
        fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })),
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        (id, content, causalParent, metadata, createdAt) => {
          const d = { id, content, causalParent: causalParent === id ? null : causalParent, metadata, createdAt };
          assertSameDatum(decodeEnvelope(encodeEnvelope(d), "test", "s3"), d);
        },
      ),
    );
    // Boundary characters, awkward metadata keys ("__proto__", "0", ""), bytes held as a view at an offset.
    fc.assert(
      fc.property(datumArb, fc.constantFrom<BytesForm>("array", "buffer", "view"), (d, form) => {
        const held = { ...d, content: copyBytes(d.content, form) };
        assertSameDatum(decodeEnvelope(encodeEnvelope(held), "test", "gcs"), d);
      }),
      { numRuns: 300 },
    );
    const big = makeDatum({ content: "x", metadata: { note: "v".repeat(20_000), ...(JSON.parse('{"__proto__":"kept as a key"}') as object) } });
    const back = decodeEnvelope(encodeEnvelope(big), "test", "s3");
    expect(back.metadata.note).toHaveLength(20_000);
    expect(Object.hasOwn(back.metadata, "__proto__")).toBe(true);
  });

  it("is readable text up to the content", () => {
    const body = encodeEnvelope(makeDatum({ id: "n/1", content: "hello", createdAt: 5, metadata: { k: "v" } }));
    expect(body.toString("utf8")).toBe('dgent-datum/1 67\n{"id":"n/1","createdAt":5,"causalParent":null,"metadata":{"k":"v"}}\nhello');
  });

  it("refuses a body that is not a datum with DGENT_BACKEND_ERROR", () => {
    const good = encodeEnvelope(makeDatum({ content: "abc" }));
    for (const body of [Buffer.from("plain text"), good.subarray(0, 20), Buffer.from("dgent-datum/1 5\n{}\n"), Buffer.from('dgent-datum/1 2\n[]\n')]) {
      let caught: unknown;
      try {
        decodeEnvelope(body, "s3://b/k", "s3");
      } catch (error) {
        caught = error;
      }
      expect(isDgentError(caught, "DGENT_BACKEND_ERROR")).toBe(true);
      expect((caught as Error).message).toContain("s3://b/k");
    }
  });

  it("decodeHead reads the header from any long enough prefix, and says how many bytes it needs from a shorter one", () => {
    fc.assert(
      fc.property(datumArb, fc.nat(2000), (d, cut) => {
        const body = encodeEnvelope(d);
        const prefix = body.subarray(0, Math.min(cut, body.byteLength));
        const head = decodeHead(prefix, "test", "s3", prefix.byteLength === body.byteLength);
        const contentStart = body.byteLength - d.content.byteLength;
        if (prefix.byteLength >= contentStart) {
          expect("header" in head).toBe(true);
          if (!("header" in head)) return;
          expect(head.contentStart).toBe(contentStart);
          expect(head.header).toEqual({ id: d.id, createdAt: d.createdAt, causalParent: d.causalParent, metadata: { ...d.metadata } });
          expect("content" in head.header).toBe(false);
        } else {
          // Asked again for `need` bytes, the next read decodes (at most one more round).
          expect("need" in head).toBe(true);
          if (!("need" in head)) return;
          expect(head.need).toBeGreaterThan(prefix.byteLength);
          const again = decodeHead(body.subarray(0, head.need), "test", "s3", head.need >= body.byteLength);
          const third = "need" in again ? decodeHead(body.subarray(0, again.need), "test", "s3", again.need >= body.byteLength) : again;
          expect("header" in third && third.contentStart).toBe(contentStart);
        }
      }),
      { numRuns: 300 },
    );
    // A whole body that is too short, or not a datum at all, is an error, not a request for more.
    const good = encodeEnvelope(makeDatum({ content: "abc" }));
    for (const [body, complete] of [[good.subarray(0, 20), true], [Buffer.from("plain text"), false], [Buffer.from("dgent-datum/1 x\n"), false]] as const) {
      expect(() => decodeHead(body, "gs://b/k", "gcs", complete)).toThrow(expect.objectContaining({ code: "DGENT_BACKEND_ERROR" }));
    }
  });
});

describe("withRetry", () => {
  const policy = { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 };

  it("retries retryable errors with backoff until one try succeeds", async () => {
    let calls = 0;
    const retried: number[] = [];
    const value = await withRetry(
      policy,
      async () => {
        if (++calls < 3) throw dgentError("DGENT_UNAVAILABLE", "busy", { unit: "s3" });
        return "ok";
      },
      (_e, attempt) => retried.push(attempt),
    );
    expect(value).toBe("ok");
    expect(calls).toBe(3);
    expect(retried).toEqual([1, 2]);
  });

  it("gives up after maxAttempts with the last error, and never retries the others", async () => {
    let calls = 0;
    await expect(
      withRetry(policy, async () => {
        calls++;
        throw dgentError("DGENT_UNAVAILABLE", `busy ${calls}`);
      }),
    ).rejects.toMatchObject({ code: "DGENT_UNAVAILABLE", message: "busy 4" });
    expect(calls).toBe(4);
    for (const error of [dgentError("DGENT_BACKEND_ERROR", "denied"), dgentError("DGENT_CONFLICT", "taken"), new Error("plain")]) {
      calls = 0;
      await expect(
        withRetry(policy, async () => {
          calls++;
          throw error;
        }),
      ).rejects.toBe(error);
      expect(calls).toBe(1);
    }
  });
});

describe("optional peer dependencies", () => {
  it("a package that is not installed is DGENT_MISSING_DEPENDENCY naming it; other failures pass through", async () => {
    const err = await importOptional("@dgent-test/not-installed", "s3").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "DGENT_MISSING_DEPENDENCY", unit: "s3", details: { package: "@dgent-test/not-installed" } });
    expect((err as Error).message).toContain("npm install @dgent-test/not-installed");
    const broken = Object.assign(new Error("Cannot find package 'tslib' imported from x"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(importOptional("some-sdk", "s3", async () => Promise.reject(broken))).rejects.toBe(broken);
    const boom = new SyntaxError("bad module");
    await expect(importOptional("some-sdk", "s3", async () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await importOptional<{ ok: number }>("some-sdk", "s3", async () => ({ ok: 1 }))).toEqual({ ok: 1 });
  });

  // The built package in a process where the SDKs cannot be resolved (a resolve hook hides
  // them): constructing works, open() fails with the coded error naming what to install.
  const dir = mkdtempSync(join(tmpdir(), "dgent-nodep-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const hook = join(dir, "hide-sdks.mjs");
  writeFileSync(
    hook,
    `const hidden = new Set(["@aws-sdk/client-s3", "@google-cloud/storage"]);
export async function resolve(specifier, context, next) {
  if (hidden.has(specifier)) {
    throw Object.assign(new Error(\`Cannot find package '\${specifier}' imported from \${context.parentURL}\`), { code: "ERR_MODULE_NOT_FOUND" });
  }
  return next(specifier, context);
}`,
  );
  const register = join(dir, "register.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  const root = new URL("../..", import.meta.url).pathname;

  for (const [tier, factory, options, pkg] of [
    ["s3", "s3Adapter", { bucket: "some-bucket", endpoint: "http://127.0.0.1:9" }, "@aws-sdk/client-s3"],
    ["gcs", "gcsAdapter", { bucket: "some-bucket", apiEndpoint: "http://127.0.0.1:9" }, "@google-cloud/storage"],
  ] as const) {
    it(`the ${tier} tier without ${pkg} fails open() with DGENT_MISSING_DEPENDENCY`, async () => {
      const program = `
        const { ${factory} } = await import("dgent/adapters/${tier}");
        const adapter = ${factory}(${JSON.stringify(options)});
        try { await adapter.open(); console.log(JSON.stringify({ opened: true })); }
        catch (e) { console.log(JSON.stringify({ code: e.code, unit: e.unit, message: e.message })); }`;
      const run = await runProcess(process.execPath, ["--import", pathToFileURL(register).href, "--input-type=module", "-e", program], { cwd: root });
      expect(run.status, run.stderr).toBe(0);
      const out = JSON.parse(run.stdout.trim().split("\n").pop() as string) as { code: string; unit: string; message: string };
      expect(out.code).toBe("DGENT_MISSING_DEPENDENCY");
      expect(out.unit).toBe(tier);
      expect(out.message).toContain(`npm install ${pkg}`);
    });
  }
});

describe("the SDKs stay optional", () => {
  // Every bare package the cloud tiers import is a declared, optional peer dependency, and is
  // imported only as types or through importOptional inside open(), never at module load.
  const root = new URL("../..", import.meta.url).pathname;
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    devDependencies?: Record<string, string>;
  };
  for (const dir of ["adapters/object-store", "adapters/s3", "adapters/gcs"]) {
    it(`${dir} imports no SDK at load time, and declares every SDK it uses`, () => {
      const files = readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
      expect(files.length).toBeGreaterThan(2);
      for (const file of files) {
        const source = readFileSync(join(root, dir, file), "utf8");
        for (const m of source.matchAll(/^import\s+(type\s+)?[^;]*?from\s+"([^".][^"]*)"/gms)) {
          const [, typeOnly, specifier] = m as unknown as [string, string | undefined, string];
          if (specifier.startsWith("node:")) continue;
          expect(typeOnly, `${dir}/${file} imports ${specifier} at load time`).toBeDefined();
        }
        for (const m of source.matchAll(/typeof import\("([^"]+)"\)|(?:_PACKAGE|pkg) = "([^"]+)"/g)) {
          const name = (m[1] ?? m[2]) as string;
          expect(pkg.peerDependencies?.[name], `${name} is a peer dependency`).toBeDefined();
          expect(pkg.peerDependenciesMeta?.[name]?.optional, `${name} is optional`).toBe(true);
          expect(pkg.devDependencies?.[name], `${name} is installed for the tests`).toBeDefined();
        }
      }
    });
  }
});
