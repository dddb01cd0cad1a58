/**
 * The inspector web page of `dgent serve`, at `/inspector/`: a static page (HTML, CSS and one
 * script, no build step, no dependency) that calls the server's own REST API with the token the
 * user types (kept in sessionStorage). Registered by `createServer` when `inspector: true`; this
 * module owns every route under `/inspector`. See server/inspector/README.md.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { dgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";
import { accessStatus } from "../observability.js";

export interface InspectorOptions {
  /** The stores the server serves, by namespace. */
  readonly stores: ReadonlyMap<string, Store>;
}

const ASSETS = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
} as const;
type Asset = keyof typeof ASSETS;

/** The page may load only its own files and call only its own server. */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/** The assets folder: beside this module in the sources, or in the package's `server/inspector/assets` next to `dist/`. */
function assetsDir(): string {
  for (const rel of ["./assets/", "../../../server/inspector/assets/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw dgentError("DGENT_MISSING_DEPENDENCY", "the inspector's page (server/inspector/assets) is missing from this installation", { unit: "server" });
}

let cached: ReadonlyMap<Asset, Buffer> | null = null;
function assets(): ReadonlyMap<Asset, Buffer> {
  if (cached === null) {
    const dir = assetsDir();
    cached = new Map((Object.keys(ASSETS) as Asset[]).map((name) => [name, readFileSync(`${dir}${name}`)]));
  }
  return cached;
}

export function registerInspector(app: FastifyInstance, _store: Store | null, opts: InspectorOptions): void {
  const files = assets();
  const send = (reply: FastifyReply, name: Asset) => reply.headers(SECURITY_HEADERS).type(ASSETS[name]).send(files.get(name));

  app.get("/inspector", async (_request, reply) => reply.redirect("/inspector/", 302));
  app.get("/inspector/", async (_request, reply) => send(reply, "index.html"));
  app.get("/inspector/app.js", async (_request, reply) => send(reply, "app.js"));
  app.get("/inspector/style.css", async (_request, reply) => send(reply, "style.css"));

  // The namespaces the request's token may read, decided by the API's own access control. A
  // missing or wrong token gets the API's 401; a token that may read none gets an empty list.
  app.get("/inspector/namespaces", async (request, reply) => {
    void reply.header("cache-control", "no-store");
    const readable: string[] = [];
    for (const ns of [...opts.stores.keys()].sort()) {
      const refusal = await accessStatus(app, request, ns);
      if (refusal === null) readable.push(ns);
      else if (refusal.status !== 403) return reply.code(refusal.status).headers(refusal.headers).send(refusal.body);
    }
    return { namespaces: readable };
  });
}
