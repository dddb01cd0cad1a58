import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryAdapter } from "../adapters/memory/index.js";
import { createStore, type Store } from "../core/store.js";
import { createServer, type DgentServer } from "./index.js";

// The request timeout, for real: a client that starts a request and never finishes it is answered
// 408 DGENT_REQUEST_TIMEOUT and disconnected. The test waits for the server's answer and the
// connection's end (events), never for a time; the timeout is small so Node's check (every
// quarter of it, see index.ts) runs soon.
let server: DgentServer;
let store: Store;
let port = 0;

beforeAll(async () => {
  store = createStore({ tiers: [memoryAdapter()], namespace: "slow" });
  server = await createServer(store, { auth: null, requestTimeoutMs: 300 });
  port = Number(new URL(await server.listen()).port);
});
afterAll(async () => {
  await server.close();
  await store.close();
});

/** Sends `head` (and nothing more), then collects everything the server sends until it closes the connection. */
function stall(head: string): Promise<{ text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve({ text: Buffer.concat(chunks).toString("utf8"), socket }));
    socket.write(head);
  });
}

function parse(text: string): { status: number; headers: string; body: { error: { code: string; retryable: boolean; details?: Record<string, unknown> } } } {
  const at = text.indexOf("\r\n\r\n");
  const head = text.slice(0, at);
  return { status: Number(head.split(" ")[1]), headers: head.toLowerCase(), body: JSON.parse(text.slice(at + 4)) };
}

describe("request timeout", () => {
  it("a body that never finishes is answered 408 DGENT_REQUEST_TIMEOUT and the connection closed; nothing is stored", async () => {
    const body = JSON.stringify({ id: "never", content: "", createdAt: 1, causalParent: null, metadata: {} });
    const { text, socket } = await stall(
      `POST /v1/ns/slow/datums HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length + 100}\r\n\r\n${body}`,
    );
    const answer = parse(text);
    expect(answer.status).toBe(408);
    expect(answer.headers).toContain("connection: close");
    expect(answer.body.error).toMatchObject({ code: "DGENT_REQUEST_TIMEOUT", retryable: true, details: { timeoutMs: 300 } });
    expect(socket.destroyed).toBe(true);
    expect(await store.get("never")).toBeNull();
  });

  it("headers that never finish get the same answer", async () => {
    const { text } = await stall("GET /v1/ns/slow/datums HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n");
    const answer = parse(text);
    expect(answer.status).toBe(408);
    expect(answer.body.error.code).toBe("DGENT_REQUEST_TIMEOUT");
  });

  it("a request sent in full is answered as usual, and the server keeps serving after timeouts", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/ns/slow/datums`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "quick", content: Buffer.from("hi").toString("base64"), createdAt: 1, causalParent: null, metadata: {} }),
    });
    expect(res.status).toBe(200);
    expect((await store.get("quick"))?.id).toBe("quick");
  });

  it("requestTimeoutMs must be a whole number ≥ 1", async () => {
    await expect(createServer(store, { auth: null, requestTimeoutMs: 0 })).rejects.toMatchObject({ code: "DGENT_INVALID_OPTIONS" });
  });
});
