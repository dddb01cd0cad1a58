/**
 * `dgent/integrations/openai-agents`: the OpenAI Agents SDK's `Session` (`DgentSession`) on a
 * dgent store. `@openai/agents-core` is an optional peer: without it this import fails with
 * `DGENT_MISSING_DEPENDENCY` naming the package to install. README.md has the layout, the
 * guarantees per tier and the options.
 */
export { DgentSession, DEFAULT_SESSION_PREFIX, type DgentSessionOptions } from "./session.js";
export { ITEM_CODEC_NAME, itemCodec } from "./item-codec.js";
export type { StoreSource } from "../langchain/connect.js";
