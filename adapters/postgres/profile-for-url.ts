/**
 * Which Postgres profile a URL names, with no other import: the default store asks this of every
 * `postgres:` URL, and a command line without one should not load the Postgres tier's modules.
 */

/** The two Postgres tiers of the lattice. Same implementation, different defaults. */
export const POSTGRES_DOCKER = "postgres-docker";
export const POSTGRES_KIND = "postgres-kind";
export type ProfileName = typeof POSTGRES_DOCKER | typeof POSTGRES_KIND;

/** `postgres-kind` for in-cluster service DNS (`*.svc`, `*.svc.cluster.local`), else `postgres-docker`. */
export function profileForUrl(url: string): ProfileName {
  let host = "";
  try {
    host = new URL(url).hostname;
  } catch {
    // An unparsable URL is reported by the tier itself, with the password redacted.
  }
  return /\.svc(\.cluster\.local)?$/i.test(host) ? POSTGRES_KIND : POSTGRES_DOCKER;
}
