/**
 * The optional peer, loaded once when `dgent/integrations/langchain` is first imported:
 * `@langchain/core` (its chat history, key-value store and message modules). Installing dgent
 * does not pull it; importing this integration without it fails with `DGENT_MISSING_DEPENDENCY`
 * naming the package to install.
 */
import { isMissing, missingPeerError } from "./peers-support.js";

export const INTEGRATION = "langchain";
export const PEER = "@langchain/core";

export interface LangChainModules {
  readonly chatHistory: typeof import("@langchain/core/chat_history");
  readonly stores: typeof import("@langchain/core/stores");
  readonly messages: typeof import("@langchain/core/messages");
}

/** Imports the three modules; a missing `@langchain/core` becomes `DGENT_MISSING_DEPENDENCY`. */
export async function loadPeers(load: (specifier: string) => Promise<unknown> = (s) => import(s)): Promise<LangChainModules> {
  try {
    const [chatHistory, stores, messages] = await Promise.all([
      load(`${PEER}/chat_history`),
      load(`${PEER}/stores`),
      load(`${PEER}/messages`),
    ]);
    return { chatHistory, stores, messages } as LangChainModules;
  } catch (error) {
    if (isMissing(error, PEER)) throw missingPeerError(INTEGRATION, PEER, error);
    throw error;
  }
}

/** The loaded `@langchain/core` modules. */
export const lc: LangChainModules = await loadPeers();
