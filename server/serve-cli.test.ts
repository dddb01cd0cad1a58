import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { run } from "../cli/commands.js";
import { hashToken } from "./index.js";

// `dgent serve` in-process: the same run() the binary calls, stopped by the SIGTERM listener it installs.
const home = mkdtempSync(join(tmpdir(), "dgent-serve-cli-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function io(input = "") {
  const out: string[] = [];
  const err: string[] = [];
  let onErr: (() => void) | null = null;
  return {
    out,
    err,
    /** Resolves with the URL once the server says it listens. */
    listening: () =>
      new Promise<string>((resolve) => {
        const check = () => {
          const m = /listening on (\S+)/.exec(err.join(""));
          if (m) resolve(m[1] as string);
          else onErr = check;
        };
        check();
      }),
    io: {
      stdout: (c: string | Uint8Array) => out.push(String(c)),
      stderr: (c: string) => {
        err.push(c);
        onErr?.();
      },
      stdin: Readable.from([Buffer.from(input)]) as NodeJS.ReadableStream,
      env: { PATH: process.env.PATH ?? "", HOME: home, XDG_DATA_HOME: join(home, "data") } as NodeJS.ProcessEnv,
    },
  };
}

describe("dgent serve", () => {
  it("--hash-token prints the SHA-256 a token file holds", async () => {
    const t = io("s3cret\n");
    expect(await run(["serve", "--hash-token"], t.io)).toBe(0);
    expect(t.out.join("").trim()).toBe(hashToken("s3cret"));
  });

  it("refuses to start without a choice about access control, or without it on a reachable host", async () => {
    await expect(run(["serve"], io().io)).rejects.toMatchObject({ code: "DGENT_USAGE" });
    await expect(run(["serve", "--no-auth", "--host", "0.0.0.0"], io().io)).rejects.toMatchObject({ code: "DGENT_USAGE", message: expect.stringContaining("loopback") });
  });

  it("serves the composed store with the tokens of --auth, and stops on SIGTERM", async () => {
    const token = randomUUID();
    const authFile = join(home, "tokens.json");
    writeFileSync(authFile, JSON.stringify({ tokens: [{ name: "ops", sha256: hashToken(token), scopes: [{ namespace: "notes", right: "write" }] }] }));
    const t = io();
    const done = run(["--namespace", "notes", "serve", "--port", "0", "--auth", authFile], t.io);
    const url = await t.listening();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const put = await fetch(`${url}/v1/ns/notes/datums`, { method: "POST", headers, body: JSON.stringify({ id: "n/1", content: Buffer.from("hello").toString("base64"), createdAt: 1, causalParent: null, metadata: {} }) });
    expect(put.status).toBe(200);
    expect((await fetch(`${url}/v1/ns/notes/datums/n%2F1`, { headers: { authorization: `Bearer ${token}`, accept: "application/octet-stream" } }).then((r) => r.text()))).toBe("hello");
    // Only the namespaces given are served (here the --namespace one).
    const other = await fetch(`${url}/v1/ns/other/datums`, { headers });
    expect(other.status).toBe(403);
    expect((await fetch(`${url}/v1/ns/notes/datums`)).status).toBe(401);
    process.emit("SIGTERM");
    expect(await done).toBe(0);
    expect(t.err.join("")).toContain("stopped");
    expect(t.err.join("")).not.toContain(token);
  });
});
