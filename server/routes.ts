/**
 * The versioned REST routes of `dgent serve`, one table: each entry is a Fastify route and an
 * OpenAPI operation (see `openapi.ts`). Every route lives under `/v1/ns/:ns` and names the right
 * it needs; access control runs before the body is read.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Datum } from "../core/datum.js";
import { dgentError } from "../core/errors.js";
import type { ListOptions } from "../core/protocol.js";
import type { QueryOptions } from "../core/query.js";
import type { RefExpectation, TxOp } from "../core/refs.js";
import type { Store } from "../core/store.js";
import type { Right } from "./auth.js";
import type { Feed } from "./changes.js";
import { search } from "./search.js";
import { filterOf, resumeAfter, stream, type SseOptions, type SseQuery } from "./sse.js";
import { fromWire, itemToWire, toWire, txOpFromWire } from "./wire.js";
import * as S from "./schemas.js";

export interface Served {
  readonly store: Store;
  readonly feed: Feed | null;
}

export interface RouteContext {
  readonly sse: SseOptions;
  /** Registers a stream to end when the server closes; returns the unregister. */
  readonly onClose: (end: () => void) => () => void;
}

type Params = { ns: string; id?: string; name?: string };
type Handler = (served: Served, request: FastifyRequest<{ Params: Params }>, reply: FastifyReply, ctx: RouteContext) => Promise<unknown>;

export interface RouteSpec {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  /** Below `/v1/ns/:ns`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly right: Right;
  readonly query?: Readonly<Record<string, S.JsonSchema>>;
  readonly body?: S.JsonSchema;
  /** Request bodies of other media types (`application/octet-stream`). */
  readonly rawBody?: boolean;
  /** The success answer's schema (200), or a media type other than JSON. */
  readonly response: S.JsonSchema | { readonly mediaType: string; readonly description: string };
  readonly handler: Handler;
}

type Q = Record<string, string | string[] | undefined>;
const q = (request: FastifyRequest) => request.query as Q;
const body = (request: FastifyRequest): Record<string, unknown> => {
  const b = request.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== "object" || Array.isArray(b)) throw dgentError("DGENT_INVALID_OPTIONS", "the request body must be a JSON object", { unit: "server" });
  return b as Record<string, unknown>;
};
const id = (request: FastifyRequest<{ Params: Params }>) => request.params.id as string;
const name = (request: FastifyRequest<{ Params: Params }>) => request.params.name as string;

/** A query-string number: kept as given when it is not one, so the store refuses it with its own code. */
function num(value: string | string[] | undefined): number | string | undefined {
  if (value === undefined || Array.isArray(value)) return value as undefined;
  return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
}

function notFound(what: string): Error {
  return dgentError("DGENT_NOT_FOUND", `${what} not found`, { unit: "server" });
}

function expectation(value: unknown): RefExpectation | undefined {
  return value === undefined || value === null ? undefined : (value as RefExpectation);
}

const idOut = (id: string) => ({ id });

const pageOut = (page: { items: readonly unknown[]; cursor: string | null }) => ({ items: page.items.map((i) => itemToWire(i as Datum)), cursor: page.cursor });

async function recordRef(served: Served, op: "setRef" | "deleteRef", key: string, target?: string, version?: number): Promise<void> {
  await served.feed?.record({ op, key, ...(target !== undefined ? { target, version } : {}) });
}

