/** A small SSE reader for tests: connects with node:http, parses events as they arrive. */
import { request, type IncomingMessage } from "node:http";

export interface SseEvent {
  readonly id: string | null;
  readonly event: string;
  readonly data: string;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  ended = false;
  response: IncomingMessage | null = null;
  #buffer = "";
  #waiters: Array<() => void> = [];
  #req: ReturnType<typeof request> | null = null;

  static async connect(url: string, headers: Record<string, string> = {}, paused = false): Promise<SseClient> {
    const client = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { headers }, (res) => {
        client.response = res;
        res.setEncoding("utf8");
        if (paused) res.pause();
        res.on("data", (chunk: string) => client.#feed(chunk));
        res.on("end", () => {
          client.ended = true;
          client.#wake();
        });
        res.on("error", () => undefined);
        resolve();
      });
      req.on("error", reject);
      req.end();
      client.#req = req;
    });
    return client;
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    let at: number;
    while ((at = this.#buffer.indexOf("\n\n")) >= 0) {
      const block = this.#buffer.slice(0, at);
      this.#buffer = this.#buffer.slice(at + 2);
      let id: string | null = null;
      let event = "message";
      const data: string[] = [];
      let isComment = true;
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        isComment = false;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") id = value;
        else if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (!isComment && data.length > 0) this.events.push({ id, event, data: data.join("\n") });
    }
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves when `done()` holds (checked after every chunk); rejects if the stream ends first. */
  async until(done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.ended) throw new Error(`the stream ended first; events: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  resume(): void {
    this.response?.resume();
  }

  close(): void {
    this.#req?.destroy();
    this.response?.destroy();
  }
}

/** POSTs a datum whose content is its id (createdAt 1) to `ns` over HTTP; resolves once it is stored (200). */
export async function putOverHttp(url: string, ns: string, id: string, metadata: Record<string, string> = {}): Promise<void> {
  const r = await fetch(`${url}/v1/ns/${ns}/datums`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id, content: Buffer.from(id).toString("base64"), createdAt: 1, causalParent: null, metadata }),
  });
  if (r.status !== 200) throw new Error(`put ${id}: ${r.status} ${await r.text()}`);
}

/** The numbered events a client received (comments, resets and drops left out). */
export const numbered = (c: SseClient): SseEvent[] => c.events.filter((e) => e.id !== null);
