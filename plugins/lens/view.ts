import { makeDatum, type Datum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { DatumStore, ListOptions } from "../../core/protocol.js";
import { UNIT, type Lens } from "./lens.js";

/** How a viewed value is written: everything of a datum but its content. */
export interface ViewPutOptions {
  id?: string;
  idPrefix?: string;
  idStrategy?: "time" | "content";
  causalParent?: string | null;
  metadata?: Record<string, string>;
  createdAt?: number;
}

/** A store seen through one lens: values in, values out. */
export interface LensView<A> {
  readonly lens: Lens<Uint8Array, A>;
  /** The value under `id` (validated now, at read time), or null. */
  get(id: string): Promise<A | null>;
  /** Serialises `value` through the lens and stores it (tagged, when the view has a tag). */
  put(value: A, options?: ViewPutOptions): Promise<string>;
  /** Datums of `list` with their values; with a tag, only datums carrying it. */
  list(options?: ListOptions): Promise<Array<{ readonly datum: Datum; readonly value: A }>>;
}

/** A store seen through `lens`. With `tag`, `put` sets `metadata[tag.key] = tag.value` and `list` keeps only those. */
export function viewThrough<A>(store: DatumStore, lens: Lens<Uint8Array, A>, tag?: { key: string; value: string }): LensView<A> {
  const tagged = (d: Datum) => !tag || d.metadata[tag.key] === tag.value;
  return Object.freeze({
    lens,
    async get(id: string) {
      const d = await store.get(id);
      return d === null ? null : lens.get(d.content);
    },
    async put(value: A, options: ViewPutOptions = {}) {
      const { metadata, ...rest } = options;
      const datum = makeDatum({ ...rest, content: lens.put(value), metadata: { ...metadata, ...(tag ? { [tag.key]: tag.value } : {}) } });
      return store.put(datum);
    },
    async list(options?: ListOptions) {
      const datums = await store.list(options);
      return datums.filter(tagged).map((datum) => ({ datum, value: lens.get(datum.content) }));
    },
  });
}

type LensValue<L> = L extends Lens<Uint8Array, infer A> ? A : never;

/** A datum with the value its tag's lens reads; `tag: null` when it has no tag or an unknown one (`value` is then the raw content). */
export type TaggedValue<L extends Record<string, Lens<Uint8Array, unknown>>> =
  | { [K in keyof L & string]: { readonly tag: K; readonly value: LensValue<L[K]>; readonly datum: Datum } }[keyof L & string]
  | { readonly tag: null; readonly value: Uint8Array; readonly datum: Datum };

/** A store seen through the lens its datums' metadata tag chooses. */
export interface TaggedView<L extends Record<string, Lens<Uint8Array, unknown>>> {
  readonly key: string;
  readonly lenses: L;
  /** The datum and its value through the lens named by `metadata[key]` (validated at read time), or null. */
  get(id: string): Promise<TaggedValue<L> | null>;
  /** Serialises `value` with the lens `tag` names and stores it with `metadata[key] = tag`. */
  put<K extends keyof L & string>(tag: K, value: LensValue<L[K]>, options?: ViewPutOptions): Promise<string>;
  list(options?: ListOptions): Promise<TaggedValue<L>[]>;
  /** The view through one tag's lens. */
  as<K extends keyof L & string>(tag: K): LensView<LensValue<L[K]>>;
}

/**
 * `taggedView(store, { key: "type", lenses: { person, note } })`: each datum is read through the
 * lens its `metadata.type` names. The result is a union discriminated by `tag`, so
 * `if (v.tag === "person") v.value.name` type-checks.
 */
export function taggedView<L extends Record<string, Lens<Uint8Array, unknown>>>(
  store: DatumStore,
  options: { key: string; lenses: L },
): TaggedView<L> {
  const { key, lenses } = options;
  const read = (datum: Datum): TaggedValue<L> => {
    const tag = datum.metadata[key];
    const lens = tag !== undefined && Object.hasOwn(lenses, tag) ? lenses[tag] : undefined;
    if (!lens || tag === undefined) return { tag: null, value: datum.content, datum };
    return { tag, value: lens.get(datum.content), datum } as TaggedValue<L>;
  };
  const lensOf = (tag: string): Lens<Uint8Array, unknown> => {
    const lens = Object.hasOwn(lenses, tag) ? lenses[tag] : undefined;
    if (!lens) {
      throw dgentError("DGENT_INVALID_OPTIONS", `no lens for tag ${JSON.stringify(tag)}; known: ${Object.keys(lenses).join(", ")}`, { unit: UNIT });
    }
    return lens;
  };
  return Object.freeze({
    key,
    lenses,
    async get(id: string) {
      const d = await store.get(id);
      return d === null ? null : read(d);
    },
    put<K extends keyof L & string>(tag: K, value: LensValue<L[K]>, putOptions?: ViewPutOptions) {
      return viewThrough(store, lensOf(tag), { key, value: tag }).put(value, putOptions);
    },
    async list(listOptions?: ListOptions) {
      return (await store.list(listOptions)).map(read);
    },
    as<K extends keyof L & string>(tag: K) {
      return viewThrough(store, lensOf(tag) as Lens<Uint8Array, LensValue<L[K]>>, { key, value: tag });
    },
  });
}
