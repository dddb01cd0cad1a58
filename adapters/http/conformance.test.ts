import { randomUUID } from "node:crypto";
import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, it } from "vitest";
import { memoryAdapter } from "../memory/index.js";
import { createStore } from "../../core/store.js";
import { runConformance, type Target } from "../../testing/index.js";
import { createServer, hashToken, type DgentServer } from "../../server/index.js";
import { httpAdapter } from "./index.js";

// A real server on a free port; each instance the kit makes is a fresh namespace on it.
const token = `kit-${randomUUID()}`;
let server: DgentServer;
let url = "";
let silent: Server;
let silentPort = 0;
const sockets = new Set<Socket>();
const namespaces = new WeakMap<Target, string>();

const make = (namespace: string): Target => {
  const adapter = httpAdapter({ url, token, namespace });
  namespaces.set(adapter, namespace);
  return adapter;
};

runConformance(
  {
    name: "http",
    beforeAll: async () => {
      server = await createServer((ns) => createStore({ tiers: [memoryAdapter()], namespace: ns }), {
        auth: { tokens: [{ name: "kit", sha256: hashToken(token), scopes: [{ namespace: "*", right: "admin" }] }] },
      });
      url = await server.listen({ port: 0 });
      // Accepts connections and never answers: the tier's own timeouts must end every call.
      silent = createNetServer((socket) => void sockets.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      silentPort = (silent.address() as { port: number }).port;
    },
    afterAll: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      await server.close();
    },
    create: () => make(`kit-${randomUUID()}`),
    reopen: (previous) => make(namespaces.get(previous) as string),
    dead: () => httpAdapter({ url: `http://127.0.0.1:${silentPort}`, token, namespace: "dead", probeTimeoutMs: 300, timeoutMs: 1000 }),
  },
  { describe, it, beforeAll, afterAll },
);
