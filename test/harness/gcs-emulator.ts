import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  checkPreconditions,
  compareNames,
  crc32cBase64,
  HttpError,
  lastOf,
  parseMultipart,
  preconditionsOf,
  readBody,
  sendError,
  sendJson,
  type Preconditions,
} from "./gcs-emulator-wire.js";

export { crc32c } from "./gcs-emulator-wire.js";

/**
 * A small emulator of the Google Cloud Storage JSON API for the tests (no real emulator can run
 * here: DESIGN.md §8). It speaks what `@google-cloud/storage` 7.x sends: bucket create/get,
 * multipart, media and resumable uploads (single-shot `bytes 0-*\/*` and chunked `308`
 * sessions), `alt=media` downloads with `X-Goog-Hash` (real CRC32C and MD5, which the SDK
 * checks) and `Range`, metadata get/patch, delete, and listings with prefix, delimiter,
 * startOffset/endOffset, maxResults and pageToken. Preconditions (`ifGenerationMatch`,
 * `ifGenerationNotMatch`, `ifMetagenerationMatch`) are checked on every write, at resumable
 * initiation and again when a resumable upload completes. Both URL forms are accepted
 * (`/storage/v1/b/...` and, as with STORAGE_EMULATOR_HOST, `/b/...`).
 *
 * For tests: every request is counted by operation; faults can be injected; objects can be
 * written directly (`putObject`, not counted); `onResumableFinal` runs just before a resumable
 * upload completes (to make its precondition fail there).
 */

export interface EmulatedObject {
  readonly bucket: string;
  readonly name: string;
  readonly data: Buffer;
  readonly generation: string;
  readonly metageneration: string;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly crc32c: string;
  readonly md5Hash: string;
  readonly timeCreated: string;
  readonly updated: string;
}

export interface GcsStats {
  readonly total: number;
  /** Requests by operation, e.g. `{ "objects.list": 1, "objects.download": 50 }`. */
  readonly byOp: Readonly<Record<string, number>>;
}

export interface GcsFault {
  /** HTTP status to answer with; 0 resets the connection instead, -1 never answers. */
  status: number;
  count?: number;
  /** Only this operation, e.g. "upload.multipart"; default any. */
  op?: string;
}

export interface GcsEmulator {
  /** `http://127.0.0.1:PORT`, for `new Storage({ apiEndpoint })`. */
  readonly url: string;
  readonly port: number;
  stats(): GcsStats;
  resetStats(): void;
  fault(fault: GcsFault): void;
  createBucket(name: string): void;
  /** Writes an object directly (not counted). */
  putObject(bucket: string, name: string, data: Uint8Array, options?: { contentType?: string; metadata?: Record<string, string> }): EmulatedObject;
  getObject(bucket: string, name: string): EmulatedObject | undefined;
  names(bucket: string, prefix?: string): string[];
  /** Called (and awaited) right before a resumable upload completes. */
  onResumableFinal: ((bucket: string, name: string) => void | Promise<void>) | null;
  /** True: accept every write whatever its preconditions (a broken service, for tests). */
  ignorePreconditions: boolean;
  stop(): Promise<void>;
}

interface Session {
  readonly bucket: string;
  readonly name: string;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  readonly preconditions: Preconditions;
  readonly chunks: Buffer[];
  received: number;
}

interface ObjectMetadataInput {
  name?: string;
  contentType?: string;
  metadata?: Record<string, string | null>;
}

