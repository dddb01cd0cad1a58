/**
 * `dgent/integrations/langchain`: LangChain.js's chat message history (`DgentChatMessageHistory`)
 * and key-value store (`DgentKVStore`) on a dgent store. `@langchain/core` is an optional peer:
 * without it this import fails with `DGENT_MISSING_DEPENDENCY` naming the package to install.
 * README.md has the layout, the guarantees per tier and the options.
 */
export { DgentChatMessageHistory, DEFAULT_HISTORY_PREFIX, type DgentChatMessageHistoryInput } from "./chat-history.js";
export { DgentKVStore, DEFAULT_KV_PREFIX, escapeStoreKey, unescapeStoreKey, type DgentKVStoreInput } from "./kv-store.js";
export type { StoreSource } from "./connect.js";
