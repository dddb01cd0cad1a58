/**
 * The starter configs `dgent init` writes. examples/configs/ holds the same files, byte for byte
 * (test/config-examples.test.ts checks it), and the test suite runs each of them.
 */

export type InitProfile = "embedded" | "team-postgres" | "production";
export type ArchiveTier = "s3" | "gcs";

const HEADER = (title: string, lines: string[]) =>
  [
    `# dgent config: ${title}`,
    ...lines.map((l) => `# ${l}`.trimEnd()),
    "#",
    "# ${VAR} and ${VAR:-default} are read from the environment; a value that is exactly ${VAR:-}",
    "# and comes out empty is left out. Check this file with `dgent config validate`; see what it",
    "# resolves to (secrets redacted) with `dgent config print`. Every key: compose/config/README.md in",
    "# the dgent package; the JSON Schema: node_modules/dgent/dist/compose/config/schema.json.",
    "version: 1",
    "",
  ].join("\n");

const EMBEDDED = `${HEADER("embedded (one machine, no server)", [
  "",
  "Writes land on SQLite in <dataDir>/<namespace>.db, safe for several processes at once.",
  "Memory is the last resort if the file cannot be opened: dgent then says so loudly, and",
  "what landed there moves back to SQLite at close.",
])}
# The store's name; the SQLite file is <dataDir>/<namespace>.db.
namespace: \${DGENT_NAMESPACE:-default}

# Where local tiers keep their files (default: $XDG_DATA_HOME/dgent, else ~/.local/share/dgent).
# A relative path starts at this file's directory.
# dataDir: ./data

# The tiers, most durable first: writes land on the first one that is up.
tiers:
  - adapter: sqlite
    options:
      synchronous: NORMAL   # FULL: fsync at every commit (slower; survives power loss, not just crashes)
  - memory

# Data that fell back to memory moves up again by itself; this is how often the upgrader looks.
upgrader:
  intervalMs: 1m

# Plugins by name, with their options (each plugin's README lists them).
plugins:
  - plugin: cache
    options:
      maxEntries: 10000
`;

const TEAM = `${HEADER("team Postgres (a server the team shares)", [
  "",
  "Writes land on Postgres (deploy/ in the dgent repository has a docker compose file for it).",
  "While the server cannot be reached they land on this machine's SQLite file, deletes are",
  "journaled, and everything moves back up when the server returns.",
])}
namespace: \${DGENT_NAMESPACE:-default}

tiers:
  - adapter: postgres-docker
    options:
      # postgres://user:password@host:5432/database: keep the password in the environment.
      url: \${DGENT_DATABASE_URL:-postgres://dgent@localhost:5432/dgent}
      poolSize: \${DGENT_POOL_SIZE:-4}
  - adapter: sqlite           # the fallback while the server is down
  - memory                    # the last resort (announced loudly)

# Writes land here while it is up (default: the first tier).
landing: postgres-docker

upgrader:
  intervalMs: 30s             # how often data that fell back moves up again
  ageMs: 1h

# How soon a tier that went down is tried again: doubling from min to max.
probeBackoffMs:
  min: 250ms
  max: 30s

plugins:
  - plugin: cache
    options:
      maxEntries: 10000
      maxBytes: 67108864      # 64 MiB
`;

const PRODUCTION = (archive: ArchiveTier) => `${HEADER(`production (Postgres on Kubernetes, ${archive === "s3" ? "S3" : "GCS"} archive)`, [
  "",
  "Writes land on Postgres in the cluster (deploy/kind in the dgent repository has manifests).",
  `Datums older than upgrader.ageMs move up to the ${archive === "s3" ? "S3" : "GCS"} bucket, the archive; reads see both.`,
  "While Postgres cannot be reached, writes land on the pod's SQLite file (put dataDir on a",
  "persistent volume) and move back up when it returns.",
])}
namespace: \${DGENT_NAMESPACE:-default}

# The pod's volume, for the fallback tier and the journal of deletes made during an outage.
dataDir: \${DGENT_DATA_DIR:-/var/lib/dgent}

tiers:
${
  archive === "s3"
    ? `  - adapter: s3              # the archive (rank 50)
    options:
      bucket: \${DGENT_S3_BUCKET}
      region: \${AWS_REGION:-us-east-1}
      # Credentials come from the SDK's chain (IRSA / pod identity, AWS_ACCESS_KEY_ID, ...).
      # For an S3-compatible service (MinIO, R2, ...) set its endpoint and, usually, path style:
      endpoint: \${DGENT_S3_ENDPOINT:-}
      forcePathStyle: \${DGENT_S3_FORCE_PATH_STYLE:-}`
    : `  - adapter: gcs             # the archive (rank 50)
    options:
      bucket: \${DGENT_GCS_BUCKET}
      projectId: \${GOOGLE_CLOUD_PROJECT:-}
      # Credentials come from the SDK's chain (workload identity, GOOGLE_APPLICATION_CREDENTIALS).
      # An emulator instead of Google Cloud Storage:
      apiEndpoint: \${DGENT_GCS_ENDPOINT:-}`
}
  - adapter: postgres-kind     # where writes land (rank 40)
    options:
      url: \${DGENT_DATABASE_URL}
      tls: \${DGENT_POSTGRES_TLS:-require}   # verify-full with tls: { mode: verify-full, ca: /path/ca.pem }
      poolSize: \${DGENT_POOL_SIZE:-16}
  - adapter: sqlite            # the fallback while Postgres is down

landing: postgres-kind

upgrader:
  intervalMs: 5m
  ageMs: \${DGENT_ARCHIVE_AFTER:-30d}   # older datums move to the archive
  sizeBytes: 1TB                       # large: only age moves data into the archive

plugins:
  - plugin: cache
    options:
      maxEntries: 50000
`;

/** The starter config of a profile. */
export function initTemplate(profile: InitProfile, archive: ArchiveTier = "s3"): string {
  if (profile === "embedded") return EMBEDDED;
  if (profile === "team-postgres") return TEAM;
  return PRODUCTION(archive);
}

export const INIT_PROFILES: readonly InitProfile[] = ["embedded", "team-postgres", "production"];
export const ARCHIVE_TIERS: readonly ArchiveTier[] = ["s3", "gcs"];

/** The file under examples/configs/ that holds each template. */
export function exampleFileName(profile: InitProfile, archive: ArchiveTier = "s3"): string {
  return profile === "production" ? `production-${archive}.yaml` : `${profile}.yaml`;
}
