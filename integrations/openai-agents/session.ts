/**
 * The OpenAI Agents SDK's `Session` on a dgent store: a session's items in order, as an ordered
 * session log (../langchain/session-log.ts). Every change — `addItems`, `popItem`,
 * `clearSession`, compaction, history mutations and history transactions — is planned on a
 * snapshot and committed with a compare-and-set of the session's head ref, in one transaction.
 */
import { createHash, randomUUID } from "node:crypto";
import type {
  AgentInputItem,
  Session,
  SessionHistoryRewriteArgs,
  SessionHistoryRewriteAwareSession,
  SessionHistoryTransaction,
  SessionHistoryTransactionArgs,
  SessionHistoryTransactionAwareSession,
} from "@openai/agents-core";
import type { Datum } from "../../compose/index.js";
import { makeDatum } from "../../core/datum.js";
import { dgentError } from "../../core/errors.js";
import type { Store } from "../../core/store.js";
import { CODEC_KEY, decodeWith, encodeWith } from "../../patterns/codec/codec.js";
import type { RetryOptions } from "../../patterns/state/commit.js";
import { StoreHandle, type StoreSource } from "../langchain/connect.js";
import { escapeSession, SessionLog, type Entry } from "../langchain/session-log.js";
import { itemCodec, sameValue } from "./item-codec.js";
import { agents, INTEGRATION } from "./peers.js";

/** Where sessions live by default: `openai-agents/session/<id>/item/…`, ref `…/head`, operations `…/op/…`. */
export const DEFAULT_SESSION_PREFIX = "openai-agents/session/";

export interface DgentSessionOptions extends StoreSource {
  /** The session (default: a random UUID, as `MemorySession`). Sessions with one id on one store share their items. */
  sessionId?: string;
  /** Ids and refs start with it (default `openai-agents/session/`). */
  keyPrefix?: string;
  /** How patiently a change retries when another process changed the session first (default 64 tries). */
  retry?: RetryOptions;
}

/** The record of an applied history transaction (`…/op/<sha-256 of the operation id>`). */
interface OperationRecord {
  readonly operationId: string;
  readonly transaction: SessionHistoryTransaction;
}

const codec = itemCodec<AgentInputItem>();
const recordCodec = itemCodec<OperationRecord>();

/** What a value becomes after a trip through the store (undefined fields gone): the form comparisons use. */
function normalized<T>(value: T): T {
  return codec.decode(codec.encode(value as unknown as AgentInputItem)) as unknown as T;
}

/**
 * A `Session` of `@openai/agents-core` on dgent, with the optional capabilities of 0.20:
 * `replaceHistoryWithCompaction`, `applyHistoryMutations`, `applyHistoryTransaction`.
 *
 * ```ts
 * const session = new DgentSession({ sessionId: "user-42", url: "sqlite:///var/lib/app/agents.db" });
 * await run(agent, "Hello", { session });
 * ```
 */
export class DgentSession implements Session, SessionHistoryRewriteAwareSession, SessionHistoryTransactionAwareSession {
  readonly sessionId: string;
  readonly keyPrefix: string;
  readonly #handle: StoreHandle;
  readonly #retry: RetryOptions | undefined;
  #log: Promise<SessionLog<AgentInputItem>> | null = null;

  constructor(options: DgentSessionOptions = {}) {
    this.#handle = new StoreHandle(options, INTEGRATION);
    this.sessionId = options.sessionId ?? randomUUID();
    this.keyPrefix = options.keyPrefix ?? DEFAULT_SESSION_PREFIX;
    this.#retry = options.retry;
    escapeSession(this.sessionId, INTEGRATION);
  }

  /** A session on the one tier `url` names (`sqlite:///path.db`, `postgres://…`, `memory:`…), opened now; `close()` closes it. */
  static async fromUrl(url: string, options: Omit<DgentSessionOptions, "url" | "store"> = {}): Promise<DgentSession> {
    const session = new DgentSession({ ...options, url });
    await session.store();
    return session;
  }