export const ROUTES: readonly RouteSpec[] = [
  {
    method: "GET", path: "/datums", operationId: "list", summary: "Newest first: ids starting with prefix, createdAt > after, at most limit", right: "read",
    query: { prefix: S.str, after: S.num, limit: S.int },
    response: S.items(S.datum),
    handler: async ({ store }, request) => {
      const { prefix, after, limit } = q(request);
      const options: Record<string, unknown> = {};
      if (prefix !== undefined) options.prefix = prefix;
      if (after !== undefined) options.after = num(after);
      if (limit !== undefined) options.limit = num(limit);
      return { items: (await store.list(options as ListOptions)).map(toWire) };
    },
  },
  {
    method: "POST", path: "/datums", operationId: "put", summary: "Store a datum (content as base64); an identical datum already stored is a no-op", right: "write",
    body: S.datum, response: S.idOut,
    // Not async (one promise less per put): a body that is no datum throws here, which Fastify answers as it does a rejection.
    handler: ({ store }, request) => store.put(fromWire(request.body)).then(idOut),
  },
  {
    method: "POST", path: "/datums/batch", operationId: "putMany", summary: "Store several datums; all or nothing where the tier is transactional", right: "write",
    body: S.obj({ datums: S.arr(S.datum) }, ["datums"]), response: S.obj({ ids: S.arr(S.str) }, ["ids"]),
    handler: async ({ store }, request) => {
      const datums = body(request).datums;
      if (!Array.isArray(datums)) throw dgentError("DGENT_INVALID_DATUM", "datums must be an array", { unit: "server" });
      return { ids: await store.putMany(datums.map(fromWire)) };
    },
  },
  {
    method: "PUT", path: "/datums/:id", operationId: "putRaw", summary: "Store raw bytes under an id; createdAt and parent in the query, tags as JSON in x-dgent-metadata", right: "write",
    query: { createdAt: S.num, parent: S.str }, rawBody: true, response: S.idOut,
    handler: async ({ store }, request) => {
      const { createdAt, parent } = q(request);
      const meta = request.headers["x-dgent-metadata"];
      let metadata: unknown = {};
      if (typeof meta === "string") {
        try {
          metadata = JSON.parse(meta);
        } catch {
          throw dgentError("DGENT_INVALID_METADATA", "x-dgent-metadata must be a JSON object of strings", { unit: "server" });
        }
      }
      const content = Buffer.isBuffer(request.body) ? new Uint8Array(request.body) : new Uint8Array(0);
      const datum = { id: id(request), content, createdAt: createdAt === undefined ? Date.now() : num(createdAt), causalParent: parent ?? null, metadata } as Datum;
      return { id: await store.put(datum) };
    },
  },
  {
    method: "GET", path: "/datums/:id", operationId: "get", summary: "One datum: JSON, or its raw bytes with Accept: application/octet-stream (tags in x-dgent-metadata)", right: "read",
    response: S.datum,
    // Not async (one promise less per get), as the put route.
    handler: ({ store }, request, reply) => store.get(id(request)).then((datum) => {
      if (datum === null) throw notFound("datum");
      if (request.headers.accept === "application/octet-stream") {
        void reply
          .type("application/octet-stream")
          .header("x-dgent-created-at", String(datum.createdAt))
          .header("x-dgent-metadata", JSON.stringify(datum.metadata));
        if (datum.causalParent !== null) void reply.header("x-dgent-parent", encodeURIComponent(datum.causalParent));
        return reply.send(Buffer.from(datum.content.buffer, datum.content.byteOffset, datum.content.byteLength));
      }
      return toWire(datum);
    }),
  },
  {
    method: "DELETE", path: "/datums/:id", operationId: "delete", summary: "Delete a datum; existed says whether it was there", right: "write",
    response: S.obj({ existed: S.bool }, ["existed"]),
    handler: async ({ store }, request) => ({ existed: await store.delete(id(request)) }),
  },
  {
    method: "GET", path: "/datums/:id/chain", operationId: "causalChain", summary: "The causal chain, oldest first, ending with the datum; tail gives only the last steps", right: "read",
    query: { tail: S.int }, response: S.items(S.datum),
    handler: async ({ store }, request) => {
      const { tail } = q(request);
      const chain = tail === undefined ? await store.causalChain(id(request)) : await store.causalChain(id(request), { tail: num(tail) as number });
      return { items: chain.map(toWire) };
    },
  },
  {
    method: "GET", path: "/datums/:id/children", operationId: "children", summary: "One page of the datums whose causalParent is the id", right: "read",
    query: { order: S.order, limit: S.int, cursor: S.str, select: S.select }, response: S.page,
    handler: async ({ store }, request) => {
      const { order, limit, cursor, select } = q(request);
      const options: Record<string, unknown> = {};
      if (order !== undefined) options.order = order;
      if (limit !== undefined) options.limit = num(limit);
      if (cursor !== undefined) options.cursor = cursor;
      if (select !== undefined) options.select = select;
      return pageOut(await store.children(id(request), options as QueryOptions));
    },
  },
  {
    method: "POST", path: "/query", operationId: "query", summary: "One page of a query (core/QUERIES.md): filters, order, limit, cursor, select", right: "read",
    body: S.queryOptions, response: S.page,
    handler: async ({ store }, request) => pageOut(await store.query(body(request) as QueryOptions)),
  },
  {
    method: "POST", path: "/search", operationId: "search", summary: "The k datums nearest a query: by meaning (recall plugin), by words (fulltext) or both fused; filters apply during the search (501 DGENT_UNSUPPORTED without the plugin)", right: "read",
    body: S.searchRequest, response: S.searchAnswer,
    handler: async ({ store }, request) => search(store, body(request)),
  },
  {
    method: "POST", path: "/count", operationId: "count", summary: "How many datums meet the filter", right: "read",
    body: S.filter, response: S.obj({ count: S.int }, ["count"]),
    handler: async ({ store }, request) => ({ count: await store.count(body(request)) }),
  },
  {
    method: "POST", path: "/get-many", operationId: "getMany", summary: "The datums of ids, in order, null where there is none", right: "read",
    body: S.obj({ ids: S.arr(S.str) }, ["ids"]), response: S.obj({ items: S.arr({ anyOf: [S.datum, { type: "null" }] }) }, ["items"]),
    handler: async ({ store }, request) => ({ items: (await store.getMany(body(request).ids as string[])).map((d) => (d === null ? null : toWire(d))) }),
  },
  {
    method: "POST", path: "/delete-many", operationId: "deleteMany", summary: "Delete every datum meeting the filter ({ all: true } for the whole namespace, which takes admin)", right: "write",
    body: S.deleteFilter, response: S.obj({ deleted: S.int }, ["deleted"]),
    handler: async ({ store }, request) => ({ deleted: await store.deleteMany(body(request)) }),
  },
  {
    method: "GET", path: "/refs", operationId: "listRefs", summary: "Refs whose names start with prefix, by name", right: "read",
    query: { prefix: S.str }, response: S.items(S.ref),
    handler: async ({ store }, request) => ({ items: await store.refs.list((q(request).prefix as string | undefined) ?? "") }),
  },
  {
    method: "GET", path: "/refs/:name", operationId: "getRef", summary: "One ref", right: "read",
    response: S.ref,
    handler: async ({ store }, request) => {
      const ref = await store.refs.get(name(request));
      if (ref === null) throw notFound("ref");
      return ref;
    },
  },
  {
    method: "PUT", path: "/refs/:name", operationId: "setRef", summary: "Move a ref to target if it meets expect (409 DGENT_REF_CONFLICT otherwise)", right: "write",
    body: S.obj({ target: S.str, expect: S.expect }, ["target"]), response: S.ref,
    handler: async (served, request) => {
      const b = body(request);
      const ref = await served.store.refs.set(name(request), b.target as string, { expect: expectation(b.expect) as RefExpectation });
      await recordRef(served, "setRef", ref.name, ref.target, ref.version);
      return ref;
    },
  },
  {
    method: "DELETE", path: "/refs/:name", operationId: "deleteRef", summary: "Delete a ref if it meets expect (given as JSON in the body or the expect query)", right: "write",
    query: { expect: S.str }, body: S.obj({ expect: S.expect }), response: S.obj({ existed: S.bool }, ["existed"]),
    handler: async (served, request) => {
      const raw = q(request).expect;
      let expect = expectation(body(request).expect);
      if (typeof raw === "string") {
        try {
          expect = JSON.parse(raw) as RefExpectation;
        } catch {
          throw dgentError("DGENT_INVALID_OPTIONS", "expect must be JSON: {\"version\":n}, {\"target\":id} or {\"absent\":true}", { unit: "server" });
        }
      }
      const existed = await served.store.refs.delete(name(request), expect === undefined ? {} : { expect });
      if (existed) await recordRef(served, "deleteRef", name(request));
      return { existed };
    },
  },
  {
    method: "GET", path: "/refs/:name/log", operationId: "reflog", summary: "The ref's last moves, newest first", right: "read",
    query: { limit: S.int }, response: S.items(S.reflogEntry),
    handler: async ({ store }, request) => {
      const { limit } = q(request);
      return { items: limit === undefined ? await store.refs.log(name(request)) : await store.refs.log(name(request), num(limit) as number) };
    },
  },
  {
    method: "POST", path: "/transactions", operationId: "transaction", summary: "Puts, deletes and ref moves, all or nothing", right: "write",
    body: S.obj({ ops: S.arr(S.txOp) }, ["ops"]), response: S.txResult,
    handler: async (served, request) => {
      const ops = body(request).ops;
      if (!Array.isArray(ops)) throw dgentError("DGENT_INVALID_OPTIONS", "ops must be an array of operations", { unit: "server" });
      const result = await served.store.transaction(ops.map(txOpFromWire) as TxOp[]);
      for (const r of result.results) {
        if (r.op === "setRef") await recordRef(served, "setRef", r.ref.name, r.ref.target, r.ref.version);
        else if (r.op === "deleteRef" && r.existed) await recordRef(served, "deleteRef", r.name);
      }
      return { results: result.results.map((r) => r) };
    },
  },
  {
    method: "GET", path: "/changes", operationId: "changes", summary: "Server-sent events: every put, delete and ref move; resume with Last-Event-ID", right: "read",
    query: { prefix: S.str, tag: S.str, after: S.int, access_token: S.str },
    response: { mediaType: "text/event-stream", description: "events put, delete, setRef, deleteRef (data: the change as JSON, id: its number); dropped and reset end or restart a stream" },
    handler: async (served, request, reply, ctx) => {
      if (served.feed === null) throw dgentError("DGENT_UNSUPPORTED", "this server runs without a change stream", { unit: "server", details: { capability: "changes" } });
      const query = q(request) as SseQuery;
      const filter = filterOf(query);
      const after = resumeAfter(request, query);
      reply.hijack();
      await stream(request, reply, served.feed, filter, after, ctx.sse, ctx.onClose);
      return undefined;
    },
  },
  {
    method: "GET", path: "/info", operationId: "info", summary: "The namespace's tiers, capabilities, health and last event id", right: "admin",
    response: S.info,
    handler: async ({ store, feed }) => ({ namespace: store.namespace, capabilities: store.capabilities, backend: await store.backend(), lastEventId: feed?.lastSeq ?? null }),
  },
];
