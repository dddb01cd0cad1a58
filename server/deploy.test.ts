import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { SERVE_COMMANDS, DEFAULT_PORT } from "../cli/serve-commands.js";
import { loadConfig } from "../compose/config/load.js";

// No Docker engine or Kubernetes cluster runs where this is tested: the deploy files are parsed
// and checked against what `dgent serve` takes (its flags, its port, its health routes).
const root = new URL("../deploy/serve/", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");
type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((v, k) => (v == null ? undefined : (v as Obj)[k as string]), o);
const flags = Object.keys(SERVE_COMMANDS.serve?.options ?? {}).concat("config");

/** The flags of a `dgent serve` command line, checked to be ones it takes. */
function flagsOf(args: readonly string[]): Map<string, string> {
  expect(args[0]).toBe("serve");
  const out = new Map<string, string>();
  for (let i = 1; i < args.length; i += 2) {
    const flag = (args[i] as string).replace(/^--/, "");
    expect(flags, flag).toContain(flag);
    out.set(flag, args[i + 1] as string);
  }
  return out;
}

describe("deploy/serve", () => {
  it("docker-compose.yml publishes on localhost only, with tokens from a secret and a readiness check", () => {
    const compose = parse(read("docker-compose.yml")) as Obj;
    const svc = at(compose, "services", "dgent") as Obj;
    const args = flagsOf(svc.command as string[]);
    expect(args.get("port")).toBe(String(DEFAULT_PORT));
    expect(args.get("auth")).toBe("/run/secrets/dgent-tokens");
    expect(svc.ports).toEqual([`127.0.0.1:\${DGENT_SERVE_PORT:-${DEFAULT_PORT}}:${DEFAULT_PORT}`]);
    expect(JSON.stringify(at(svc, "healthcheck", "test"))).toContain("/readyz");
    expect(at(compose, "secrets", "dgent-tokens", "file")).toBe("./tokens.json");
    expect(read("Dockerfile")).toMatch(/CMD \["serve", "--host", "0\.0\.0\.0", "--port", "7411", "--auth"/);
    expect(loadConfig(new URL("dgent.config.yaml", root).pathname).config.tiers).toBeDefined();
    const example = JSON.parse(read("tokens.example.json")) as { tokens: { sha256: string }[] };
    expect(example.tokens[0]?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("kubernetes.yaml runs one replica in the kind namespace, probes /readyz and /healthz, mounts tokens and config where the args say", () => {
    const docs = parseAllDocuments(read("kubernetes.yaml")).map((d) => d.toJSON() as Obj);
    for (const d of docs) expect(at(d, "metadata", "namespace")).toBe("dgent");
    const deployment = docs.find((d) => d.kind === "Deployment") as Obj;
    expect(at(deployment, "spec", "replicas")).toBe(1);
    const pod = at(deployment, "spec", "template", "spec") as Obj;
    const container = at(pod, "containers", 0) as Obj;
    const args = flagsOf(container.args as string[]);
    expect(args.get("host")).toBe("0.0.0.0");
    expect(at(container, "readinessProbe", "httpGet", "path")).toBe("/readyz");
    expect(at(container, "livenessProbe", "httpGet", "path")).toBe("/healthz");
    expect(at(container, "ports", 0, "containerPort")).toBe(Number(args.get("port")));
    const mounts = container.volumeMounts as { name: string; mountPath: string }[];
    const mountOf = (file: string) => mounts.find((m) => file.startsWith(`${m.mountPath}/`))?.name;
    expect(mountOf(args.get("auth") as string)).toBe("tokens");
    expect(mountOf(args.get("config") as string)).toBe("config");
    const volumes = pod.volumes as Obj[];
    expect(at(volumes.find((v) => v.name === "tokens"), "secret", "secretName")).toBe("dgent-serve-tokens");
    const configMap = docs.find((d) => d.kind === "ConfigMap") as Obj;
    const config = parse(at(configMap, "data", "dgent.config.yaml") as string) as Obj;
    expect(at(config, "landing")).toBe("postgres-kind");
    const service = docs.find((d) => d.kind === "Service") as Obj;
    expect(at(service, "spec", "ports", 0, "targetPort")).toBe("http");
  });
});
