/**
 * The fixed SQL texts of the sqlite tier (a query's SQL is built for its filters by query-sql.ts).
 * Columns are always selected in the order of `COLUMNS`, and statements run in raw mode (rows as
 * arrays), so `row[0]` is the id, `row[1]` the content, etc.
 */

/** id, content, created_at, causal_parent, metadata. */
const COLUMNS = "id, content, created_at, causal_parent, metadata";
const NEWEST_FIRST = "ORDER BY created_at DESC, id DESC";

export const PRAGMA = {
  journalWal: "journal_mode = WAL",
  synchronous: (mode: "NORMAL" | "FULL") => `synchronous = ${mode}`,
  mmapSize: (bytes: number) => `mmap_size = ${Math.trunc(bytes)}`,
  setUserVersion: (version: number) => `user_version = ${Math.trunc(version)}`,
  setApplicationId: (id: number) => `application_id = ${Math.trunc(id)}`,
  optimize: "optimize",
  noBusyWait: "busy_timeout = 0",
} as const;

export const TX = {
  beginImmediate: "BEGIN IMMEDIATE",
  commit: "COMMIT",
  rollback: "ROLLBACK",
} as const;

/**
 * application_id, user_version and the number of schema objects, read in one statement so the
 * three come from one snapshot even while another process is migrating the file.
 */
export const SCHEMA_STATE = `SELECT
  (SELECT application_id FROM pragma_application_id()),
  (SELECT user_version FROM pragma_user_version()),
  (SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%')`;

