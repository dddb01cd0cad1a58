import { createRequire } from "node:module";

/** This dgent's version, from its own package.json (the package refers to itself by name). */
export function dgentVersion(): string {
  version ??= (createRequire(import.meta.url)("dgent/package.json") as { version: string }).version;
  return version;
}

let version: string | undefined;
