/**
 * Conversation memory: turns are datums linked by causal parent, the conversation's current turn
 * is a ref, a regenerated reply is a sibling of the one it replaces (found through
 * `store.children`), and "the last N turns" is the tail of the causal chain — cheap however long
 * the conversation.
 */
import type { Datum, Store, TxOp } from "../../compose/index.js";
import { makeDatum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import { assertCodec, CODEC_KEY, textCodec, type Codec } from "../codec/codec.js";
import { typed, type TypedStore } from "../codec/typed.js";
import { escapeKey } from "../state/chain.js";
import { Committer, Retry, integerAtLeast, isRefConflict, serialized, type RetryOptions } from "../state/commit.js";

export const UNIT = "conversation";

/** What conversation memory needs from a store (a `Store` has all of it). */
export type ConversationHost = Pick<Store, "put" | "get" | "getMany" | "delete" | "refs" | "transaction" | "query" | "children" | "causalChain" | "deleteMany">;

/** One turn. */
export interface Turn<C> {
  readonly id: string;
  /** `user`, `assistant`, `system`, `tool`… (the datum's `role` tag). */
  readonly role: string;
  readonly content: C;
  /** The turn it follows, or null for a first turn. */
  readonly parent: string | null;
  readonly createdAt: number;
  readonly datum: Datum;
}

export interface ConversationOptions<C> {
  /** Names the conversation: ref `conversation/<id>/head`, turns `conversation/<id>/turn/<uuidv7>`. */
  id: string;
  /** How a turn's content becomes bytes (default UTF-8 text; `jsonCodec()` for structured turns). */
  codec?: Codec<C>;
  /** Tags every turn carries (`role` and `dgent.codec` are added). */
  metadata?: Readonly<Record<string, string>>;
  retry?: RetryOptions;
}

export interface AppendTurnOptions {
  /** Append after this turn instead of the current one (edit an earlier message: a new branch). */
  after?: string | null;
  metadata?: Readonly<Record<string, string>>;
}

/** A conversation's memory. */
export interface Conversation<C> {
  readonly id: string;
  /** The head ref's name. */
  readonly ref: string;
  /** Adds a turn after the current one (or after `options.after`) and makes it current. */
  append(role: string, content: C, options?: AppendTurnOptions): Promise<Turn<C>>;
  /** A new version of `turnId`: a sibling (same parent, same role unless given), made current. */
  regenerate(turnId: string, content: C, options?: { role?: string; metadata?: Readonly<Record<string, string>> }): Promise<Turn<C>>;
  /** The current turn, or null before the first. */
  head(): Promise<Turn<C> | null>;
  /** The turn `id` of this conversation, or null. */
  turn(id: string): Promise<Turn<C> | null>;
  /** The last `n` turns of the current branch, oldest first, ending with the current turn. */
  lastTurns(n: number): Promise<Turn<C>[]>;
  /** The turns that follow `turnId` (its branches: a reply and its regenerations), oldest first; the first turns when omitted. */
  branches(turnId?: string | null): Promise<Turn<C>[]>;
  /** `turnId` and its alternatives (the branches of its parent), oldest first. */
  siblings(turnId: string): Promise<Turn<C>[]>;
  /** Makes `turnId` the current turn (switch to another branch); appends then continue from it. */
  checkout(turnId: string): Promise<Turn<C>>;
  /** The whole branch ending at `turnId` (default the current turn), oldest first. */
  path(turnId?: string): Promise<Turn<C>[]>;
  /** Every turn of every branch, one page at a time (`order`, `limit`, `cursor` as `store.query`). */
  turns(options?: { order?: "newest" | "oldest"; limit?: number; cursor?: string; where?: Readonly<Record<string, string>> }): Promise<{ readonly items: Turn<C>[]; readonly cursor: string | null }>;
  /** Deletes the conversation: every turn, the root and the ref. How many turns there were. */
  clear(): Promise<number>;
}

/** The memory of conversation `options.id` in `store`. */
export function conversation<C = string>(store: ConversationHost, options: ConversationOptions<C>): Conversation<C> {
  if (store === null || typeof store !== "object" || typeof store.transaction !== "function") {
    throw dgentError("DGENT_INVALID_OPTIONS", "store must be a dgent Store (createStore)", { unit: UNIT });
  }
  if (typeof options.id !== "string" || options.id.length === 0) throw dgentError("DGENT_INVALID_OPTIONS", "id must be a non-empty string", { unit: UNIT });
  const codec = (options.codec ?? textCodec) as Codec<C>;
  assertCodec(codec);
  const base = `conversation/${escapeKey(options.id)}/`;
  const ref = `${base}head`;
  const rootId = `${base}root`;
  const turnPrefix = `${base}turn/`;
  const metadata = { ...(options.metadata ?? {}) };
  for (const reserved of ["role", CODEC_KEY]) {
    if (Object.hasOwn(metadata, reserved)) throw dgentError("DGENT_INVALID_METADATA", `metadata ${JSON.stringify(reserved)} is set by the conversation`, { unit: UNIT });
  }
  const view: TypedStore<C> = typed(store, codec, { prefix: turnPrefix, metadata });
  const retry = new Retry(options.retry, UNIT);
  const committer = new Committer(store);
  makeDatum({ id: ref, content: "" }); // the id rules, now
  // The root: a fixed, empty datum every first turn hangs from, so first turns are branches too.
  const root = makeDatum({ id: rootId, content: new Uint8Array(0), createdAt: 0 });
  let rootStored = false;

  const toTurn = (datum: Datum): Turn<C> => {
    const { value } = view.decode(datum);
    const parent = datum.causalParent === rootId ? null : datum.causalParent;
    return { id: datum.id, role: datum.metadata.role ?? "", content: value, parent, createdAt: datum.createdAt, datum };
  };
  const notHere = (id: unknown) =>
    dgentError("DGENT_INVALID_OPTIONS", `${JSON.stringify(id)} is not a turn of conversation ${JSON.stringify(options.id)}`, { unit: UNIT, details: { conversation: options.id, turn: id } });
  const load = async (id: string): Promise<Turn<C>> => {
    if (typeof id !== "string" || !id.startsWith(turnPrefix)) throw notHere(id);
    const datum = await store.get(id);
    if (datum === null) throw notHere(id);
    return toTurn(datum);
  };
  const checkRole = (role: unknown): string => {
    if (typeof role !== "string" || role.length === 0) throw dgentError("DGENT_INVALID_OPTIONS", "a turn's role is a non-empty string", { unit: UNIT });
    return role;
  };

  /**
   * Puts a turn made by `make(parent)` and moves the head to it, expecting the head read; on a
   * conflict reads the head again. `parentOf(head)` picks the parent (the head itself for an
   * append, a fixed turn for a regeneration or an append `after`).
   */
  const commitTurn = (parentOf: (head: string | null) => string | null, make: (parent: string) => Datum): Promise<Turn<C>> =>
    serialized(store, ref, async () => {
      for (let attempt = 1; ; attempt++) {
        const head = (await store.refs.get(ref))?.target ?? null;
        const parent = parentOf(head) ?? rootId;
        if (parent === rootId && !rootStored) {
          await store.put(root);
          rootStored = true;
        }
        const datum = make(parent);
        const ops: TxOp[] = [
          { op: "put", datum },
          { op: "setRef", name: ref, target: datum.id, expect: head === null ? { absent: true } : { target: head } },
        ];
        try {
          await committer.commit(ops);
          return toTurn(datum);
        } catch (error) {
          if (!isRefConflict(error)) throw error;
          await retry.afterConflict(error, attempt, ref);
        }
      }
    });

  const allChildren = async (id: string): Promise<Turn<C>[]> => {
    const out: Turn<C>[] = [];
    let cursor: string | undefined;
    do {
      const page = await view.children(id, { order: "oldest", limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const t of page.items) out.push(toTurn(t.datum));
      cursor = page.cursor ?? undefined;
    } while (cursor);
    return out;
  };

  return Object.freeze({
    id: options.id,
    ref,
    async append(role: string, content: C, appendOptions: AppendTurnOptions = {}) {
      checkRole(role);
      const after = appendOptions.after;
      if (after !== undefined && after !== null) await load(after);
      return commitTurn(
        (head) => (after === undefined ? head : after),
        (parent) => view.datum(content, { causalParent: parent, metadata: { ...(appendOptions.metadata ?? {}), role } }),
      );
    },
    async regenerate(turnId: string, content: C, regenerateOptions: { role?: string; metadata?: Readonly<Record<string, string>> } = {}) {
      const old = await load(turnId);
      const role = checkRole(regenerateOptions.role ?? old.role);
      return commitTurn(
        () => old.parent,
        (parent) => view.datum(content, { causalParent: parent, metadata: { ...(regenerateOptions.metadata ?? {}), role, regenerates: turnId } }),
      );
    },
    async head() {
      const r = await store.refs.get(ref);
      return r === null ? null : load(r.target);
    },
    async turn(id: string) {
      if (typeof id !== "string" || !id.startsWith(turnPrefix)) return null;
      const datum = await store.get(id);
      return datum === null ? null : toTurn(datum);
    },
    async lastTurns(n: number) {
      integerAtLeast(n, "n", 1, UNIT);
      const r = await store.refs.get(ref);
      if (r === null) return [];
      const chain = await store.causalChain(r.target, { tail: n });
      return chain.filter((d) => d.id !== rootId).map(toTurn);
    },
    async branches(turnId?: string | null) {
      if (turnId !== undefined && turnId !== null) await load(turnId);
      return allChildren(turnId ?? rootId);
    },
    async siblings(turnId: string) {
      const turn = await load(turnId);
      return allChildren(turn.parent ?? rootId);
    },
    async checkout(turnId: string) {
      const turn = await load(turnId);
      return serialized(store, ref, async () => {
        for (let attempt = 1; ; attempt++) {
          const head = (await store.refs.get(ref))?.target ?? null;
          try {
            await store.refs.set(ref, turn.id, { expect: head === null ? { absent: true } : { target: head } });
            return turn;
          } catch (error) {
            if (!isRefConflict(error)) throw error;
            await retry.afterConflict(error, attempt, ref);
          }
        }
      });
    },
    async path(turnId?: string) {
      const end = turnId ?? (await store.refs.get(ref))?.target;
      if (end === undefined) return [];
      if (turnId !== undefined) await load(turnId);
      return (await store.causalChain(end)).filter((d) => d.id !== rootId).map(toTurn);
    },
    async turns(turnsOptions: { order?: "newest" | "oldest"; limit?: number; cursor?: string; where?: Readonly<Record<string, string>> } = {}) {
      const page = await view.query(turnsOptions);
      return { items: page.items.map((t) => toTurn(t.datum)), cursor: page.cursor };
    },
    async clear() {
      const r = await store.refs.get(ref);
      if (r !== null) await store.refs.delete(ref, { expect: { version: r.version } });
      const turns = await store.deleteMany({ prefix: turnPrefix });
      await store.delete(rootId);
      rootStored = false;
      return turns;
    },
  });
}