/** Version 1: the seed's table, adapted (epoch ms, JSON metadata, NULL when empty). */
export const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS data (
  id            TEXT PRIMARY KEY,
  content       BLOB NOT NULL,
  created_at    REAL NOT NULL,
  causal_parent TEXT,
  metadata      TEXT
);
CREATE INDEX IF NOT EXISTS idx_data_created ON data (created_at, id);
CREATE INDEX IF NOT EXISTS idx_data_parent ON data (causal_parent);
`;

export const INSERT = `INSERT INTO data (${COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`;

/** content, created_at, causal_parent, metadata of one id. */
export const GET = "SELECT content, created_at, causal_parent, metadata FROM data WHERE id = ?";

export const DELETE = "DELETE FROM data WHERE id = ?";

/** (after, limit): newest first, walking the time index from its end. */
export const LIST = `SELECT ${COLUMNS} FROM data INDEXED BY idx_data_created WHERE created_at > ? ${NEWEST_FIRST} LIMIT ?`;

/*
 * A prefix is the id range [lower, upper) (see keys.ts). Two plans answer it; PREFIX_PLAN picks:
 * - by id: read the range from the primary-key index, then sort it by time. Costs ~2.5 µs per id
 *   in the range (each needs its row for created_at), so it suits small ranges.
 * - by time: walk the time index newest first, testing each id in the index itself (~0.08 µs
 *   per entry), until `limit` match. It suits ranges dense enough that matches come soon.
 */

/** (lower, upper, after, limit) */
export const LIST_RANGE_BY_ID = `SELECT ${COLUMNS} FROM data INDEXED BY sqlite_autoindex_data_1 WHERE id >= ? AND id < ? AND created_at > ? ${NEWEST_FIRST} LIMIT ?`;
/** (lower, upper, after, limit) */
export const LIST_RANGE_BY_TIME = `SELECT ${COLUMNS} FROM data INDEXED BY idx_data_created WHERE id >= ? AND id < ? AND created_at > ? ${NEWEST_FIRST} LIMIT ?`;
/** (lower, after, limit): a prefix whose range has no upper bound (it is all U+10FFFF). */
export const LIST_FROM = `SELECT ${COLUMNS} FROM data WHERE id >= ? AND created_at > ? ${NEWEST_FIRST} LIMIT ?`;

/**
 * (minCap, factor, lower, upper) → 1 when the time plan is cheaper. With n rows (estimated by the
 * largest rowid), a range of r ids, the plans cost about 2.5·r and 0.08·limit·n/r µs, equal at
 * r = sqrt(0.032·limit·n): count the range index-only up to that cap (≤ 0.07 µs per id).
 */
export const PREFIX_PLAN = `
WITH cap (n) AS (SELECT max(?, CAST(sqrt(? * coalesce((SELECT max(rowid) FROM data), 0)) AS INTEGER)))
SELECT (SELECT count(*) FROM (SELECT 1 FROM data INDEXED BY sqlite_autoindex_data_1 WHERE id >= ? AND id < ? LIMIT (SELECT n FROM cap)))
  >= (SELECT n FROM cap)`;

/**
 * (id, maxDepth): the causal chain in one statement. The recursive part carries only ids and a
 * depth, and stops after maxDepth + 1 steps, so a cycle or an absurd depth ends the walk without
 * copying content. The outer part reads each distinct datum once, with its first depth and how
 * often the walk met it (`n > 1` means a cycle). Rows come deepest (oldest) first.
 */
export const CAUSAL_CHAIN = `
WITH RECURSIVE
  chain (id, parent, depth) AS (
    SELECT id, causal_parent, 0 FROM data WHERE id = ?
    UNION ALL
    SELECT d.id, d.causal_parent, c.depth + 1 FROM chain AS c JOIN data AS d ON d.id = c.parent
    WHERE c.depth < ?
  ),
  firsts (id, depth, n) AS (SELECT id, min(depth), count(*) FROM chain GROUP BY id)
SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata, f.n
FROM firsts AS f JOIN data AS d ON d.id = f.id
ORDER BY f.depth DESC`;

/** (afterRowid): a page of the table in rowid order; the caller stops iterating at its page size. */
export const SCAN_PAGE = `SELECT ${COLUMNS}, rowid FROM data WHERE rowid > ? ORDER BY rowid`;

/** count, and bytes of content, ids and metadata. */
export const STATS = `SELECT count(*), total(length(content)) + total(octet_length(id)) + total(octet_length(metadata)) FROM data`;

export const PROBE = "SELECT 1 FROM data LIMIT 1";

/**
 * Version 2: refs (named, versioned pointers to datums, moved only by compare-and-set) and their
 * reflog. A reflog row's `seq` counts the moves of its ref (1, 2, 3, …; it goes on after the ref
 * is deleted and re-created), so a ref's moves are one contiguous range of the primary key and
 * pruning to the newest `REFLOG_LIMIT` is one range delete.
 */
export const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS refs (
  name       TEXT PRIMARY KEY,
  target     TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reflog (
  name        TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  from_target TEXT,
  to_target   TEXT,
  version     INTEGER NOT NULL,
  at          REAL NOT NULL,
  moved_by    TEXT NOT NULL,
  PRIMARY KEY (name, seq)
) WITHOUT ROWID;
`;

const REF_COLUMNS = "name, target, version, updated_at";

/**
 * Version 5: the reflog is a ring. A ref's moves are numbered by `refs.log_seq` (1, 2, 3, …; on
 * across a delete and re-create, see `REFS.insert`) and move number `seq` is written to slot
 * `seq % 100` of the ref's ring (100 = `REFLOG_LIMIT` in core/refs.ts) by one upsert, replacing
 * the move 100 before it — no `max(seq)` lookup and no prune delete on a move, never more than
 * 100 rows per name. Triggers write the slot of a creation and of a move, from the refs row
 * itself (`moved_by`: who moved it last), so a compare-and-set is one `UPDATE` statement; a
 * delete writes its slot with `REFS.logDelete`. The existing reflog rows (the newest 100 of each
 * ref) move into the ring, and each ref's `log_seq` is its newest `seq`.
 */
export const SCHEMA_V5 = `
ALTER TABLE refs ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refs ADD COLUMN moved_by TEXT;
CREATE TABLE reflog_ring (
  name        TEXT NOT NULL,
  slot        INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  from_target TEXT,
  to_target   TEXT,
  version     INTEGER NOT NULL,
  at          REAL NOT NULL,
  moved_by    TEXT NOT NULL,
  PRIMARY KEY (name, slot)
) WITHOUT ROWID;
INSERT INTO reflog_ring (name, slot, seq, from_target, to_target, version, at, moved_by)
  SELECT r.name, r.seq % 100, r.seq, r.from_target, r.to_target, r.version, r.at, r.moved_by
  FROM reflog AS r JOIN (SELECT name, max(seq) AS top FROM reflog GROUP BY name) AS m ON m.name = r.name
  WHERE r.seq > m.top - 100;
UPDATE refs SET log_seq = coalesce((SELECT max(seq) FROM reflog WHERE reflog.name = refs.name), 0);
DROP TABLE reflog;
ALTER TABLE reflog_ring RENAME TO reflog;
CREATE TRIGGER reflog_create AFTER INSERT ON refs BEGIN
  ${ringWrite("NULL")};
END;
CREATE TRIGGER reflog_move AFTER UPDATE OF log_seq ON refs BEGIN
  ${ringWrite("old.target")};
END;
`;

/** The trigger body: the ring slot of the move `new` describes, from `from`. */
function ringWrite(from: string): string {
  return `INSERT INTO reflog (name, slot, seq, from_target, to_target, version, at, moved_by)
    VALUES (new.name, new.log_seq % 100, new.log_seq, ${from}, new.target, new.version, new.updated_at, new.moved_by)
    ON CONFLICT (name, slot) DO UPDATE SET seq = excluded.seq, from_target = excluded.from_target, to_target = excluded.to_target,
      version = excluded.version, at = excluded.at, moved_by = excluded.moved_by`;
}

/**
 * Version 6: the newest moves of a ref live in its own row. A compare-and-set then writes one
 * row — the bare `UPDATE`'s page — where version 5 also wrote a slot of the ring (a second page
 * per commit). `refs.recent` holds the moves since the last spill, each `,[seq,to,version,at,by]`
 * (JSON; `from` is where move `seq − 1` went, see `decodeMoves` in refs.ts). Moves are grouped in
 * chunks of `REFLOG_CHUNK` by number (chunk = (seq − 1) / REFLOG_CHUNK): the move that starts a
 * chunk resets `recent`, and the trigger `reflog_spill` writes the moves it held, one row of the
 * table `reflog`, in the same statement — one row write per `REFLOG_CHUNK` moves. `reflog` is a
 * ring of `REFLOG_CHUNKS` chunk rows per ref (slot = chunk mod `REFLOG_CHUNKS`): the newest
 * `REFLOG_LIMIT` + 1 moves always span fewer chunks than that, so the reflog shows exactly what
 * version 5 showed. A chunk written in parts (a ref deleted, and re-created within the same
 * chunk) is appended to. The migration moves version 5's ring into chunks, each move keeping its
 * `from` as a sixth element (the oldest one's predecessor is gone).
 */
export const REFLOG_CHUNK = 6;
/** Chunk rows per ref: enough for REFLOG_LIMIT + 1 moves at any alignment, with one to spare. */
export const REFLOG_CHUNKS = Math.ceil((100 + 1) / REFLOG_CHUNK) + 1;
// Both are part of schema version 6 (the migration and the triggers use them): never change them.

/** Appends moves (`,[…]` each) to chunk `chunk` of a ref's ring, replacing an older chunk in its slot. */
function chunkWrite(name: string, chunk: string, last: string, moves: string, where = ""): string {
  return `INSERT INTO reflog (name, slot, chunk, last_seq, moves) ${where === "" ? "VALUES (" : "SELECT "}${name}, (${chunk}) % ${REFLOG_CHUNKS}, ${chunk}, ${last}, ${moves}${where === "" ? ")" : ` ${where}`}
    ON CONFLICT (name, slot) DO UPDATE SET moves = CASE WHEN chunk = excluded.chunk THEN moves || excluded.moves ELSE excluded.moves END,
      chunk = excluded.chunk, last_seq = excluded.last_seq`;
}

export const SCHEMA_V6 = `
ALTER TABLE refs ADD COLUMN recent TEXT NOT NULL DEFAULT '';
CREATE TABLE reflog_chunks (
  name     TEXT NOT NULL,
  slot     INTEGER NOT NULL,
  chunk    INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  moves    TEXT NOT NULL,
  PRIMARY KEY (name, slot)
) WITHOUT ROWID;
INSERT INTO reflog_chunks (name, slot, chunk, last_seq, moves)
  SELECT name, ((seq - 1) / ${REFLOG_CHUNK}) % ${REFLOG_CHUNKS}, (seq - 1) / ${REFLOG_CHUNK}, max(seq),
    group_concat(',' || json_array(seq, to_target, version, at, moved_by, from_target), '' ORDER BY seq)
  FROM reflog GROUP BY name, (seq - 1) / ${REFLOG_CHUNK};
DROP TRIGGER reflog_create;
DROP TRIGGER reflog_move;
DROP TABLE reflog;
ALTER TABLE reflog_chunks RENAME TO reflog;
CREATE TRIGGER reflog_spill AFTER UPDATE OF log_seq ON refs WHEN old.log_seq % ${REFLOG_CHUNK} = 0 AND old.recent <> '' BEGIN
  ${chunkWrite("old.name", `(old.log_seq - 1) / ${REFLOG_CHUNK}`, "old.log_seq", "old.recent")};
END;
`;

/**
 * The SET part of a move: its number, and `recent` with the move appended (reset first when it
 * starts a chunk). The move is `,[` + its number + the rest of its JSON array, bound as one text
 * the caller builds: `,"<to>",<version>,<at>,"<by>"]` (see `MoveText` in refs.ts).
 */
const LOG_MOVE = `log_seq = log_seq + 1, recent = CASE WHEN log_seq % ${REFLOG_CHUNK} = 0 THEN '' ELSE recent END || ',[' || (log_seq + 1) || ?`;

/** Statements of refs and the reflog (see adapters/sqlite/refs.ts). Rows in raw mode, columns as listed. */
export const REFS = {
  /** (name) → target, version, updated_at, log_seq */
  get: "SELECT target, version, updated_at, log_seq FROM refs WHERE name = ?",
  /** () → name, target, version, updated_at, by name */
  listAll: `SELECT ${REF_COLUMNS} FROM refs ORDER BY name`,
  /** (lower, upper): names in [lower, upper) */
  listRange: `SELECT ${REF_COLUMNS} FROM refs WHERE name >= ? AND name < ? ORDER BY name`,
  /** (lower): names from lower on (a prefix with no upper bound) */
  listFrom: `SELECT ${REF_COLUMNS} FROM refs WHERE name >= ? ORDER BY name`,
  /**
   * (name, target, updated_at, target, updated_at, by, name): a new ref at version 1, its move
   * numbered after the newest of its name's reflog (a deleted ref's reflog goes on) and kept in
   * `recent`. The caller holds the write lock and saw none.
   */
  insert: `INSERT INTO refs (${REF_COLUMNS}, log_seq, recent)
    SELECT ?, ?, 1, ?, s, ',' || json_array(s, ?, 1, ?, ?) FROM (SELECT coalesce((SELECT max(last_seq) FROM reflog WHERE name = ?), 0) + 1 AS s)`,
  /**
   * (target, updated_at, move tail, name, version): a compare-and-set by version, one statement
   * writing one row (every `REFLOG_CHUNK`th move its trigger also writes a chunk). 1 change when
   * it moved.
   */
  casVersion: `UPDATE refs SET target = ?, version = version + 1, updated_at = ?, ${LOG_MOVE} WHERE name = ? AND version = ?`,
  /** (target, version, updated_at, move tail, name): a move; the caller holds the write lock and checked the expectation. */
  update: `UPDATE refs SET target = ?, version = ?, updated_at = ?, ${LOG_MOVE} WHERE name = ?`,
  /** (name) */
  delete: "DELETE FROM refs WHERE name = ?",
  /** (name): the moves a ref holds in its row to their chunk, before the row goes. */
  spill: chunkWrite("name", `(log_seq - 1) / ${REFLOG_CHUNK}`, "log_seq", "recent", "FROM refs WHERE name = ? AND recent <> ''"),
  /** (name, seq, seq, seq, moves): a delete's move (`seq` = the ref's log_seq + 1) to its chunk (a bound number is REAL: cast). */
  logDelete: chunkWrite("?", `(CAST(? AS INTEGER) - 1) / ${REFLOG_CHUNK}`, "?", "?"),
  /** (name, name) → moves: the ref's row's (`recent`, when it exists) and its chunks', in no order. */
  reflog: "SELECT recent FROM refs WHERE name = ? UNION ALL SELECT moves FROM reflog WHERE name = ?",
} as const;

/**
 * Version 3: queries. Every metadata tag is a row of `tags` — (key, value, created_at, id), the
 * primary key in that order — so one tag value's datums come from one index range already in
 * listing order, and a probe for a datum's tag is one seek (its created_at and id are known).
 * Triggers keep the table in step with `data` inside the statement that inserts or deletes a
 * datum; the step backfills what the table held before. The parent index gains (created_at, id),
 * so children list in order from the index alone. See README "Queries".
 */
export const SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS tags (
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  created_at REAL NOT NULL,
  id         TEXT NOT NULL,
  PRIMARY KEY (key, value, created_at, id)
) WITHOUT ROWID;
INSERT INTO tags (key, value, created_at, id)
  SELECT j.key, j.value, d.created_at, d.id FROM data AS d, json_each(d.metadata) AS j
  WHERE d.metadata IS NOT NULL ORDER BY 1, 2, 3, 4;
CREATE TRIGGER IF NOT EXISTS tags_insert AFTER INSERT ON data WHEN new.metadata IS NOT NULL BEGIN
  INSERT INTO tags (key, value, created_at, id) SELECT key, value, new.created_at, new.id FROM json_each(new.metadata);
END;
CREATE TRIGGER IF NOT EXISTS tags_delete AFTER DELETE ON data WHEN old.metadata IS NOT NULL BEGIN
  DELETE FROM tags WHERE (key, value, created_at, id) IN (SELECT key, value, old.created_at, old.id FROM json_each(old.metadata));
END;
DROP INDEX IF EXISTS idx_data_parent;
CREATE INDEX IF NOT EXISTS idx_data_children ON data (causal_parent, created_at, id);
`;

/**
 * Version 4: the tag rows of a deleted datum are found by the whole primary key. Version 3's
 * trigger matched `(key, value, created_at, id) IN (SELECT …)`, which SQLite plans as a search on
 * (key, value) alone once `PRAGMA optimize` has statistics: a tag value that thousands of datums
 * share (a `crdt` or `type` tag) is then walked whole for each deleted datum, so deleting 10 000
 * such datums read 10 000 × 10 000 index entries. With created_at and id as plain equalities the
 * search uses all four columns, one seek per tag.
 */
export const TAGS_DELETE_V4 = `DELETE FROM tags WHERE created_at = old.created_at AND id = old.id AND (key, value) IN (SELECT key, value FROM json_each(old.metadata))`;
export const SCHEMA_V4 = `
DROP TRIGGER IF EXISTS tags_delete;
CREATE TRIGGER tags_delete AFTER DELETE ON data WHEN old.metadata IS NOT NULL BEGIN
  ${TAGS_DELETE_V4};
END;
`;

/**
 * (id, n): the last n steps of a causal chain in one statement. The walk carries only ids and a
 * depth and stops at depth n − 1, so it never reads further than the tail asked for; each distinct
 * datum is read once, with its first depth and how often the walk met it (`n > 1`: a cycle).
 * Rows come oldest (deepest) first.
 */
export const CHAIN_TAIL = `
WITH RECURSIVE
  chain (id, parent, depth) AS (
    SELECT id, causal_parent, 0 FROM data WHERE id = ?
    UNION ALL
    SELECT d.id, d.causal_parent, c.depth + 1 FROM chain AS c JOIN data AS d ON d.id = c.parent
    WHERE c.depth + 1 < ?
  ),
  firsts (id, depth, n) AS (SELECT id, min(depth), count(*) FROM chain GROUP BY id)
SELECT d.id, d.content, d.created_at, d.causal_parent, d.metadata, f.n
FROM firsts AS f JOIN data AS d ON d.id = f.id
ORDER BY f.depth DESC`;

/** (JSON array of ids): the datums among them, in no particular order, each once. */
export const GET_MANY = `SELECT ${COLUMNS} FROM data WHERE id IN (SELECT value FROM json_each(?))`;

/** The largest rowid: the number of rows ever inserted, near enough (query planning's estimate). */
export const MAX_ROWID = "SELECT coalesce(max(rowid), 0) FROM data";

