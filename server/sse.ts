/**
 * `GET /v1/ns/:ns/changes`: the change stream as server-sent events. Resumes after
 * `Last-Event-ID` (or `?after=`) from the change log, then continues live; sends a comment as a
 * heartbeat; drops a client whose unsent events pass `maxQueue` with a final `dropped` event.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { dgentError } from "../core/errors.js";
import { matches, type Change, type Feed, type ChangeFilter } from "./changes.js";

export interface SseOptions {
  /** Milliseconds between heartbeat comments (default 15 000). */
  readonly heartbeatMs: number;
  /** Events a client may have waiting before it is dropped (default 1 000). */
  readonly maxQueue: number;
}

export interface SseQuery {
  readonly prefix?: string;
  readonly tag?: string | string[];
  readonly after?: string;
}

/** The filter of a request: `?prefix=` and `?tag=key=value` (repeatable). */
export function filterOf(query: SseQuery): ChangeFilter {
  const tags: [string, string][] = [];
  for (const t of query.tag === undefined ? [] : Array.isArray(query.tag) ? query.tag : [query.tag]) {
    const eq = t.indexOf("=");
    if (eq <= 0) throw dgentError("DGENT_INVALID_OPTIONS", "tag takes key=value", { unit: "server", details: { field: "tag" } });
    tags.push([t.slice(0, eq), t.slice(eq + 1)]);
  }
  return { prefix: query.prefix ?? "", tags };
}

/** Where to resume: `Last-Event-ID`, else `?after=`, else live only (`null`). */
export function resumeAfter(request: FastifyRequest, query: SseQuery): number | null {
  const header = request.headers["last-event-id"];
  const raw = typeof header === "string" && header !== "" ? header : query.after;
  if (raw === undefined) return null;
  if (!/^\d{1,15}$/.test(raw)) throw dgentError("DGENT_INVALID_OPTIONS", "Last-Event-ID (or after) must be an event id this stream sent", { unit: "server", details: { field: "after" } });
  return Number(raw);
}

const frame = (change: Change) => `id: ${change.seq}\nevent: ${change.op}\ndata: ${JSON.stringify(change)}\n\n`;

/** Streams `feed` to one client until it leaves, is dropped, or the server closes. */
export async function stream(request: FastifyRequest, reply: FastifyReply, feed: Feed, filter: ChangeFilter, after: number | null, options: SseOptions, onClose: (end: () => void) => () => void): Promise<void> {
  await feed.ready();
  const res = reply.raw;
  const queue: Change[] = [];
  let sent = after ?? 0;
  let replaying = true;
  let blocked = false;
  let closed = false;

  const finish = () => {
    if (closed) return;
    closed = true;
    unsubscribe();
    clearInterval(heartbeat);
    forget();
    res.end();
  };
  const drop = (reason: string) => {
    if (closed) return;
    const body = { error: { code: "DGENT_STREAM_OVERFLOW", message: reason, retryable: true, details: { lastEventId: sent } } };
    res.write(`event: dropped\ndata: ${JSON.stringify(body)}\n\n`);
    finish();
  };
  const send = (change: Change) => {
    if (change.seq <= sent) return;
    sent = change.seq;
    if (!matches(filter, change)) return;
    if (!res.write(frame(change))) blocked = true;
  };
  const pump = () => {
    while (!closed && !blocked && !replaying && queue.length > 0) send(queue.shift() as Change);
  };
  const { watermark, unsubscribe } = feed.subscribe((change) => {
    if (closed) return;
    if (queue.length >= options.maxQueue) return drop(`this client fell more than ${options.maxQueue} events behind; reconnect with Last-Event-ID ${sent} to resume`);
    queue.push(change);
    pump();
  });
  const forget = onClose(finish);
  res.on("close", finish);
  res.on("drain", () => {
    blocked = false;
    pump();
  });

  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write(`retry: 1000\n: dgent change stream of ${feed.namespace}, last event ${watermark}\n\n`);
  const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), options.heartbeatMs);
  heartbeat.unref();

  try {
    if (after === null) sent = watermark;
    else if (after < watermark) {
      const oldest = await feed.oldest();
      if (oldest > after + 1) {
        res.write(`event: reset\ndata: ${JSON.stringify({ error: { code: "DGENT_STREAM_OVERFLOW", message: `events after ${after} are no longer kept (the oldest is ${oldest}); read the namespace again, then follow from here`, retryable: false, details: { oldest, lastEventId: watermark } } })}\n\n`);
        sent = watermark;
      } else {
        for await (const change of feed.replay(after, watermark)) {
          if (closed) return;
          send(change);
          if (blocked) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
        }
      }
      sent = Math.max(sent, watermark);
    }
  } catch {
    drop("the change log could not be read; reconnect to resume");
    return;
  }
  replaying = false;
  pump();
}
