import { dgentError } from "../../core/errors.js";
import { RANKS } from "../ranks.js";
import { defineAdapter, instantiateAdapter } from "../../core/registry.js";
import { PostgresAdapter } from "./adapter.js";
import { OPTIONS_SCHEMA, POSTGRES_DOCKER, POSTGRES_KIND, profileForUrl, resolveOptions, type PostgresOptions, type ProfileName } from "./profiles.js";

export { PostgresAdapter } from "./adapter.js";
export { classify, redactUrl } from "./errors.js";
export { MIGRATIONS, type Migration } from "./migrations.js";
export { ORIGIN } from "./notify.js";
export { acquirePool, poolCounters, poolReport, type PoolLease, type PoolReport, type PoolSettings } from "./pool.js";
export { PROFILES, POSTGRES_DOCKER, POSTGRES_KIND, profileForUrl, type PostgresOptions, type Profile, type ProfileName, type TlsMode } from "./profiles.js";

/** Registry keys, error units and config keys of the two Postgres tiers. */
export const ADAPTER_NAMES = Object.freeze([POSTGRES_DOCKER, POSTGRES_KIND] as const);

/** Options of a registry entry: everything but the profile, which the entry fixes. */
export type PostgresTierOptions = Omit<PostgresOptions, "profile">;

const { profile: _profile, ...TIER_PROPERTIES } = OPTIONS_SCHEMA.properties;
const TIER_SCHEMA = { ...OPTIONS_SCHEMA, properties: TIER_PROPERTIES };

function tier(profile: ProfileName, description: string) {
  return defineAdapter<PostgresTierOptions>({
    name: profile,
    rank: RANKS[profile],
    description,
    optionsSchema: TIER_SCHEMA,
    urlSchemes: ["postgres", "postgresql"],
    // One URL, one profile: cluster service DNS (`*.svc`, `*.svc.cluster.local`) is the kind tier.
    fromUrl: (url, context) =>
      profileForUrl(url) !== profile
        ? null
        : { url, namespace: context.namespace, ...(context.purpose === "store" ? {} : { listen: false, notify: false }) },
    create: (options) => new PostgresAdapter(resolveOptions({ ...options, profile })),
  });
}

/** Tier 3: Postgres in a container on this machine (localhost, small pool, no TLS). */
export const postgresDocker = tier(
  POSTGRES_DOCKER,
  "PostgreSQL in a local container: shared by processes on this machine; schema per namespace; LISTEN/NOTIFY changes.",
);

/** Tier 4: Postgres in a Kubernetes cluster (service DNS, TLS, statement timeout, larger pool). */
export const postgresKind = tier(
  POSTGRES_KIND,
  "PostgreSQL in a Kubernetes cluster: shared by every pod; TLS, statement timeout, larger pool; LISTEN/NOTIFY changes.",
);

/**
 * A Postgres tier. `postgresAdapter({ url, namespace: "agent-7" })` uses the `postgres-docker`
 * defaults; pass `profile: "postgres-kind"` for the cluster tier's.
 */
export function postgresAdapter(options: PostgresOptions = {}): PostgresAdapter {
  const { profile = POSTGRES_DOCKER, ...rest } = options;
  const def = profile === POSTGRES_KIND ? postgresKind : profile === POSTGRES_DOCKER ? postgresDocker : null;
  if (def === null) {
    throw dgentError("DGENT_INVALID_OPTIONS", `profile must be "${POSTGRES_DOCKER}" or "${POSTGRES_KIND}", got ${JSON.stringify(profile)}`, {
      unit: POSTGRES_DOCKER,
    });
  }
  return instantiateAdapter(def, rest) as PostgresAdapter;
}
