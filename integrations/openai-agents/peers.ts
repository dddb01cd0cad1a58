/**
 * The optional peer, loaded once when `dgent/integrations/openai-agents` is first imported:
 * `@openai/agents-core` (the `Session` interface, its history mutations and item schema).
 * Installing dgent does not pull it; importing this integration without it fails with
 * `DGENT_MISSING_DEPENDENCY` naming the package to install.
 */
import { isMissing, missingPeerError } from "../langchain/peers-support.js";

export const INTEGRATION = "openai-agents";
export const PEER = "@openai/agents-core";

type AgentsCore = typeof import("@openai/agents-core");

/** Imports `@openai/agents-core`; a missing package becomes `DGENT_MISSING_DEPENDENCY`. */
export async function loadPeers(load: (specifier: string) => Promise<unknown> = (s) => import(s)): Promise<AgentsCore> {
  try {
    return (await load(PEER)) as AgentsCore;
  } catch (error) {
    if (isMissing(error, PEER)) throw missingPeerError(INTEGRATION, PEER, error);
    throw error;
  }
}

/** The loaded `@openai/agents-core`. */
export const agents: AgentsCore = await loadPeers();
