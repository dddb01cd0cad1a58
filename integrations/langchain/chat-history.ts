/**
 * LangChain's list chat message history on a dgent store: the messages of one session, in order,
 * as an ordered session log (session-log.ts). `addMessages` is all or nothing and never interleaves
 * with another writer's batch; `clear` deletes the session's messages and head at once.
 */
import type { BaseMessage, StoredMessage } from "@langchain/core/messages";
import type { Store } from "../../core/store.js";
import { jsonCodec } from "../../patterns/codec/codec.js";
import type { RetryOptions } from "../../patterns/state/commit.js";
import { StoreHandle, type StoreSource } from "./connect.js";
import { INTEGRATION, lc } from "./peers.js";
import { escapeSession, SessionLog } from "./session-log.js";

/** Where chat histories live by default: `langchain/history/<session>/item/…`, ref `langchain/history/<session>/head`. */
export const DEFAULT_HISTORY_PREFIX = "langchain/history/";

export interface DgentChatMessageHistoryInput extends StoreSource {
  /** The conversation: histories with the same `sessionId` (and prefix) on one store are one list. */
  sessionId: string;
  /** Ids and refs start with it (default `langchain/history/`). */
  keyPrefix?: string;
  /** How patiently a write retries when another process changed the session first (default 64 tries). */
  retry?: RetryOptions;
}

/** StoredMessage JSON, as written by `mapChatMessagesToStoredMessages` (`undefined` fields are left out). */
const storedMessageCodec = jsonCodec<StoredMessage>({ strict: false });

/**
 * A `BaseListChatMessageHistory` on dgent: `new DgentChatMessageHistory({ sessionId, store })`,
 * `{ sessionId, url: "sqlite:///…" }`, or `{ sessionId }` for the embedded default.
 */
export class DgentChatMessageHistory extends lc.chatHistory.BaseListChatMessageHistory {
  lc_namespace = ["langchain", "stores", "message", "dgent"];

  readonly sessionId: string;
  readonly keyPrefix: string;
  readonly #handle: StoreHandle;
  readonly #retry: RetryOptions | undefined;
  #log: Promise<SessionLog<StoredMessage>> | null = null;

  constructor(fields: DgentChatMessageHistoryInput) {
    super(fields);
    this.#handle = new StoreHandle(fields, INTEGRATION);
    this.sessionId = fields.sessionId;
    this.keyPrefix = fields.keyPrefix ?? DEFAULT_HISTORY_PREFIX;
    this.#retry = fields.retry;
    escapeSession(this.sessionId, INTEGRATION); // checked now; the log is made on first use
  }

  /** A history on the one tier `url` names (`sqlite:///path.db`, `postgres://…`, `memory:`…), opened now; `close()` closes it. */
  static async fromUrl(url: string, fields: Omit<DgentChatMessageHistoryInput, "url" | "store">): Promise<DgentChatMessageHistory> {
    const history = new DgentChatMessageHistory({ ...fields, url });
    await history.store();
    return history;
  }

  /** The store the history writes to. */
  store(): Promise<Store> {
    return this.#handle.get();
  }

  #sessionLog(): Promise<SessionLog<StoredMessage>> {
    this.#log ??= this.#handle.get().then(
      (store) =>
        new SessionLog<StoredMessage>({
          store,
          prefix: this.keyPrefix,
          session: this.sessionId,
          codec: storedMessageCodec,
          tags: (m) => ({ type: m.type }),
          retry: this.#retry,
          unit: INTEGRATION,
        }),
    );
    this.#log.catch(() => (this.#log = null));
    return this.#log;
  }

  /** The session's messages, oldest first. */
  async getMessages(): Promise<BaseMessage[]> {
    const entries = await (await this.#sessionLog()).all();
    return lc.messages.mapStoredMessagesToChatMessages(entries.map((e) => e.value));
  }

  async addMessage(message: BaseMessage): Promise<void> {
    await this.addMessages([message]);
  }

  /** Appends the messages in order, all or nothing (one transaction with the head move). */
  override async addMessages(messages: BaseMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const stored = lc.messages.mapChatMessagesToStoredMessages(messages);
    await (await this.#sessionLog()).append(stored);
  }

  /** Deletes the session's messages (one transaction). */
  override async clear(): Promise<void> {
    await (await this.#sessionLog()).clear();
  }

  /** Closes the store when this history opened it (from `url`, `fromUrl` or the default). */
  async close(): Promise<void> {
    await this.#handle.close();
  }
}
