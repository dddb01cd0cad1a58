/**
 * `dgent serve`: the HTTP API (server/README.md) over the stores the CLI composes — the config
 * file's, one per namespace served — with the change log in SQLite beside the data.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { createStoreFromConfig, resolveConfig } from "../compose/config/compose.js";
import { openDefaultStore, resolveEnvironment } from "../compose/default-store.js";
import { dgentError } from "../core/errors.js";
import { assertNamespace } from "../core/paths.js";
import { createStore, type Store } from "../core/store.js";
import type { AuthOptions } from "../server/auth.js";
import { type Command, type Context, configFor, overrides, print, quoted, usage } from "./command.js";
import { safe } from "./terminal.js";

export const DEFAULT_PORT = 7411;

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

function readAuth(path: string): AuthOptions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw usage(`cannot read --auth ${safe(path)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw dgentError("DGENT_CONFIG_SYNTAX", `--auth ${safe(path)} is not valid ${/\.ya?ml$/i.test(path) ? "YAML" : "JSON"}: ${(error as Error).message}`, { unit: "cli" });
  }
  return parsed as AuthOptions;
}

async function readStdin(stdin: Context["io"]["stdin"]): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8").trim();
}

/** The stores of the served namespaces, composed as every other command composes its one store. */
function opener(ctx: Context, allowed: ReadonlySet<string> | "any"): (namespace: string) => Promise<Store | null> {
  const found = configFor(ctx);
  const base = overrides(ctx);
  return async (namespace) => {
    if (allowed !== "any" && !allowed.has(namespace)) return null;
    const options = { env: ctx.io.env, ...base, namespace };
    const store = found ? await createStoreFromConfig(found.path, options) : await openDefaultStore(options);
    await store.open();
    return store;
  };
}

async function dataDirOf(ctx: Context, namespace: string): Promise<string> {
  const found = configFor(ctx);
  if (found) return (await resolveConfig(found.path, { env: ctx.io.env, ...overrides(ctx), namespace })).dataDir;
  return resolveEnvironment(ctx.io.env, { ...overrides(ctx), namespace }).dataDir;
}

export const SERVE_COMMANDS: Record<string, Command> = {
  serve: {
    summary: "serve the store over HTTP: REST per namespace, a change stream (SSE), bearer tokens (server/README.md)",
    usage:
      "dgent serve [--port N] [--host H] (--auth FILE | --no-auth) [--namespaces NS,...|'*'] [--tls-key F --tls-cert F] [--cors ORIGIN]... [--body-limit BYTES] [--log] [--inspector] · dgent serve --hash-token < token",
    options: {
      port: { type: "string" },
      host: { type: "string" },
      auth: { type: "string" },
      "no-auth": { type: "boolean" },
      namespaces: { type: "string" },
      "tls-key": { type: "string" },
      "tls-cert": { type: "string" },
      cors: { type: "string", multiple: true },
      "body-limit": { type: "string" },
      log: { type: "boolean" },
      inspector: { type: "boolean" },
      "hash-token": { type: "boolean" },
    },
    async run(ctx) {
      const v = ctx.values;
      if (ctx.positionals.length) throw usage(`serve takes no arguments; usage: ${SERVE_COMMANDS.serve?.usage}`);
      // The server and its framework load only for this command, never on other commands' path.
      const { createServer, hashToken } = await import("../server/index.js");
      if (v["hash-token"]) {
        const token = await readStdin(ctx.io.stdin);
        if (token === "") throw usage("--hash-token reads the token on stdin; got nothing");
        print(ctx.io, hashToken(token));
        return 0;
      }
      const port = v.port === undefined ? DEFAULT_PORT : Number(v.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`--port takes a port number, got ${quoted(String(v.port))}`);
      const host = (v.host as string | undefined) ?? "127.0.0.1";
      if ((v.auth === undefined) === (v["no-auth"] !== true)) throw usage("give --auth FILE (bearer tokens, hashed) or --no-auth (loopback only)");
      if (v["no-auth"] && !LOOPBACK.has(host)) throw usage(`--no-auth serves only on a loopback host (127.0.0.1, ::1); ${quoted(host)} is reachable from elsewhere: give --auth FILE`);
      if ((v["tls-key"] === undefined) !== (v["tls-cert"] === undefined)) throw usage("--tls-key and --tls-cert go together");
      const bodyLimit = v["body-limit"] === undefined ? undefined : Number(v["body-limit"]);
      if (bodyLimit !== undefined && !(Number.isInteger(bodyLimit) && bodyLimit > 0)) throw usage("--body-limit takes a number of bytes");
      const auth = v.auth === undefined ? null : readAuth(v.auth as string);

      const home = (ctx.values.namespace as string | undefined) ?? ctx.io.env.DGENT_NAMESPACE ?? "default";
      const list = v.namespaces as string | undefined;
      const allowed: ReadonlySet<string> | "any" = list === "*" ? "any" : new Set(list === undefined ? [home] : list.split(",").map((s) => s.trim()).filter(Boolean));
      if (allowed !== "any") for (const ns of allowed) assertNamespace(ns);

      const dataDir = await dataDirOf(ctx, home);
      const { sqliteAdapter } = await import("../adapters/sqlite/index.js");
      const changeLog = createStore({ tiers: [sqliteAdapter({ path: join(dataDir, "serve-changes.db") })], namespace: "changes" });
      await changeLog.open();
      const server = await createServer(opener(ctx, allowed), {
        auth,
        changeLog,
        ...(bodyLimit !== undefined ? { bodyLimit } : {}),
        ...(v["tls-key"] !== undefined ? { https: { key: readFileSync(v["tls-key"] as string), cert: readFileSync(v["tls-cert"] as string) } } : {}),
        ...(v.cors !== undefined ? { cors: { origins: v.cors as string[] } } : {}),
        ...(v.log ? { log: { stream: process.stderr } } : {}),
        ...(v.inspector ? { inspector: true } : {}),
      });
      const url = await server.listen({ port, host });
      ctx.io.stderr(`dgent serve: listening on ${url} (namespaces: ${allowed === "any" ? "any" : [...allowed].join(", ")}; access control ${auth === null ? "OFF" : "on"})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await server.close();
      await changeLog.close();
      ctx.io.stderr("dgent serve: stopped\n");
      return 0;
    },
  },
};
