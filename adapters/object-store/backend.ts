/**
 * What the object-store tier needs from a service: eight calls on keys in one bucket, two more
 * (`read`, `write`: conditional writes on a version) for refs, and two optional ones that make
 * queries cheaper (`readHead`: a ranged read; `deleteKeys`: a batch delete). An S3 or GCS driver
 * implements it on its SDK and maps every SDK error once, in its own `errors.ts`:
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

/** An object's body with the version a conditional write compares. */
export interface VersionedBody {
  readonly body: Uint8Array;
  /** The ETag (S3) or generation (GCS) of exactly this body. */
  readonly version: string;
}

/** The first bytes of an object, and its whole size. */
export interface HeadRead {
  /** Up to the requested length; the whole body when the object is that short. */
  readonly body: Uint8Array;
  /** The object's size in bytes (from `Content-Range`), or null when the service did not say. */
  readonly size: number | null;
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
  /**
   * With refs: the body and its version, read in one request, or null when there is no object.
   */
  read?(key: string): Promise<VersionedBody | null>;
  /**
   * With refs: writes `key` only if it still has version `ifVersion` (`If-Match` on the ETag,
   * `ifGenerationMatch`), or, with `null`, only if it does not exist (`If-None-Match: *`,
   * `ifGenerationMatch=0`). Returns the new version, or null when the precondition failed (HTTP
   * 412, or the object is gone) and nothing was written.
   */
  write?(key: string, body: Uint8Array, ifVersion: string | null): Promise<string | null>;
  /**
   * Keys starting with `prefix` in key order, at most `max` per page. With `startAfter` (and no
   * `cursor`), only keys after it (S3 `StartAfter`, GCS `startOffset`). Callers still drop keys
   * at or before `startAfter`, so a backend that ignores it stays correct, only slower.
   */
  list(prefix: string, cursor: string | null, max: number, startAfter?: string): Promise<ListPage>;
  /**
   * Optional: the first `length` bytes of `key` (an HTTP `Range` read) and the object's size, or
   * null when there is no object. Queries read datum envelopes with it, without their contents;
   * without it they read whole objects.
   */
  readHead?(key: string, length: number): Promise<HeadRead | null>;
  /**
   * Optional: deletes up to 1000 keys in one request (S3 `DeleteObjects`); a missing key is not
   * an error. Not atomic: a failure may leave some deleted. Without it, `deleteMany` deletes
   * object by object.
   */
  deleteKeys?(keys: readonly string[]): Promise<void>;
  /** A cheap reachability check (e.g. a bucket HEAD); throws like any other call. */
  ping(): Promise<void>;
}