  /** The store the session writes to. */
  store(): Promise<Store> {
    return this.#handle.get();
  }

  async getSessionId(): Promise<string> {
    return this.sessionId;
  }

  /** The items, oldest first; with `limit`, the last `limit` of them (still oldest first). */
  async getItems(limit?: number): Promise<AgentInputItem[]> {
    const log = await this.#sessionLog();
    if (limit === undefined) return values(await log.all());
    if (!Number.isFinite(limit) || limit <= 0) return [];
    return values(await log.last(Math.floor(limit)));
  }

  /** Appends the items in order, all or nothing; never interleaved with another writer's items. */
  async addItems(items: AgentInputItem[]): Promise<void> {
    if (items.length === 0) return;
    await (await this.#sessionLog()).append(items);
  }

  /** Removes and returns the newest item (`undefined` when there is none). Two concurrent pops never return the same item. */
  async popItem(): Promise<AgentInputItem | undefined> {
    return (await this.#sessionLog()).pop();
  }

  /** Deletes every item and the record of applied history transactions, at once. */
  async clearSession(): Promise<void> {
    const log = await this.#sessionLog();
    await log.clear([this.#opPrefix(log)]);
  }

  /** Replaces the whole history with `items` (a compaction item and the suffix it keeps), at once. */
  async replaceHistoryWithCompaction(items: AgentInputItem[]): Promise<void> {
    const log = await this.#sessionLog();
    await log.change(async () => ({ after: null, drop: await log.idsUnder(log.itemPrefix), append: items, result: undefined }));
  }

  /** Applies `replace_function_call` mutations (as `applySessionHistoryMutations` does), at once. */
  async applyHistoryMutations(args: SessionHistoryRewriteArgs): Promise<void> {
    if (args.mutations.length === 0) return;
    const log = await this.#sessionLog();
    await log.change(async (s) => {
      const entries = await s.all();
      const next = agents.applySessionHistoryMutations(values(entries), args.mutations).map(normalized);
      let keep = 0;
      while (keep < entries.length && keep < next.length && sameValue((entries[keep] as Entry<AgentInputItem>).value, next[keep])) keep++;
      if (keep === entries.length && keep === next.length) return null;
      return { after: keep === 0 ? null : (entries[keep - 1] as Entry<AgentInputItem>).id, drop: entries.slice(keep).map((e) => e.id), append: next.slice(keep), result: undefined };
    });
  }

  /**
   * Applies an `append_items` or `replace_suffix` transaction once per `operationId`: the history
   * change and the operation's record are committed together. Repeating an operation with the
   * same transaction changes nothing; with another one, or a suffix that no longer matches, it
   * fails with `DGENT_CONFLICT` and changes nothing. Needs a tier with transactions.
   */
  async applyHistoryTransaction(args: SessionHistoryTransactionArgs): Promise<void> {
    const { operationId, transaction } = checkTransaction(args);
    const log = await this.#sessionLog();
    const store = await this.store();
    if (!store.capabilities.transactions) {
      throw dgentError("DGENT_UNSUPPORTED", `applyHistoryTransaction records the operation and changes the history at once, which needs a tier with transactions; ${store.tiers[0]?.name ?? "this tier"} has none`, {
        unit: INTEGRATION,
        details: { capability: "transactions" },
      });
    }
    const recordId = `${this.#opPrefix(log)}${createHash("sha256").update(operationId).digest("hex")}`;
    const record: OperationRecord = { operationId, transaction };
    await log.change(async (s) => {
      const stored = await store.get(recordId);
      if (stored !== null) {
        const applied = decodeWith(stored, recordCodec);
        if (applied.operationId === operationId && sameValue(applied.transaction, transaction)) return null;
        throw dgentError("DGENT_CONFLICT", `session ${JSON.stringify(this.sessionId)}: operation ${JSON.stringify(operationId)} was already applied with a different transaction`, {
          unit: INTEGRATION,
          details: { session: this.sessionId, operationId },
        });
      }
      const puts = [recordDatum(recordId, record, this.sessionId)];
      if (transaction.type === "append_items") return { append: transaction.items, puts, result: undefined };
      const k = transaction.expectedSuffix.length;
      const tail = await s.last(k + 1);
      const suffix = tail.length > k ? tail.slice(1) : tail;
      if (suffix.length !== k || !suffix.every((e, i) => sameValue(e.value, transaction.expectedSuffix[i]))) {
        throw dgentError("DGENT_CONFLICT", `session ${JSON.stringify(this.sessionId)}: the history's last ${k} items no longer match the transaction's expected suffix`, {
          unit: INTEGRATION,
          details: { session: this.sessionId, operationId },
        });
      }
      const before = tail.length > k ? (tail[0] as Entry<AgentInputItem>).id : null;
      return { after: before, drop: suffix.map((e) => e.id), append: transaction.replacement, puts, result: undefined };
    });
  }

  /** Closes the store when this session opened it (from `url`, `fromUrl` or the default). */
  async close(): Promise<void> {
    await this.#handle.close();
  }

  #opPrefix(log: SessionLog<AgentInputItem>): string {
    return `${log.base}/op/`;
  }

  #sessionLog(): Promise<SessionLog<AgentInputItem>> {
    this.#log ??= this.#handle.get().then(
      (store) =>
        new SessionLog<AgentInputItem>({
          store,
          prefix: this.keyPrefix,
          session: this.sessionId,
          codec,
          tags: itemTags,
          retry: this.#retry,
          unit: INTEGRATION,
        }),
    );
    this.#log.catch(() => (this.#log = null));
    return this.#log;
  }
}

function values(entries: readonly Entry<AgentInputItem>[]): AgentInputItem[] {
  return entries.map((e) => e.value);
}

/** `type` (`message` when absent, as for `{ role, content }` items) and `role` where the item has one. */
function itemTags(item: AgentInputItem): Record<string, string> {
  const record = item as { type?: unknown; role?: unknown };
  const tags: Record<string, string> = { type: typeof record.type === "string" ? record.type : "message" };
  if (typeof record.role === "string") tags.role = record.role;
  return tags;
}

function recordDatum(id: string, record: OperationRecord, session: string): Datum {
  return makeDatum({ id, content: encodeWith(record, recordCodec, id), metadata: { session, [CODEC_KEY]: recordCodec.name } });
}

/** Checks the arguments as `MemorySession` does, and returns them as they will be stored. */
function checkTransaction(args: SessionHistoryTransactionArgs): OperationRecord {
  const invalid = (why: string) => dgentError("DGENT_INVALID_OPTIONS", `session history transaction: ${why}`, { unit: INTEGRATION });
  if (args === null || typeof args !== "object") throw invalid("the arguments are { operationId, transaction }");
  const { operationId, transaction } = args;
  if (typeof operationId !== "string" || operationId.trim().length === 0) throw invalid("operationId must be a non-empty string");
  if (transaction === null || typeof transaction !== "object") throw invalid("transaction must be an object");
  const items = (list: unknown, field: string): AgentInputItem[] => {
    if (!Array.isArray(list)) throw invalid(`${field} must be an array of items`);
    return list.map((item, i) => {
      if (!agents.protocol.ModelItem.safeParse(item).success) throw invalid(`${field}[${i}] is not a valid session item`);
      return normalized(item as AgentInputItem);
    });
  };
  if (transaction.type === "append_items") {
    if (Object.keys(transaction).length !== 2) throw invalid("an append_items transaction has the fields type and items");
    return { operationId, transaction: { type: "append_items", items: items(transaction.items, "items") } };
  }
  if (transaction.type === "replace_suffix") {
    if (Object.keys(transaction).length !== 3) throw invalid("a replace_suffix transaction has the fields type, expectedSuffix and replacement");
    return {
      operationId,
      transaction: { type: "replace_suffix", expectedSuffix: items(transaction.expectedSuffix, "expectedSuffix"), replacement: items(transaction.replacement, "replacement") },
    };
  }
  throw invalid(`unknown transaction type ${JSON.stringify((transaction as { type?: unknown }).type)}`);
}
