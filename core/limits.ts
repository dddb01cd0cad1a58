/** Limits shared by `list` and the query operations (core/protocol.ts, core/query.ts). */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 100_000;
