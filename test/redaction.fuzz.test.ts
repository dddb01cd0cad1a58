import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { inspect } from "node:util";
import fc from "fast-check";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAdapter } from "../adapters/postgres/index.js";
import { sqliteAdapter } from "../adapters/sqlite/index.js";
import { run } from "../cli/commands.js";
import { errorLine } from "../cli/main.js";
import { defaultRegistry } from "../compose/catalogue.js";
import { makeDatum } from "../core/datum.js";
import { redactConfig, redactText, redactUrl } from "../core/redact.js";
import { startGcsEmulator, type GcsEmulator } from "./harness/gcs-emulator.js";
import { startPostgres, type PostgresServer } from "./harness/postgres.js";
import { startS3, type S3Server } from "./harness/s3.js";

// Every secret-bearing form the config and the CLI can carry — URL userinfo with any reserved
// character (raw and percent-encoded), secret query parameters and fragments, conninfo pairs,
// PEM private keys of every header form, S3 and GCS credentials, values from `${VAR}` — made of
// random marker tokens and fed to every output path: the redaction functions, `dgent config
// print` (YAML and JSON), `dgent config validate`, `dgent backend` (locations and errors),
// `dgent migrate`'s report and errors, and the Postgres, S3 and GCS tiers' own errors. No token
// of a secret may appear in any output, in any spelling.

let pg: PostgresServer;
let s3: S3Server;
let gcs: GcsEmulator;
const home = mkdtempSync(join(tmpdir(), "dgent-redaction-"));
const roles: string[] = [];
const BUCKET = "fuzz-bucket";
let source: string;

beforeAll(async () => {
  [pg, s3, gcs] = await Promise.all([startPostgres(), startS3(), startGcsEmulator()]);
  await s3.createBucket(BUCKET);
  gcs.createBucket(BUCKET);
  // A small store for `dgent migrate --from` (its target is where the secrets are).
  source = join(home, "source.db");
  const db = sqliteAdapter({ path: source });
  await db.open();
  for (let i = 0; i < 3; i++) await db.put(makeDatum({ id: `m/${i}`, content: `m${i}` }));
  await db.close();
}, 300_000);

