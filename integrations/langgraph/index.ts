/**
 * `dgent/integrations/langgraph`: LangGraph's checkpointer (`DgentSaver`) and long-term memory
 * store (`DgentStore`) on a dgent store. `@langchain/langgraph-checkpoint` and `@langchain/core`
 * are optional peers: without them this import fails with `DGENT_MISSING_DEPENDENCY` naming the
 * package to install. README.md has the layout, the guarantees per tier and the measurements.
 */
export { DgentSaver, type DgentSaverOptions, type LatestBy, CHECKPOINT_TAG, WRITES_TAG, METADATA_TAG_PREFIX } from "./saver.js";
export { DEFAULT_PREFIX, checkpointTime } from "./keys.js";
export { DgentStore, type DgentStoreOptions, DEFAULT_STORE_PREFIX, VALUE_TAG_PREFIX, CREATED_TAG } from "./store.js";