export async function startGcsEmulator(options: { port?: number } = {}): Promise<GcsEmulator> {
  const buckets = new Map<string, Map<string, EmulatedObject>>();
  const sessions = new Map<string, Session>();
  let stats = { total: 0, byOp: {} as Record<string, number> };
  let faults: { status: number; remaining: number; op: string | null }[] = [];
  let generation = Date.now() * 1000;
  let base = "";

  const check = (obj: EmulatedObject | undefined, p: Preconditions) => {
    if (!emulator.ignorePreconditions) checkPreconditions(obj, p);
  };

  const bucketOrThrow = (name: string) => {
    const b = buckets.get(name);
    if (!b) throw new HttpError(404, `The specified bucket does not exist: ${name}`, "notFound");
    return b;
  };

  const store = (bucket: string, name: string, data: Buffer, contentType: string, metadata: Record<string, string>): EmulatedObject => {
    const objects = bucketOrThrow(bucket);
    const now = new Date().toISOString();
    const prior = objects.get(name);
    const obj: EmulatedObject = {
      bucket,
      name,
      data,
      generation: String(++generation),
      metageneration: "1",
      contentType,
      metadata: { ...metadata },
      crc32c: crc32cBase64(data),
      md5Hash: createHash("md5").update(data).digest("base64"),
      timeCreated: prior?.timeCreated ?? now,
      updated: now,
    };
    objects.set(name, obj);
    return obj;
  };

  const resource = (o: EmulatedObject) => ({
    kind: "storage#object",
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${base}/storage/v1/b/${o.bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `${base}/download/storage/v1/b/${o.bucket}/o/${encodeURIComponent(o.name)}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: "STANDARD",
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: `C${o.generation}${o.metageneration}`,
    timeCreated: o.timeCreated,
    updated: o.updated,
    ...(Object.keys(o.metadata).length > 0 ? { metadata: o.metadata } : {}),
  });

  const cleanMetadata = (m: Record<string, string | null> | undefined): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m ?? {})) if (v !== null && v !== undefined) out[k] = String(v);
    return out;
  };

  /** Verifies an X-Goog-Hash header against the data, when the client sent one. */
  const checkHash = (header: string | string[] | undefined, data: Buffer) => {
    const text = Array.isArray(header) ? header.join(",") : header;
    if (!text) return;
    for (const pair of text.split(",")) {
      const [alg, value] = pair.trim().split(/=(.*)/s) as [string, string];
      const actual = alg === "crc32c" ? crc32cBase64(data) : alg === "md5" ? createHash("md5").update(data).digest("base64") : value;
      if (value !== actual) throw new HttpError(400, `Provided ${alg} hash does not match the uploaded data`, "invalid");
    }
  };

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? "/", base);
    const q = url.searchParams;
    let path = url.pathname;
    const upload = path.startsWith("/upload/storage/v1/");
    if (upload) path = path.slice("/upload/storage/v1".length);
    else if (path.startsWith("/storage/v1/")) path = path.slice("/storage/v1".length);
    const method = req.method ?? "GET";
    const objectAt = path.indexOf("/o/");
    const bucketName = decodeURIComponent(path.split("/")[2] ?? "");
    const objectName = objectAt >= 0 ? decodeURIComponent(path.slice(objectAt + 3)) : null;

    if (upload) {
      if (method === "POST") {
        const kind = q.get("uploadType") ?? "media";
        const body = await readBody(req);
        bucketOrThrow(bucketName);
        if (kind === "multipart") {
          const parts = parseMultipart(body, String(req.headers["content-type"] ?? ""));
          const meta = JSON.parse(parts[0]?.data.toString("utf8") ?? "{}") as ObjectMetadataInput;
          const media = parts[1];
          if (!media) throw new HttpError(400, "multipart upload without media", "invalid");
          const name = q.get("name") ?? meta.name;
          if (!name) throw new HttpError(400, "Required: object name", "required");
          check(buckets.get(bucketName)?.get(name), preconditionsOf(q));
          const type = meta.contentType ?? media.headers["content-type"] ?? "application/octet-stream";
          sendJson(res, 200, resource(store(bucketName, name, Buffer.from(media.data), type, cleanMetadata(meta.metadata))));
          return "upload.multipart";
        }
        if (kind === "media") {
          const name = q.get("name");
          if (!name) throw new HttpError(400, "Required: object name", "required");
          check(buckets.get(bucketName)?.get(name), preconditionsOf(q));
          const type = String(req.headers["content-type"] ?? "application/octet-stream");
          sendJson(res, 200, resource(store(bucketName, name, body, type, {})));
          return "upload.media";
        }
        if (kind === "resumable") {
          const meta = (body.length > 0 ? JSON.parse(body.toString("utf8")) : {}) as ObjectMetadataInput;
          const name = q.get("name") ?? meta.name;
          if (!name) throw new HttpError(400, "Required: object name", "required");
          const preconditions = preconditionsOf(q);
          check(buckets.get(bucketName)?.get(name), preconditions);
          const id = randomBytes(12).toString("hex");
          sessions.set(id, {
            bucket: bucketName,
            name,
            contentType: meta.contentType ?? String(req.headers["x-upload-content-type"] ?? "application/octet-stream"),
            metadata: cleanMetadata(meta.metadata),
            preconditions,
            chunks: [],
            received: 0,
          });
          const location = `${base}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
          res.writeHead(200, { location, "content-length": 0 });
          res.end();
          return "upload.resumable.init";
        }
        throw new HttpError(400, `unknown uploadType ${kind}`, "invalid");
      }
      if (method === "PUT" || method === "POST") {
        const id = q.get("upload_id") ?? "";
        const session = sessions.get(id);
        if (!session) throw new HttpError(404, "No such upload session", "notFound");
        const body = await readBody(req);
        const range = String(req.headers["content-range"] ?? "bytes */*");
        const m = /^bytes (\*|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(range.trim());
        if (!m) throw new HttpError(400, `bad Content-Range ${range}`, "invalid");
        const total = m[4] === "*" ? null : Number(m[4]);
        let final = false;
        if (m[1] !== "*") {
          const start = Number(m[2]);
          if (start !== session.received) throw new HttpError(400, `upload offset ${start}, expected ${session.received}`, "invalid");
          session.chunks.push(body);
          session.received += body.length;
          final = m[3] === "*" || (total !== null && session.received >= total);
        } else {
          final = total !== null && session.received === total;
        }
        if (!final) {
          res.writeHead(308, session.received > 0 ? { range: `bytes=0-${session.received - 1}`, "content-length": 0 } : { "content-length": 0 });
          res.end();
          return "upload.resumable.put";
        }
        const data = Buffer.concat(session.chunks);
        checkHash(req.headers["x-goog-hash"], data);
        if (emulator.onResumableFinal) await emulator.onResumableFinal(session.bucket, session.name);
        try {
          check(buckets.get(session.bucket)?.get(session.name), session.preconditions);
        } finally {
          sessions.delete(id);
        }
        sendJson(res, 200, resource(store(session.bucket, session.name, data, session.contentType, session.metadata)));
        return "upload.resumable.put";
      }
      if (method === "DELETE") {
        sessions.delete(q.get("upload_id") ?? "");
        res.writeHead(499, { "content-length": 0 });
        res.end();
        return "upload.resumable.cancel";
      }
      throw new HttpError(405, `method ${method} not allowed here`, "invalid");
    }

    if (path === "/b" || path === "/b/") {
      if (method !== "POST") throw new HttpError(405, "only POST creates buckets here", "invalid");
      const meta = JSON.parse((await readBody(req)).toString("utf8") || "{}") as { name?: string };
      const name = meta.name ?? q.get("name") ?? "";
      if (buckets.has(name)) throw new HttpError(409, "Your previous request to create the named bucket succeeded and you already own it.", "conflict");
      buckets.set(name, new Map());
      sendJson(res, 200, { kind: "storage#bucket", id: name, name, location: "US", storageClass: "STANDARD" });
      return "buckets.insert";
    }

    if (objectName === null) {
      const listing = path.endsWith("/o") || path.endsWith("/o/");
      if (!listing) {
        if (method === "GET") {
          bucketOrThrow(bucketName);
          sendJson(res, 200, { kind: "storage#bucket", id: bucketName, name: bucketName, location: "US", storageClass: "STANDARD" });
          return "buckets.get";
        }
        if (method === "DELETE") {
          bucketOrThrow(bucketName);
          buckets.delete(bucketName);
          res.writeHead(204).end();
          return "buckets.delete";
        }
        throw new HttpError(405, `method ${method} not allowed on a bucket`, "invalid");
      }
      const objects = bucketOrThrow(bucketName);
      const prefix = q.get("prefix") ?? "";
      const delimiter = q.get("delimiter") ?? "";
      const startOffset = q.get("startOffset");
      const endOffset = q.get("endOffset");
      const maxResults = Math.min(Number(q.get("maxResults") ?? 1000) || 1000, 1000);
      const token = q.get("pageToken");
      const after = token ? Buffer.from(token, "base64url").toString("utf8") : null;
      const names = [...objects.keys()].filter((n) => n.startsWith(prefix)).sort(compareNames);
      const items: EmulatedObject[] = [];
      const prefixes: string[] = [];
      let next: string | undefined;
      for (const name of names) {
        if (startOffset !== null && compareNames(name, startOffset) < 0) continue;
        if (endOffset !== null && compareNames(name, endOffset) >= 0) continue;
        let entry = name;
        if (delimiter) {
          const i = name.indexOf(delimiter, prefix.length);
          if (i >= 0) entry = name.slice(0, i + delimiter.length);
        }
        if (after !== null && compareNames(entry, after) <= 0) continue;
        if (entry !== name && prefixes[prefixes.length - 1] === entry) continue;
        if (items.length + prefixes.length >= maxResults) {
          next = Buffer.from(items.length + prefixes.length > 0 ? lastOf(items, prefixes) : entry, "utf8").toString("base64url");
          break;
        }
        if (entry === name) items.push(objects.get(name) as EmulatedObject);
        else prefixes.push(entry);
      }
      sendJson(res, 200, {
        kind: "storage#objects",
        ...(items.length > 0 ? { items: items.map(resource) } : {}),
        ...(prefixes.length > 0 ? { prefixes } : {}),
        ...(next ? { nextPageToken: next } : {}),
      });
      return "objects.list";
    }

    const objects = bucketOrThrow(bucketName);
    const obj = objects.get(objectName);
    const preconditions = preconditionsOf(q);
    if (method === "GET") {
      if (!obj) throw new HttpError(404, `No such object: ${bucketName}/${objectName}`, "notFound");
      check(obj, preconditions);
      if (q.get("alt") !== "media") {
        sendJson(res, 200, resource(obj));
        return "objects.get";
      }
      const headers: Record<string, string> = {
        "content-type": obj.contentType,
        "x-goog-hash": `crc32c=${obj.crc32c},md5=${obj.md5Hash}`,
        "x-goog-generation": obj.generation,
        "x-goog-metageneration": obj.metageneration,
        "x-goog-stored-content-length": String(obj.data.length),
        "x-goog-stored-content-encoding": "identity",
        etag: `"C${obj.generation}${obj.metageneration}"`,
      };
      const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ""));
      if (range && obj.data.length > 0) {
        const start = range[1] === "" ? Math.max(0, obj.data.length - Number(range[2])) : Number(range[1]);
        const end = range[1] !== "" && range[2] !== "" ? Math.min(Number(range[2]), obj.data.length - 1) : obj.data.length - 1;
        const slice = obj.data.subarray(start, end + 1);
        res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${obj.data.length}`, "content-length": slice.length });
        res.end(slice);
      } else {
        res.writeHead(200, { ...headers, "content-length": obj.data.length });
        res.end(obj.data);
      }
      return "objects.download";
    }
    if (method === "DELETE") {
      if (!obj) throw new HttpError(404, `No such object: ${bucketName}/${objectName}`, "notFound");
      check(obj, preconditions);
      objects.delete(objectName);
      res.writeHead(204).end();
      return "objects.delete";
    }
    if (method === "PATCH" || method === "PUT") {
      if (!obj) throw new HttpError(404, `No such object: ${bucketName}/${objectName}`, "notFound");
      const patch = JSON.parse((await readBody(req)).toString("utf8") || "{}") as ObjectMetadataInput;
      check(obj, preconditions);
      const metadata: Record<string, string | null> = { ...obj.metadata, ...(patch.metadata ?? {}) };
      const updated: EmulatedObject = {
        ...obj,
        contentType: patch.contentType ?? obj.contentType,
        metadata: cleanMetadata(metadata),
        metageneration: String(Number(obj.metageneration) + 1),
        updated: new Date().toISOString(),
      };
      objects.set(objectName, updated);
      sendJson(res, 200, resource(updated));
      return "objects.patch";
    }
    throw new HttpError(405, `method ${method} not allowed on an object`, "invalid");
  }

  const opGuess = (req: IncomingMessage): string => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname.startsWith("/upload/")) {
      if (url.searchParams.has("upload_id")) return "upload.resumable.put";
      return `upload.${url.searchParams.get("uploadType") === "resumable" ? "resumable.init" : (url.searchParams.get("uploadType") ?? "media")}`;
    }
    if (url.pathname.includes("/o/")) return url.searchParams.get("alt") === "media" ? "objects.download" : `objects.${(req.method ?? "GET").toLowerCase()}`;
    if (/\/o\/?$/.test(url.pathname)) return "objects.list";
    return `buckets.${(req.method ?? "GET").toLowerCase()}`;
  };

  const server: Server = createServer((req, res) => {
    const op = opGuess(req);
    stats.total++;
    stats.byOp[op] = (stats.byOp[op] ?? 0) + 1;
    const fault = faults.find((f) => f.remaining > 0 && (f.op === null || f.op === op));
    if (fault) {
      fault.remaining--;
      if (fault.status === 0) {
        req.socket.destroy();
        return;
      }
      if (fault.status < 0) return; // never answers: the client's timeout must end the request
      void readBody(req).then(() => sendError(res, fault.status, "injected by the test harness", fault.status === 429 ? "rateLimitExceeded" : "backendError"));
      return;
    }
    route(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof HttpError) sendError(res, error.status, error.message, error.reason);
      else sendError(res, 500, error instanceof Error ? error.message : String(error), "backendError");
    });
  });
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;

  const emulator: GcsEmulator = {
    url: base,
    port,
    stats: () => ({ total: stats.total, byOp: { ...stats.byOp } }),
    resetStats() {
      stats = { total: 0, byOp: {} };
      faults = [];
    },
    fault(f) {
      faults.push({ status: f.status, remaining: f.count ?? 1, op: f.op ?? null });
    },
    createBucket(name) {
      if (!buckets.has(name)) buckets.set(name, new Map());
    },
    putObject(bucket, name, data, opts = {}) {
      return store(bucket, name, Buffer.from(data), opts.contentType ?? "application/octet-stream", opts.metadata ?? {});
    },
    getObject: (bucket, name) => buckets.get(bucket)?.get(name),
    names: (bucket, prefix = "") => [...(buckets.get(bucket)?.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort(compareNames),
    onResumableFinal: null,
    ignorePreconditions: false,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return emulator;
}
