"use strict";
/**
 * Runs s3rver@3.7.1 for the tests, in its own process under `node --openssl-legacy-provider`
 * (s3rver encrypts continuation tokens with DES). A middleware placed first in its Koa stack
 * makes it fit for testing the append-only law and for counting requests:
 *
 * - decodes `aws-chunked` request bodies (the SDK's stream uploads), which s3rver would store
 *   with the chunk framing left in;
 * - answers `If-None-Match: *` on an existing key with 412, a stale `If-Match` with 412 and an
 *   `If-Match` on a missing key with 404 (PUT, CompleteMultipartUpload, DELETE, GET, HEAD);
 * - makes an acknowledged PUT visible whole (see `putObjectWhole`);
 * - serialises requests per key, so check-then-write is atomic, and runs deletes and listings
 *   alone (s3rver walks and prunes directories on disk, which races with concurrent writes);
 * - counts requests by S3 operation, injects faults, bulk-loads objects, and can switch the
 *   precondition checks off to play a server that ignores them (control routes under
 *   `/__harness/`, not counted).
 *
 * Usage: node --openssl-legacy-provider s3rver-process.cjs <directory> [port]
 * Prints one JSON line `{"port": N}` once listening. Exits when stdin closes.
 */
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { Readable } = require("node:stream");
const S3rver = require("s3rver");

const [directory, portArg] = process.argv.slice(2);
if (!directory) {
  process.stderr.write("usage: s3rver-process.cjs <directory> [port]\n");
  process.exit(2);
}

/** FIFO lock: shared holders run together, an exclusive holder runs alone. */
class Gate {
  constructor() {
    this.active = 0;
    this.exclusive = false;
    this.queue = [];
  }
  run(exclusive, fn) {
    return new Promise((resolve, reject) => {
      this.queue.push({
        exclusive,
        start: () => {
          Promise.resolve()
            .then(fn)
            .then(resolve, reject)
            .finally(() => {
              if (exclusive) this.exclusive = false;
              else this.active--;
              this.pump();
            });
        },
      });
      this.pump();
    });
  }
  pump() {
    while (this.queue.length > 0 && !this.exclusive) {
      const head = this.queue[0];
      if (head.exclusive) {
        if (this.active > 0) return;
        this.exclusive = true;
        this.queue.shift();
        head.start();
        return;
      }
      this.active++;
      this.queue.shift();
      head.start();
    }
  }
}

const keyTails = new Map();
/** Runs `fn` after every earlier holder of `key` has finished. */
function withKeyLock(key, fn) {
  const prev = keyTails.get(key) || Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  keyTails.set(key, tail);
  tail.then(() => {
    if (keyTails.get(key) === tail) keyTails.delete(key);
  });
  return run;
}

function operation(ctx, key) {
  const q = ctx.query;
  const m = ctx.method;
  if (ctx.path === "/") return "ListBuckets";
  if (!key) {
    if (m === "GET") return "list-type" in q || Object.keys(q).length === 0 || "prefix" in q ? "ListObjects" : "GetBucketConfig";
    if (m === "HEAD") return "HeadBucket";
    if (m === "PUT") return "CreateBucket";
    if (m === "DELETE") return "DeleteBucket";
    if (m === "POST" && "delete" in q) return "DeleteObjects";
    return `${m}Bucket`;
  }
  if (m === "GET") return "GetObject";
  if (m === "HEAD") return "HeadObject";
  if (m === "PUT") {
    if ("partNumber" in q && "uploadId" in q) return "UploadPart";
    if (ctx.get("x-amz-copy-source")) return "CopyObject";
    return "PutObject";
  }
  if (m === "POST" && "uploads" in q) return "CreateMultipartUpload";
  if (m === "POST" && "uploadId" in q) return "CompleteMultipartUpload";
  if (m === "DELETE" && "uploadId" in q) return "AbortMultipartUpload";
  if (m === "DELETE") return "DeleteObject";
  return `${m}Object`;
}

