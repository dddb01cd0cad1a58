/**
 * Typed views over a store: values in, values out, each alongside its datum. `json<Msg>(store)`,
 * `text(store)`, `bytes(store)` or `typed(store, codec)` for a codec of your own; optionally
 * validated by a JSON Schema through the lens plugin's ajv lens.
 */
import type { Datum, QueryOptions, Store, Where } from "../../compose/index.js";
import { makeDatum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { JsonSchema } from "../../core/options-schema.js";
import type { FromSchema } from "../../plugins/lens/infer.js";
import { jsonLens, type JsonLens } from "../../plugins/lens/lens.js";
import { assertCodec, bytesCodec, CODEC_KEY, decodeWith, encodeWith, jsonCodec, textCodec, UNIT, type Codec, type Json, type JsonCodecOptions } from "./codec.js";

/** A decoded value alongside the datum it came from. */
export interface Typed<T> {
  readonly id: string;
  readonly value: T;
  readonly datum: Datum;
}

/** What a typed view needs from a store (a `Store` has all of it). */
export type TypedHost = Pick<Store, "put" | "get" | "getMany" | "query" | "causalChain" | "children">;

export interface TypedOptions<T> {
  /** Values must fit this JSON Schema (checked on put and on every read), or this lens's schema. */
  schema?: JsonSchema | JsonLens<T>;
  /** Generated ids start with it, and `list` / `query` read under it. */
  prefix?: string;
  /** Metadata every datum written through the view carries (a put's own metadata is added to it). */
  metadata?: Readonly<Record<string, string>>;
}

/** Everything of a datum but its content. */
export interface TypedPutOptions {
  id?: string;
  idStrategy?: "time" | "content";
  causalParent?: string | null;
  metadata?: Readonly<Record<string, string>>;
  createdAt?: number;
}

/** Options of a typed `query`: a query's, always reading whole datums. */
export type TypedQueryOptions = Omit<QueryOptions, "select">;

/** A store seen through one codec. */
export interface TypedStore<T> {
  readonly store: TypedHost;
  readonly codec: Codec<T>;
  readonly prefix: string;
  /** The datum `put` would store for `value` (for a transaction), encoded and tagged; nothing is written. */
  datum(value: T, options?: TypedPutOptions): Datum;
  /** Encodes, validates, tags with `dgent.codec` and stores `value`. */
  put(value: T, options?: TypedPutOptions): Promise<Typed<T>>;
  /** The value under `id`, decoded (and validated) now, or null. */
  get(id: string): Promise<Typed<T> | null>;
  /** The values of `ids` in order, null where there is none. */
  getMany(ids: readonly string[]): Promise<Array<Typed<T> | null>>;
  /** The first page of `query`: datums written with this view's codec (under its prefix). */
  list(options?: Omit<TypedQueryOptions, "cursor">): Promise<Typed<T>[]>;
  /** One page of datums written with this view's codec (under its prefix), decoded. */
  query(options?: TypedQueryOptions): Promise<{ readonly items: Typed<T>[]; readonly cursor: string | null }>;
  /** The children of `id` written with this codec, decoded (one page). */
  children(id: string, options?: Omit<TypedQueryOptions, "parent">): Promise<{ readonly items: Typed<T>[]; readonly cursor: string | null }>;
  /** The causal chain ending at `id` (oldest first; `{ tail }` for the last steps), each decoded with this codec. */
  causalChain(id: string, options?: { tail?: number }): Promise<Typed<T>[]>;
  /** Decodes (and validates) a datum read some other way, naming it and the codec when it fails. */
  decode(datum: Datum): Typed<T>;
}

function lensOf<T>(schema: JsonSchema | JsonLens<T> | undefined): JsonLens<T> | undefined {
  if (schema === undefined) return undefined;
  const candidate = schema as Partial<JsonLens<T>>;
  if (typeof candidate.check === "function" && typeof candidate.is === "function") return schema as JsonLens<T>;
  const plain = schema as JsonSchema;
  return jsonLens(plain, { name: typeof plain.title === "string" ? plain.title : "schema" }) as unknown as JsonLens<T>;
}

/** `DGENT_LENS_INVALID` naming the datum (when known), the codec and the lens, with ajv's errors. */
function unfit<T>(lens: JsonLens<T>, value: unknown, codec: string, id: string | undefined): void {
  const errors = lens.check(value);
  if (errors.length === 0) return;
  const text = errors.map((e) => `${e.instancePath || "(top level)"}: ${e.message ?? e.keyword}`).join("; ");
  const what = id === undefined ? "the value" : `datum ${JSON.stringify(id)}`;
  throw dgentError("DGENT_LENS_INVALID", `${what} (codec ${JSON.stringify(codec)}) does not fit lens "${lens.name}": ${text}`, {
    unit: UNIT,
    details: { ...(id === undefined ? {} : { id }), codec, lens: lens.name, errors },
  });
}

/** A store seen through `codec`: `put` encodes and tags, reads decode (and validate, with a schema). */
export function typed<T>(store: TypedHost, codec: Codec<T>, options: TypedOptions<T> = {}): TypedStore<T> {
  assertCodec(codec);
  const lens = lensOf(options.schema);
  const prefix = options.prefix ?? "";
  if (typeof prefix !== "string") throw dgentError("DGENT_INVALID_OPTIONS", "prefix is a string", { unit: UNIT });
  const base = { ...(options.metadata ?? {}) };
  if (Object.hasOwn(base, CODEC_KEY)) {
    throw dgentError("DGENT_INVALID_METADATA", `metadata ${JSON.stringify(CODEC_KEY)} is reserved: the view records its codec there`, { unit: UNIT });
  }

  const decode = (datum: Datum): Typed<T> => {
    const value = decodeWith(datum, codec);
    if (lens) unfit(lens, value, codec.name, datum.id);
    return { id: datum.id, value, datum };
  };
  const where = (given: Where | undefined): Where => {
    if (given && Object.hasOwn(given, CODEC_KEY)) {
      throw dgentError("DGENT_INVALID_QUERY", `a typed view filters on ${JSON.stringify(CODEC_KEY)} itself`, { unit: UNIT, details: { field: `where.${CODEC_KEY}` } });
    }
    return { ...given, [CODEC_KEY]: codec.name };
  };
  const scoped = (given: string | undefined): string => {
    if (given === undefined) return prefix;
    if (!given.startsWith(prefix)) {
      throw dgentError("DGENT_INVALID_QUERY", `prefix ${JSON.stringify(given)} is outside the view's prefix ${JSON.stringify(prefix)}`, { unit: UNIT, details: { field: "prefix" } });
    }
    return given;
  };
  const page = async (options: TypedQueryOptions) => {
    const result = await store.query({ ...options, prefix: scoped(options.prefix), where: where(options.where), select: "full" });
    return { items: result.items.map(decode), cursor: result.cursor };
  };
  const make = (value: T, put: TypedPutOptions = {}): Datum => {
    if (lens) unfit(lens, value, codec.name, put.id);
    const metadata = { ...base, ...(put.metadata ?? {}) };
    if (Object.hasOwn(metadata, CODEC_KEY) && metadata[CODEC_KEY] !== codec.name) {
      throw dgentError("DGENT_INVALID_METADATA", `metadata ${JSON.stringify(CODEC_KEY)} is reserved: this view writes ${JSON.stringify(codec.name)}`, { unit: UNIT, ...(put.id ? { details: { id: put.id } } : {}) });
    }
    metadata[CODEC_KEY] = codec.name;
    return makeDatum({
      content: encodeWith(value, codec, put.id),
      metadata,
      ...(put.id === undefined ? { idPrefix: prefix } : { id: put.id }),
      ...(put.idStrategy === undefined ? {} : { idStrategy: put.idStrategy }),
      ...(put.causalParent === undefined ? {} : { causalParent: put.causalParent }),
      ...(put.createdAt === undefined ? {} : { createdAt: put.createdAt }),
    });
  };

  return Object.freeze({
    store,
    codec,
    prefix,
    datum: make,
    async put(value: T, put?: TypedPutOptions) {
      const datum = make(value, put);
      const id = await store.put(datum);
      return { id, value, datum };
    },
    async get(id: string) {
      const datum = await store.get(id);
      return datum === null ? null : decode(datum);
    },
    async getMany(ids: readonly string[]) {
      return (await store.getMany(ids)).map((d) => (d === null ? null : decode(d)));
    },
    async list(options: Omit<TypedQueryOptions, "cursor"> = {}) {
      return (await page(options)).items;
    },
    query: (options: TypedQueryOptions = {}) => page(options),
    async children(id: string, options: Omit<TypedQueryOptions, "parent"> = {}) {
      const result = await store.children(id, { ...options, prefix: scoped(options.prefix), where: where(options.where), select: "full" });
      return { items: result.items.map(decode), cursor: result.cursor };
    },
    async causalChain(id: string, options?: { tail?: number }) {
      return (await store.causalChain(id, options)).map(decode);
    },
    decode,
  });
}

/** UTF-8 JSON values, typed by `T` or inferred from `schema`. */
export function json<const S extends JsonSchema>(store: TypedHost, options: TypedOptions<FromSchema<S>> & { schema: S } & JsonCodecOptions): TypedStore<FromSchema<S>>;
export function json<T = Json>(store: TypedHost, options?: TypedOptions<T> & JsonCodecOptions): TypedStore<T>;
export function json<T>(store: TypedHost, options: TypedOptions<T> & JsonCodecOptions = {}): TypedStore<T> {
  const { strict, ...rest } = options;
  return typed(store, jsonCodec<T>(strict === undefined ? {} : { strict }), rest);
}

/** UTF-8 text values. */
export function text(store: TypedHost, options: Omit<TypedOptions<string>, "schema"> = {}): TypedStore<string> {
  return typed(store, textCodec, options);
}

/** Opaque bytes, tagged `dgent.codec: bytes`. */
export function bytes(store: TypedHost, options: Omit<TypedOptions<Uint8Array>, "schema"> = {}): TypedStore<Uint8Array> {
  return typed(store, bytesCodec, options);
}

