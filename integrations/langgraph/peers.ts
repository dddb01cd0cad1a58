/**
 * The optional peers, loaded once when `dgent/integrations/langgraph` is first imported: the
 * checkpoint interfaces (`@langchain/langgraph-checkpoint`) and, through them, `@langchain/core`.
 * Installing dgent pulls neither; importing this integration without them fails with
 * `DGENT_MISSING_DEPENDENCY` naming the package to install.
 */
import { dgentError } from "../../core/errors.js";

export const INTEGRATION = "langgraph";

/** The packages this integration needs, in the order a missing one is reported. */
export const PEERS = ["@langchain/langgraph-checkpoint", "@langchain/core"] as const;

type CheckpointModule = typeof import("@langchain/langgraph-checkpoint");

/** The package a failed import says it could not find, when it is one of `PEERS`. */
export function missingPeer(error: unknown): string | null {
  const e = error as { code?: unknown; message?: unknown };
  if (e?.code !== "ERR_MODULE_NOT_FOUND" && e?.code !== "MODULE_NOT_FOUND") return null;
  if (typeof e.message !== "string") return null;
  for (const pkg of PEERS) if (e.message.includes(`'${pkg}'`) || e.message.includes(`'${pkg}/`)) return pkg;
  return null;
}

/** Imports the checkpoint package; a missing peer becomes `DGENT_MISSING_DEPENDENCY` naming it. */
export async function loadPeers(load: (specifier: string) => Promise<unknown> = (s) => import(s)): Promise<CheckpointModule> {
  try {
    return (await load(PEERS[0])) as CheckpointModule;
  } catch (error) {
    const pkg = missingPeer(error);
    if (pkg === null) throw error;
    throw dgentError(
      "DGENT_MISSING_DEPENDENCY",
      `dgent/integrations/langgraph needs the package "${pkg}", which is not installed; run: npm install ${PEERS.join(" ")}`,
      { unit: INTEGRATION, cause: error, details: { package: pkg } },
    );
  }
}

/** The loaded `@langchain/langgraph-checkpoint`. */
export const lg: CheckpointModule = await loadPeers();
