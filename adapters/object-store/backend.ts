/**
 * What the object-store tier needs from a service: eight calls on keys in one bucket. An S3 or
 * GCS driver implements it on its SDK and maps every SDK error once, in its own `errors.ts`:
 * a missing object is a `null`/`false` result, a failed precondition is a `false` result, and
 * everything else is thrown as a `DgentError` (`DGENT_UNAVAILABLE`, retryable, for throttling,
 * 5xx and network trouble; `DGENT_BACKEND_ERROR` otherwise). Retries happen above this
 * interface, so drivers switch their SDK's own retries off.
 */

/** One object as a listing shows it. */
export interface ListedObject {
  readonly key: string;
  /** What a conditional delete compares: the ETag (S3) or generation (GCS). */
  readonly version: string;
  /** Last modification time, epoch ms (the service's clock). */
  readonly modifiedAt: number;
  readonly size: number;
}

export interface ListPage {
  readonly objects: readonly ListedObject[];
  /** Pass back to get the next page; null when this was the last. */
  readonly cursor: string | null;
}

export interface ObjectBackend {
  /** Where the data lives, for messages: `s3://bucket` or `gs://bucket`. */
  readonly location: string;
  /** Connects; creates the bucket when asked to. */
  open(createBucket: boolean): Promise<void>;
  close(): Promise<void>;
  /** The body, or null when there is no such object. */
  get(key: string): Promise<Uint8Array | null>;
  /** Creates `key` only if it does not exist. False when it already did (nothing was written). */
  create(key: string, body: Uint8Array): Promise<boolean>;
  /** Writes `key` whatever is there; returns the new version. */
  put(key: string, body: Uint8Array): Promise<string>;
  /**
   * Deletes `key`; with `ifVersion`, only while it still has that version (where the service
   * supports conditional deletes). False when there was nothing to delete or the version moved on.
   */
  delete(key: string, ifVersion?: string): Promise<boolean>;
  /** Keys starting with `prefix` in key order, at most `max` per page. */
  list(prefix: string, cursor: string | null, max: number): Promise<ListPage>;
  /** A cheap reachability check (e.g. a bucket HEAD); throws like any other call. */
  ping(): Promise<void>;
}
