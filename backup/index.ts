/**
 * Backups of a tier's namespace into versioned, checksummed archives (full or incremental,
 * optionally encrypted to age recipients), verified restores into any tier (as of a time across
 * an incremental chain), and restore drills. Format: `backup/FORMAT.md`; runbook: `backup/RUNBOOK.md`.
 */
export { backup, newBackupId, type BackupOptions, type BackupReport } from "./backup.js";
export { restore, restoreDrill, verifyBackup, digestOfIds, type DrillOptions, type DrillReport, type ReadOptions, type RestoreOptions, type RestoreReport, type VerifyReport } from "./restore.js";
export { resolveChain, parseTime, type Chain } from "./read.js";
export { generateKeyPair, parseIdentities } from "./codec.js";
export { ARCHIVE_EXTENSION, type ArchiveReader } from "./container.js";
export { parseLocation, type BucketOptions, type Location } from "./location.js";
export { FORMAT_NAME, FORMAT_VERSION, datumHash, stateDigest, type ChunkEntry, type ChunkKind, type Compression, type Manifest } from "./format.js";
export { prune, type PruneOptions, type PruneReport } from "./prune.js";
export { backupAll, restoreAll, readAllIndexes, tierNamespaces, namespaceLocation, namespaceUrl, ALL_INDEX_FORMAT, ALL_INDEX_VERSION, type AllIndex, type BackupAllOptions, type BackupAllReport, type RestoreAllOptions, type RestoreAllReport, type TierNamespace } from "./all.js";
