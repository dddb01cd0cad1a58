// The service registry: an agent's store and the services built on it, declared once and found
// by name anywhere; a test swaps one for a fake and resets between runs. The store comes from a
// config object on the embedded default (SQLite under $XDG_DATA_HOME/dgent).
//
//   node examples/patterns/services.mjs        (after `npm run build`)
import assert from "node:assert/strict";
import { makeDatum } from "dgent";
import { bootstrapServices, createServices, getService, injectService, resetServices } from "dgent/patterns";

const namespace = `services-example-${process.pid}`;

// A service built on the store: it remembers notes and recalls the newest.
class Notebook {
  constructor(store) {
    this.store = store;
  }
  async note(text) {
    return this.store.put(makeDatum({ content: text, idPrefix: "note/" }));
  }
  async newest(n) {
    const datums = await this.store.list({ prefix: "note/", limit: n }); // newest first
    return datums.map((d) => Buffer.from(d.content).toString("utf8"));
  }
}

const services = createServices()
  .defineStore("memory", { namespace, tiers: ["sqlite"] })
  .define("notebook", async (s) => new Notebook(await s.store("memory")));

// Concurrent callers share one creation: the same instance, one store opened.
const [a, b] = await Promise.all([services.get("notebook"), services.get("notebook")]);
assert.equal(a, b);
await a.note("the user prefers metric units");
await a.note("the meeting moved to Thursday");
console.log(`newest notes: ${JSON.stringify(await a.newest(2))}`);
assert.deepEqual(await a.newest(2), ["the meeting moved to Thursday", "the user prefers metric units"]);

// A test replaces the notebook with a fake until reset(); nothing else changes.
services.inject("notebook", { newest: async () => ["(fake)"] });
assert.deepEqual(await (await services.get("notebook")).newest(1), ["(fake)"]);

// reset() closes what was created (the store) and drops the fake; declarations stay, so the next
// get builds a fresh notebook on a freshly opened store, which still holds the notes.
await services.reset();
const again = await services.get("notebook");
assert.notEqual(again, a);
assert.equal((await again.newest(5)).length, 2);
console.log(`after reset: a new notebook on a reopened store finds ${(await again.newest(5)).length} notes`);

// Asking for a name nobody declared is a coded error that lists the known names.
await assert.rejects(services.get("planner"), (e) => e.code === "DGENT_UNKNOWN_SERVICE");

// A circle of services is refused with the chain, not a hang.
const circular = createServices()
  .define("x", (s) => s.get("y"))
  .define("y", (s) => s.get("x"));
await assert.rejects(circular.get("x"), (e) => e.code === "DGENT_SERVICE_CYCLE");
console.log("unknown names and circles are coded errors: DGENT_UNKNOWN_SERVICE, DGENT_SERVICE_CYCLE");

// The process-wide registry, for code that cannot pass a registry around.
bootstrapServices({ stores: { memory: { namespace, tiers: ["sqlite"] } }, services: { notebook: async (s) => new Notebook(await s.store("memory")) } });
const shared = await getService("notebook");
console.log(`the process-wide registry's notebook finds ${(await shared.newest(5)).length} notes`);
injectService("notebook", { newest: async () => [] });
assert.deepEqual(await (await getService("notebook")).newest(5), []);
await resetServices({ forget: true });

// Clean up this example's namespace.
const cleanup = await createServices().defineStore("memory", { namespace, tiers: ["sqlite"] }).store("memory");
await cleanup.deleteMany({ all: true });
await services.reset();
await cleanup.close();