afterAll(async () => {
  for (const role of roles) await pg.query(`DROP OWNED BY ${role} CASCADE; DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await Promise.allSettled([pg?.close(), s3?.stop(), gcs?.stop()]);
  rmSync(home, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Generators

/** Letters and digits without look-alikes: the stuff of tokens, never a reserved character. */
const ALNUM = [..."ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"];
/** A marker token: found in an output only if the secret it was part of leaked. */
const token = fc.array(fc.constantFrom(...ALNUM), { minLength: 8, maxLength: 12 }).map((cs) => `Qz${cs.join("")}`);
/** URL-reserved and other troublesome characters a password may hold. */
const RESERVED = [..." @:/?#%&=+$,;[]!'()*~\"\\<>{}|^`", "\t"];

interface Secret {
  readonly value: string;
  readonly tokens: readonly string[];
}

/** A secret: tokens joined (and maybe framed) by runs of the given separator characters. */
function secret(separators: readonly string[] = RESERVED, maxTokens = 4): fc.Arbitrary<Secret> {
  const sep = fc.array(fc.constantFrom(...separators), { minLength: 1, maxLength: 3 }).map((cs) => cs.join(""));
  return fc
    .tuple(fc.array(token, { minLength: 1, maxLength: maxTokens }), fc.array(sep, { minLength: 5, maxLength: 5 }), fc.boolean(), fc.boolean())
    .map(([tokens, seps, lead, trail]) => {
      let value = lead ? (seps[4] as string) : "";
      tokens.forEach((t, i) => (value += (i ? (seps[i % 4] as string) : "") + t));
      if (trail) value += seps[3] as string;
      return { value, tokens };
    });
}

/** Secrets in free text end at white space and double quotes; raw query values at `&`. */
const TEXT_SAFE = RESERVED.filter((c) => !/[\s"<>`]/.test(c));
const QUERY_SAFE = RESERVED.filter((c) => c !== "&");
/** A raw query value in free text ends at both. */
const TEXT_QUERY_SAFE = TEXT_SAFE.filter((c) => c !== "&");

const QUERY_PARAMS = ["password", "sslpassword", "token", "access_token", "sig", "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "X-Goog-Signature", "api_key", "apiKey", "client_secret", "key"];
const PEM_KINDS = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY"];

/** A PEM private key whose body is the secret's tokens; `end: false` is one cut short. */
function pem(kind: string, s: Secret, eol: string, end: boolean): string {
  const body = s.tokens.join("+/").match(/.{1,24}/g) ?? [];
  return [`-----BEGIN ${kind}-----`, ...body, ...(end ? [`-----END ${kind}-----`, ""] : [])].join(eol);
}

/** Fails naming the token and the output when any token of `s` appears in any output. */
function expectHidden(s: Secret | readonly Secret[], outputs: Record<string, string>): void {
  const all = Array.isArray(s) ? (s as readonly Secret[]) : [s as Secret];
  for (const { tokens } of all) {
    for (const t of tokens) {
      for (const [where, text] of Object.entries(outputs)) {
        if (text.includes(t)) throw new Error(`the secret token ${t} appears in ${where}:\n${text}`);
      }
    }
  }
}

interface Out {
  code: number;
  out: string;
  err: string;
}

async function dgent(args: string[], env: Record<string, string> = {}): Promise<Out> {
  let out = "";
  let err = "";
  const io = {
    stdout: (c: string | Uint8Array) => (out += typeof c === "string" ? c : Buffer.from(c).toString()),
    stderr: (c: string) => (err += c),
    stdin: Readable.from([]) as unknown as NodeJS.ReadableStream,
    env: { HOME: home, XDG_DATA_HOME: join(home, "xdg"), ...env },
  };
  try {
    return { code: await run(args, io), out, err };
  } catch (error) {
    return { code: 1, out, err: err + errorLine(error) };
  }
}

function outputs(label: string, r: Out): Record<string, string> {
  return { [`${label} stdout`]: r.out, [`${label} stderr`]: r.err };
}

async function errorOf(work: () => Promise<unknown>): Promise<Error | null> {
  try {
    await work();
    return null;
  } catch (error) {
    return error as Error;
  }
}

function errorTexts(label: string, error: Error | null): Record<string, string> {
  if (error === null) return {};
  return { [`${label} message`]: error.message, [`${label} stack`]: String(error.stack), [`${label} inspected`]: inspect(error, { depth: 8 }) };
}

/** A login role of the test server whose password is the secret (so percent-encoded URLs connect). */
async function role(s: Secret): Promise<string> {
  const name = `fz_${randomBytes(5).toString("hex")}`;
  roles.push(name);
  await pg.query(`CREATE ROLE ${name} LOGIN PASSWORD '${s.value.replace(/'/g, "''")}'`);
  await pg.query(`GRANT CREATE ON DATABASE postgres TO ${name}`);
  return name;
}

let cycle = 0;
/** Takes the forms in turn, so a short run still meets every one. */
const next = <T>(items: readonly T[]): T => items[cycle++ % items.length] as T;

// ---------------------------------------------------------------------------------------------

describe("redaction, fuzzed: the functions", () => {
  type Form = "userinfo-raw" | "userinfo-encoded" | "query-raw" | "query-encoded" | "fragment" | "conninfo" | "json" | "pem" | "bearer";
  const FORMS: Form[] = ["userinfo-raw", "userinfo-encoded", "query-raw", "query-encoded", "fragment", "conninfo", "json", "pem", "bearer"];
  const SCHEMES = ["postgres", "postgresql", "https", "s3", "redis", "mysql"];

  function build(form: Form, s: Secret, param: string, scheme: string, pemKind: string, eol: string, end: boolean): string {
    const enc = encodeURIComponent(s.value);
    switch (form) {
      case "userinfo-raw":
        return `${scheme}://agent:${s.value}@db.example:5432/app?sslmode=require`;
      case "userinfo-encoded":
        return `${scheme}://agent:${enc}@db.example:5432/app`;
      case "query-raw":
        return `${scheme}://db.example/app?sslmode=require&${param}=${s.value}&application_name=x`;
      case "query-encoded":
        return `${scheme}://db.example/app?${param}=${enc}`;
      case "fragment":
        return `${scheme}://host/cb#state=1&${param}=${enc}`;
      case "conninfo":
        return `host=db.example ${param === "key" ? "password" : param}='${s.value.replace(/[\\']/g, "\\$&")}' user=agent`;
      case "json":
        return JSON.stringify({ user: "agent", [param === "key" ? "password" : param]: s.value });
      case "pem":
        return pem(pemKind, s, eol, end);
      case "bearer":
        return `Authorization: Bearer ${s.tokens.join(".")}`;
    }
  }

  it("redactUrl, redactText and redactConfig hide every form, alone, in a sentence and in a config", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(
        fc.constantFrom(...FORMS),
        secret(),
        secret(TEXT_SAFE),
        secret(QUERY_SAFE),
        secret(TEXT_QUERY_SAFE),
        fc.constantFrom(...QUERY_PARAMS),
        fc.constantFrom(...SCHEMES),
        fc.constantFrom(...PEM_KINDS),
        fc.constantFrom("\n", "\r\n", "\\n"),
        fc.boolean(),
        (form, any, textOnly, querySafe, textQuerySafe, param, scheme, pemKind, eol, end) => {
          seen.add(form);
          const s = form === "query-raw" ? querySafe : any;
          const value = build(form, s, param, scheme, pemKind, eol, end);
          const outs: Record<string, string> = {
            redactText: redactText(value),
            redactConfig: JSON.stringify(redactConfig({ url: value, nested: { password: s.value, list: [value] }, n: 1 })),
          };
          if (form.startsWith("userinfo") || form.startsWith("query") || form === "fragment") outs.redactUrl = redactUrl(value);
          expectHidden(s, outs);
          // In running text a secret ends where the text's next word begins: the white-space-free one.
          // A raw query value ends at "&" too: "password=a&b=c" holds the password "a".
          const textSafe = form === "query-raw" ? textQuerySafe : textOnly;
          const inText = build(form, textSafe, param, scheme, pemKind, eol, end);
          expectHidden(textSafe, { sentence: redactText(`open failed at ${inText}: connection refused (retrying)`) });
          // Redacting twice changes nothing more.
          expect(redactText(outs.redactText as string)).toBe(outs.redactText);
        },
      ),
      { numRuns: 600 },
    );
    expect([...seen].sort()).toEqual([...FORMS].sort());
  });

  it("a named secret is removed raw, percent-encoded and JSON-escaped, whatever it holds", () => {
    fc.assert(
      fc.property(secret(), (s) => {
        const text = `a: ${s.value} b: ${encodeURIComponent(s.value)} c: ${JSON.stringify(s.value)} d: ${encodeURI(s.value)}`;
        expectHidden(s, { redactText: redactText(text, [s.value]) });
      }),
      { numRuns: 300 },
    );
  });
});

describe("redaction, fuzzed: every output of the CLI and the tiers", () => {
  /** A config file with every secret form this run holds; the secrets partly from the environment. */
  function configFile(opts: {
    variant: "postgres-s3" | "gcs";
    dbUrl: string;
    env: Record<string, string>;
    envForm: "whole" | "password" | "default";
    pw: Secret;
    user: string;
    pemKey: string;
    s3: { accessKeyId: string; secretAccessKey: string; sessionToken: string };
    endpointQuery: string;
    gcsKey: string;
    tls: boolean;
    invalid: boolean;
    /** Send the GCS key to the emulator (which then fails on a key that is no key). */
    gcsAuth: boolean;
  }): string {
    const dir = join(home, `cfg-${randomBytes(4).toString("hex")}`);
    mkdirSync(dir);
    const host = `127.0.0.1:${pg.port}`;
    const literal = (s: string) => s.replace(/\$/g, "$$$$");
    const url =
      opts.envForm === "whole"
        ? "${FZ_DB_URL}"
        : opts.envForm === "password"
          ? `postgres://${opts.user}:\${FZ_PW}@${host}/postgres`
          : `\${FZ_UNSET:-postgres://${opts.user}:${encodeURIComponent(opts.pw.value)}@${host}/postgres}`;
    opts.env.FZ_DB_URL = opts.dbUrl;
    opts.env.FZ_PW = opts.pw.value;
    opts.env.FZ_S3_SECRET = opts.s3.secretAccessKey;
    const postgres = {
      adapter: "postgres-docker",
      options: {
        url: opts.invalid ? `mysql://${opts.user}:${literal(opts.pw.value)}@${host}/x` : url,
        connectTimeoutMs: 3000,
        ...(opts.tls ? { tls: { mode: "verify-full", ca: literal(opts.pemKey) } } : {}),
      },
    };
    const tiers =
      opts.variant === "postgres-s3"
        ? [
            {
              adapter: "s3",
              options: {
                bucket: BUCKET,
                endpoint: `${s3.endpoint}/${opts.endpointQuery}`,
                region: "us-east-1",
                forcePathStyle: true,
                maxAttempts: 1,
                credentials: { accessKeyId: literal(opts.s3.accessKeyId), secretAccessKey: "${FZ_S3_SECRET}", sessionToken: literal(opts.s3.sessionToken) },
              },
            },
            postgres,
            { adapter: "sqlite" },
          ]
        : [
            {
              adapter: "gcs",
              options: {
                bucket: BUCKET,
                apiEndpoint: gcs.url,
                projectId: "fuzz",
                useAuthWithCustomEndpoint: opts.gcsAuth,
                maxAttempts: 1,
                credentials: { client_email: "fuzz@fuzz.iam.gserviceaccount.com", private_key: literal(opts.gcsKey) },
              },
            },
            postgres,
            { adapter: "sqlite" },
          ];
    const file = join(dir, "dgent.config.yaml");
    writeFileSync(file, stringify({ version: 1, namespace: `ns${randomBytes(4).toString("hex")}`, dataDir: join(dir, "data"), tiers }, { lineWidth: 0 }));
    return file;
  }

  it("config print and config validate, YAML and JSON, from a file and from the environment", async () => {
    await fc.assert(
      fc.asyncProperty(secret(), secret(), secret(), secret(QUERY_SAFE), secret(), fc.boolean(), async (pw, s3Secret, pemSecret, querySecret, gcsSecret, encoded) => {
        const user = "fuzzuser";
        const dbUrl = `postgres://${user}:${encoded ? encodeURIComponent(pw.value) : pw.value}@127.0.0.1:${pg.port}/postgres?sslmode=disable&${next(QUERY_PARAMS)}=${encodeURIComponent(querySecret.value)}`;
        const env: Record<string, string> = {};
        const akid = `AKIA${s3Secret.tokens[0]}`;
        const file = configFile({
          variant: cycle % 2 === 0 ? "postgres-s3" : "gcs",
          dbUrl,
          env,
          envForm: next(["whole", "password", "default"] as const),
          pw,
          user,
          pemKey: pem(next(PEM_KINDS), pemSecret, "\n", cycle % 3 !== 0),
          s3: { accessKeyId: akid, secretAccessKey: s3Secret.value, sessionToken: `Qs${s3Secret.tokens.join("")}` },
          endpointQuery: `?X-Amz-Signature=${encodeURIComponent(querySecret.value)}&X-Amz-Credential=${encodeURIComponent(querySecret.value)}`,
          gcsKey: pem(next(PEM_KINDS), gcsSecret, "\n", true),
          tls: cycle % 2 === 1,
          invalid: cycle % 5 === 0,
          gcsAuth: true,
        });
        const results: Record<string, string> = {};
        for (const args of [["config", "print"], ["config", "print", "--json"], ["config", "validate"], ["config", "validate", "--json"]]) {
          Object.assign(results, outputs(args.join(" "), await dgent([...args, "--config", file], env)));
        }
        for (const args of [["config", "print"], ["config", "print", "--json"]]) {
          Object.assign(results, outputs(`${args.join(" ")} (DGENT_DATABASE_URL)`, await dgent(args, { DGENT_DATABASE_URL: dbUrl })));
        }
        expectHidden([pw, s3Secret, pemSecret, querySecret, gcsSecret], { ...results });
        expect(Object.values(results).join("")).toMatch(/\*\*\*|<redacted>/); // something was there to hide
      }),
      { numRuns: 30 },
    );
  });

  it("dgent backend, dgent migrate (header and errors) and the Postgres tier's errors, against a server that knows the password", async () => {
    await fc.assert(
      fc.asyncProperty(secret(), fc.constantFrom("encoded", "raw") as fc.Arbitrary<"encoded" | "raw">, async (pw, form) => {
        const name = await role(pw);
        const password = form === "encoded" ? encodeURIComponent(pw.value) : pw.value;
        const url = `postgres://${name}:${password}@127.0.0.1:${pg.port}/postgres`;
        const ns = `fz${randomBytes(4).toString("hex")}`;
        const data = join(home, `data-${ns}`);
        const env = { DGENT_DATABASE_URL: url };
        const results: Record<string, string> = {};
        Object.assign(results, outputs("backend", await dgent(["backend", "-n", ns, "--data-dir", data], env)));
        Object.assign(results, outputs("backend --json", await dgent(["backend", "-n", ns, "--data-dir", data, "--json"], env)));
        const dry = await dgent(["migrate", "--from", `sqlite://${source}`, "--to", url, "--namespace", `m${ns}`, "--dry-run"]);
        Object.assign(results, outputs("migrate --dry-run", dry));
        Object.assign(results, outputs("migrate --json", await dgent(["migrate", "--from", `sqlite://${source}`, "--to", url, "--namespace", `m${ns}`, "--dry-run", "--json"])));
        Object.assign(results, outputs("migrate (source)", await dgent(["migrate", "--from", url, "--to", `sqlite://${join(data, "t.db")}`, "--namespace", `none${ns}`, "--dry-run"])));
        if (form === "encoded") {
          // The password is right: the store is on Postgres, and the report's header names the target, redacted.
          const report = JSON.parse(results["backend --json stdout"] || "{}") as { landing?: string; degraded?: boolean };
          expect(report, results["backend --json stderr"]).toMatchObject({ landing: "postgres-docker", degraded: false });
          expect(dry.out, dry.err).toContain(`→ postgres://${name}:***@127.0.0.1:${pg.port}/postgres`);
        }
        // The tier itself: opening with the password, with a wrong one, and where nothing listens.
        const tier = await errorOf(async () => {
          const a = postgresAdapter({ url, namespace: ns, listen: false, connectTimeoutMs: 3000 });
          await a.open();
          Object.assign(results, { location: a.redactedUrl });
          await a.close();
        });
        Object.assign(results, errorTexts("open", tier));
        const wrong = `postgres://${name}:${encodeURIComponent(`${pw.value}x`)}@127.0.0.1:${pg.port}/postgres`;
        Object.assign(results, errorTexts("wrong password", await errorOf(() => postgresAdapter({ url: wrong, namespace: ns, listen: false }).open())));
        Object.assign(results, errorTexts("unreachable", await errorOf(() => postgresAdapter({ url: url.replace(`:${pg.port}/`, ":1/"), listen: false }).open())));
        expectHidden(pw, results);
      }),
      // The examples are cases CI found. A raw `#` in the password moves the rest of the URL into
      // a fragment for a URL parser, so it must be redacted from the URL as given. A raw `@` and
      // `?` make the driver take part of the password for the host and print it in "getaddrinfo
      // ENOTFOUND <host>", so each part of the password is a secret of its own.
      {
        numRuns: 16,
        examples: [
          [{ value: "# QzAAAAAAAA", tokens: ["QzAAAAAAAA"] }, "raw"],
          [{ value: "@QzAAAAAAAA}QzAAAAAAAA)QzAAAAAAAA?QzAAAAAAAA", tokens: ["QzAAAAAAAA", "QzAAAAAAAA", "QzAAAAAAAA", "QzAAAAAAAA"] }, "raw"],
        ],
      },
    );
  }, 600_000);

  it("dgent backend with S3, GCS and Postgres tiers in a config: locations and errors", async () => {
    await fc.assert(
      fc.asyncProperty(secret(), secret(), secret(QUERY_SAFE), secret(), async (pw, s3Secret, querySecret, gcsSecret) => {
        const name = await role(pw);
        const env: Record<string, string> = {};
        const variant = cycle % 2 === 0 ? "postgres-s3" : "gcs";
        const file = configFile({
          variant,
          dbUrl: `postgres://${name}:${encodeURIComponent(pw.value)}@127.0.0.1:${pg.port}/postgres`,
          env,
          envForm: next(["whole", "password", "default"] as const),
          pw,
          user: name,
          pemKey: pem(next(PEM_KINDS), gcsSecret, "\n", true),
          // The harness's access key id, so the tier opens and shows where it is; s3rver checks no signature.
          s3: { accessKeyId: "S3RVER", secretAccessKey: s3Secret.value, sessionToken: `Qs${s3Secret.tokens.join("")}` },
          endpointQuery: `?X-Amz-Signature=${encodeURIComponent(querySecret.value)}`,
          gcsKey: pem(next(PEM_KINDS), gcsSecret, "\n", cycle % 2 === 0),
          tls: false,
          invalid: false,
          gcsAuth: false,
        });
        const results: Record<string, string> = {
          ...outputs("backend", await dgent(["backend", "--config", file], env)),
          ...outputs("backend --json", await dgent(["backend", "--config", file, "--json"], env)),
        };
        // Every tier opened with its secret: the secrets were really in use.
        const report = JSON.parse(results["backend --json stdout"] || "{}") as { tiers?: Array<{ name: string; up: boolean; location: string | null }> };
        expect(report.tiers?.map((t) => [t.name, t.up]), results["backend --json stderr"]).toEqual([[variant === "gcs" ? "gcs" : "s3", true], ["postgres-docker", true], ["sqlite", true]]);
        expectHidden([pw, s3Secret, querySecret, gcsSecret], results);
      }),
      { numRuns: 6 },
    );
  }, 600_000);

  it("the S3 and GCS tiers' errors for bad options, bad keys and unreachable endpoints", async () => {
    await fc.assert(
      fc.asyncProperty(secret(), secret(QUERY_SAFE), secret(), async (s3Secret, querySecret, keySecret) => {
        const credentials = { accessKeyId: `AKIA${s3Secret.tokens[0]}`, secretAccessKey: s3Secret.value, sessionToken: `Qs${s3Secret.tokens.join("")}` };
        const endpoint = `http://127.0.0.1:1/?X-Amz-Signature=${encodeURIComponent(querySecret.value)}`;
        const results: Record<string, string> = {
          ...errorTexts("s3 bad options", await errorOf(() => defaultRegistry.createAdapter("s3", { bucket: BUCKET, partSize: 1, credentials }))),
          ...errorTexts("s3 bad endpoint", await errorOf(() => defaultRegistry.createAdapter("s3", { bucket: BUCKET, endpoint: `ftp://x:${encodeURIComponent(s3Secret.value)}@h`, credentials }))),
          ...errorTexts(
            "s3 unreachable",
            await errorOf(async () => (await defaultRegistry.createAdapter("s3", { bucket: BUCKET, endpoint, region: "us-east-1", forcePathStyle: true, maxAttempts: 1, credentials })).open()),
          ),
        };
        const gcsCredentials = { client_email: "fuzz@fuzz.iam.gserviceaccount.com", private_key: pem(next(PEM_KINDS), keySecret, "\n", cycle % 2 === 0) };
        Object.assign(
          results,
          errorTexts("gcs bad options", await errorOf(() => defaultRegistry.createAdapter("gcs", { bucket: BUCKET, chunkSize: 3, credentials: gcsCredentials }))),
          errorTexts(
            "gcs bad key",
            await errorOf(async () =>
              (await defaultRegistry.createAdapter("gcs", { bucket: BUCKET, apiEndpoint: gcs.url, projectId: "fuzz", useAuthWithCustomEndpoint: true, maxAttempts: 1, credentials: gcsCredentials })).open(),
            ),
          ),
          errorTexts(
            "gcs unreachable",
            await errorOf(async () => (await defaultRegistry.createAdapter("gcs", { bucket: BUCKET, apiEndpoint: "http://127.0.0.1:1", projectId: "fuzz", maxAttempts: 1, credentials: gcsCredentials })).open()),
          ),
        );
        expect(Object.keys(results).filter((k) => k.endsWith("message"))).toHaveLength(6); // each of them failed
        expectHidden([s3Secret, querySecret, keySecret], results);
      }),
      { numRuns: 20 },
    );
  });
});