function parsePath(ctx) {
  const parts = ctx.path.split("/").slice(1);
  const bucket = decodeURIComponent(parts[0] || "");
  const key = parts.length > 1 ? parts.slice(1).map(decodeURIComponent).join("/") : "";
  return { bucket, key };
}

function sendError(ctx, status, code, message) {
  ctx.status = status;
  ctx.set("x-amz-request-id", "harness");
  if (ctx.method === "HEAD") {
    ctx.body = null;
    return;
  }
  ctx.type = "application/xml";
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>harness</RequestId></Error>`;
}

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `<hex size>[;ext]\r\n<data>\r\n` … `0\r\n<trailers>\r\n\r\n` → the data. */
function decodeAwsChunked(raw) {
  const out = [];
  let pos = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", pos);
    if (eol < 0) throw new Error("aws-chunked body without a chunk header");
    const size = parseInt(raw.subarray(pos, eol).toString("latin1").split(";")[0], 16);
    if (!Number.isFinite(size)) throw new Error("aws-chunked body with a bad chunk size");
    pos = eol + 2;
    if (size === 0) break;
    out.push(raw.subarray(pos, pos + size));
    pos += size + 2;
  }
  return Buffer.concat(out);
}

function isAwsChunked(ctx) {
  return /aws-chunked/i.test(ctx.get("content-encoding")) || ctx.get("x-amz-content-sha256").startsWith("STREAMING-");
}

async function decodeBody(ctx) {
  const body = decodeAwsChunked(await readAll(ctx.req));
  const headers = ctx.req.headers;
  headers["content-length"] = String(body.length);
  delete headers["x-amz-decoded-content-length"];
  delete headers["x-amz-trailer"];
  const encodings = String(headers["content-encoding"] || "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s && s.toLowerCase() !== "aws-chunked");
  if (encodings.length > 0) headers["content-encoding"] = encodings.join(", ");
  else delete headers["content-encoding"];
  ctx.req = Readable.from([body]);
}

async function currentEtag(store, bucket, key) {
  try {
    const meta = await store.getMetadata(bucket, key);
    return String(meta.etag).replace(/"/g, "");
  } catch (error) {
    if (error && error.code === "ENOENT") return null;
    throw error;
  }
}

const CONDITIONAL_WRITES = new Set(["PutObject", "CompleteMultipartUpload", "DeleteObject"]);

function harness(server) {
  const stats = { total: 0, byOp: {} };
  let faults = [];
  let conditionals = true; // false: behave like plain s3rver, which ignores If-None-Match/If-Match
  const gate = new Gate();

  async function control(ctx) {
    const route = ctx.path.slice("/__harness/".length);
    if (route === "stats") {
      ctx.body = JSON.stringify(stats);
      ctx.type = "application/json";
      return;
    }
    if (route === "reset") {
      stats.total = 0;
      stats.byOp = {};
      faults = [];
      conditionals = true;
      ctx.status = 204;
      return;
    }
    if (route === "fault") {
      const f = JSON.parse((await readAll(ctx.req)).toString("utf8"));
      faults.push({ status: f.status, code: f.code, remaining: f.count ?? 1, op: f.op ?? null });
      ctx.status = 204;
      return;
    }
    if (route === "conditionals") {
      conditionals = ctx.query.enabled !== "false";
      ctx.status = 204;
      return;
    }
    if (route === "bucket") {
      await server.store.putBucket(String(ctx.query.name));
      ctx.status = 204;
      return;
    }
    if (route === "bulk") {
      // Body: JSON lines of {"key": …, "body": base64}. Written straight to s3rver's store.
      const bucket = String(ctx.query.bucket);
      const lines = (await readAll(ctx.req)).toString("utf8").split("\n").filter(Boolean);
      // s3rver 3.7.1's file layout: <key>._S3rver_object, .md5 beside it, and the metadata JSON.
      await gate.run(true, () => {
        const made = new Set();
        for (const line of lines) {
          const { key, body } = JSON.parse(line);
          const content = Buffer.from(body, "base64");
          const objectPath = server.store.getResourcePath(bucket, key, "object");
          const dir = path.dirname(objectPath);
          if (!made.has(dir)) {
            fs.mkdirSync(dir, { recursive: true });
            made.add(dir);
          }
          fs.writeFileSync(objectPath, content);
          fs.writeFileSync(`${objectPath}.md5`, crypto.createHash("md5").update(content).digest("hex"));
          fs.writeFileSync(server.store.getResourcePath(bucket, key, "metadata.json"), '{"content-type":"binary/octet-stream"}');
        }
      });
      ctx.body = JSON.stringify({ written: lines.length });
      ctx.type = "application/json";
      return;
    }
    ctx.status = 404;
  }

  return async function dgentHarness(ctx, next) {
    if (ctx.path.startsWith("/__harness/")) return control(ctx);
    const { bucket, key } = parsePath(ctx);
    const op = operation(ctx, key);
    stats.total++;
    stats.byOp[op] = (stats.byOp[op] || 0) + 1;
    const fault = faults.find((f) => f.remaining > 0 && (f.op === null || f.op === op));
    if (fault) {
      fault.remaining--;
      // Drain the body so the client sees the response, not a reset connection.
      if (!["GET", "HEAD"].includes(ctx.method)) await readAll(ctx.req);
      if (fault.status === 0) {
        ctx.req.socket.destroy(); // a network failure: connection reset
        return;
      }
      if (fault.status < 0) {
        // A server that never answers: the client's timeout must end the request.
        await new Promise((resolve) => ctx.req.socket.once("close", resolve));
        return;
      }
      return sendError(ctx, fault.status, fault.code || "InternalError", "injected by the test harness");
    }
    const exclusive = op === "DeleteObject" || op === "ListObjects" || op === "DeleteObjects" || op === "DeleteBucket";
    return gate.run(exclusive, async () => {
      if (!key) return next();
      return withKeyLock(`${bucket}/${key}`, async () => {
        if ((op === "PutObject" || op === "UploadPart") && isAwsChunked(ctx)) await decodeBody(ctx);
        const ifNoneMatch = ctx.get("if-none-match");
        const ifMatch = ctx.get("if-match");
        const checks = !conditionals ? false : CONDITIONAL_WRITES.has(op) ? ifNoneMatch === "*" || ifMatch : (op === "GetObject" || op === "HeadObject") && ifMatch;
        if (checks) {
          const etag = await currentEtag(server.store, bucket, key);
          if (ifNoneMatch === "*" && etag !== null && CONDITIONAL_WRITES.has(op)) {
            if (op === "CompleteMultipartUpload") await readAll(ctx.req);
            return sendError(ctx, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
          }
          if (ifMatch) {
            if (etag === null) return sendError(ctx, 404, "NoSuchKey", "The specified key does not exist.");
            const wanted = ifMatch.split(",").map((s) => s.trim().replace(/"/g, ""));
            if (!wanted.includes("*") && !wanted.includes(etag)) {
              return sendError(ctx, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
            }
          }
        }
        return next();
      });
    });
  };
}

const server = new S3rver({
  address: "127.0.0.1",
  port: Number(portArg || 0),
  directory,
  silent: true,
  vhostBuckets: false,
});

/**
 * s3rver 3.7.1 answers a PUT before the object's file is flushed (it resolves when its hashing
 * stream finishes, not the file stream), and writes the file in place. A read right after an
 * acknowledged write could then see a truncated body. S3 makes a write visible whole once it is
 * acknowledged: write to a temporary file, then rename it over the object.
 */
let tmpSeq = 0;
server.store.putObject = async function putObjectWhole(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, "object");
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const content = Buffer.isBuffer(object.content) ? object.content : await readAll(object.content);
  const md5 = crypto.createHash("md5").update(content).digest("hex");
  const tmp = `${objectPath}.${process.pid}-${tmpSeq++}.partial`;
  await fs.promises.writeFile(tmp, content);
  await fs.promises.rename(tmp, objectPath);
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};
server.middleware.unshift(harness(server));
server.on("error", () => undefined);
server.run().then(
  (address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`),
  (error) => {
    process.stderr.write(`s3rver failed to start: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
