import { dgentError } from "../../core/errors.js";
import type { ObjectBackend } from "./backend.js";
import { LAYOUT_VERSION } from "./keys.js";
import { DEFAULT_INDEX_DEPTH } from "./options.js";

/**
 * `<root>dgent.json`: facts fixed when a namespace is first opened, read by every later open.
 * The index depth lives here because readers and writers must agree on it: a writer indexing
 * fewer levels than a reader queries would hide datums from that reader's `list`.
 */
export interface Manifest {
  readonly format: "dgent-object-store";
  readonly layout: number;
  readonly indexDepth: number;
}

/**
 * Reads the manifest, creating it (with a create-only write, so racing openers agree) when
 * absent, and checks that the service enforces create-only writes at all.
 */
export async function loadManifest(
  backend: ObjectBackend,
  key: string,
  requestedDepth: number | undefined,
  unit: string,
  attempt: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<Manifest> {
  let body = await attempt(() => backend.get(key));
  if (body === null) {
    const fresh: Manifest = {
      format: "dgent-object-store",
      layout: LAYOUT_VERSION,
      indexDepth: requestedDepth ?? DEFAULT_INDEX_DEPTH,
    };
    const json = Buffer.from(`${JSON.stringify(fresh, null, 2)}\n`, "utf8");
    if (await attempt(() => backend.create(key, json))) body = json;
    else body = await attempt(() => backend.get(key));
    if (body === null) {
      throw dgentError("DGENT_UNAVAILABLE", `the manifest ${key} in ${backend.location} appeared and vanished while opening`, {
        unit,
      });
    }
  }
  const manifest = parse(body, key, backend.location, unit);
  // The append-only law rests on create-only writes. A service that ignores the precondition
  // (some S3-compatible servers do) would let racing writers overwrite each other: refuse it.
  // The probe writes the manifest's own bytes, so even a service that ignores it changes nothing.
  const stored = body;
  if (await attempt(() => backend.create(key, stored))) {
    throw dgentError(
      "DGENT_BACKEND_ERROR",
      `${backend.location} accepted a second create of ${key}: it ignores create-only preconditions ` +
        "(If-None-Match: * / ifGenerationMatch=0), so it cannot keep datums immutable under concurrent writers",
      { unit, details: { location: backend.location } },
    );
  }
  if (requestedDepth !== undefined && requestedDepth !== manifest.indexDepth) {
    throw dgentError(
      "DGENT_INVALID_OPTIONS",
      `the namespace at ${backend.location}/${key.slice(0, -"dgent.json".length)} was created with indexDepth ${manifest.indexDepth}; ` +
        `open it with indexDepth ${manifest.indexDepth} or leave the option out`,
      { unit, details: { requested: requestedDepth, stored: manifest.indexDepth } },
    );
  }
  return manifest;
}

function parse(body: Uint8Array, key: string, location: string, unit: string): Manifest {
  let value: Partial<Manifest>;
  try {
    value = JSON.parse(Buffer.from(body).toString("utf8")) as Partial<Manifest>;
  } catch (error) {
    throw dgentError("DGENT_BACKEND_ERROR", `${location}/${key} is not a dgent manifest (not JSON)`, { unit, cause: error });
  }
  if (value.format !== "dgent-object-store" || typeof value.layout !== "number" || typeof value.indexDepth !== "number") {
    throw dgentError("DGENT_BACKEND_ERROR", `${location}/${key} is not a dgent manifest`, { unit });
  }
  if (value.layout > LAYOUT_VERSION) {
    throw dgentError(
      "DGENT_SCHEMA_TOO_NEW",
      `${location}/${key} uses object layout ${value.layout}; this dgent reads layout ${LAYOUT_VERSION} — upgrade dgent`,
      { unit, details: { layout: value.layout, supported: LAYOUT_VERSION } },
    );
  }
  return value as Manifest;
}
