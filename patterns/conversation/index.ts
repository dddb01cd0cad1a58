/**
 * Conversation memory: turns linked by causal parent, the current turn by a ref, regenerated
 * replies as sibling branches, the last N turns from the chain's tail. See README.md.
 */
export { conversation, type AppendTurnOptions, type Conversation, type ConversationHost, type ConversationOptions, type Turn } from "./conversation.js";
