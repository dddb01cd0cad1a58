import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { PROFILES, POSTGRES_DOCKER, POSTGRES_KIND } from "./profiles.js";

// No Docker engine or Kubernetes cluster runs on the machines this project is tested on, so the
// deploy files are checked here against what the profiles expect (names, ports, DNS, TLS); the
// server flags they set are the ones the test harness runs a real PostgreSQL with.
const root = new URL("../../deploy/", import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), "utf8");

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Obj)[k as string]), o);

describe("deploy files", () => {
  it("docker-compose.yml serves the postgres-docker profile's default database on localhost", () => {
    const compose = parse(read("docker-compose.yml")) as Obj;
    const pg = at(compose, "services", "postgres") as Obj;
    const url = new URL(PROFILES[POSTGRES_DOCKER].defaultUrl);
    expect(at(pg, "environment", "POSTGRES_USER")).toBe(url.username);
    expect(at(pg, "environment", "POSTGRES_DB")).toBe(url.pathname.slice(1));
    expect(String(at(pg, "environment", "POSTGRES_PASSWORD"))).toMatch(/^\$\{DGENT_POSTGRES_PASSWORD:\?/); // no default password
    expect(at(pg, "ports")).toEqual([`127.0.0.1:\${DGENT_POSTGRES_PORT:-${url.port}}:5432`]);
    expect(at(pg, "healthcheck", "test")).toBeTruthy();
  });

  it("kind manifests serve the postgres-kind profile's host with TLS on, from Secrets", () => {
    const docs = parseAllDocuments(read("kind/postgres.yaml")).map((d) => d.toJSON() as Obj);
    const url = new URL(PROFILES[POSTGRES_KIND].defaultUrl);
    const [service, namespace] = url.hostname.split(".");
    const svc = docs.find((d) => d.kind === "Service" && at(d, "metadata", "name") === service);
    expect(at(svc, "metadata", "namespace")).toBe(namespace);
    expect(at(svc, "spec", "ports", 0, "port")).toBe(Number(url.port));
    const sts = docs.find((d) => d.kind === "StatefulSet") as Obj;
    const container = at(sts, "spec", "template", "spec", "containers", 0) as Obj;
    const args = (container.args as string[]).join(" ");
    expect(PROFILES[POSTGRES_KIND].tls).not.toBe("off");
    expect(args).toContain("-c ssl=on");
    expect(args).toMatch(/ssl_cert_file=\S+tls\.crt/);
    expect(args).toMatch(/ssl_key_file=\S+tls\.key/);
    const env = Object.fromEntries((container.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.POSTGRES_USER).toBe(url.username);
    expect(env.POSTGRES_DB).toBe(url.pathname.slice(1));
    expect(env.POSTGRES_PASSWORD).toEqual({ secretKeyRef: { name: "postgres-credentials", key: "password" } });
    // PostgreSQL refuses a key readable by others: root-owned 0640 with the postgres group is the accepted shape.
    const tlsVolume = (at(sts, "spec", "template", "spec", "volumes") as Obj[]).find((v) => v.name === "tls");
    expect(at(tlsVolume, "secret", "defaultMode")).toBe(0o640);
    expect(at(sts, "spec", "template", "spec", "securityContext", "fsGroup")).toBe(999);
    const kustomization = parse(read("kind/kustomization.yaml")) as Obj;
    expect(kustomization.resources).toEqual(["namespace.yaml", "postgres.yaml"]);
    const ns = parse(read("kind/namespace.yaml")) as Obj;
    expect(at(ns, "metadata", "name")).toBe(namespace);
  });
});
