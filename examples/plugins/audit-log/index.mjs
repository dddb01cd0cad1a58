// A dgent plugin written only on dgent's public exports: an audit trail of a store's writes and
// deletes, one JSON line each, appended to a file. It observes (afterPut, afterDelete) and never
// changes what is stored, so it passes the conformance kit stacked on any tier.
import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { definePlugin, wrapError } from "dgent/extend";

export const PLUGIN_NAME = "audit-log";

/** The dgent versions this module supports; a config file that loads it checks this range. */
export const dgentVersions = ">=0.1.0 <1";

export const auditLog = definePlugin({
  name: PLUGIN_NAME,
  version: "0.1.0",
  description: "Appends one JSON line per write and delete to a file.",
  optionsSchema: {
    type: "object",
    additionalProperties: false,
    required: ["path"],
    properties: {
      path: { type: "string", minLength: 1 },
      ops: { type: "array", items: { enum: ["put", "delete"] }, uniqueItems: true, default: ["put", "delete"] },
      // Tag each line with who wrote it (an agent's name, a pod).
      actor: { type: "string" },
    },
  },
  async apply(api, options) {
    await mkdir(dirname(options.path), { recursive: true });
    let lines = 0;
    // One append at a time, in the order operations finished: the file reads as a log.
    let queue = Promise.resolve();
    const record = (entry) => {
      const line = `${JSON.stringify({ at: new Date().toISOString(), namespace: api.namespace, ...(options.actor ? { actor: options.actor } : {}), ...entry })}\n`;
      const appended = queue.then(async () => {
        try {
          await appendFile(options.path, line);
          lines++;
        } catch (error) {
          throw wrapError(error, "DGENT_PLUGIN_FAILED", `cannot append to ${options.path}`, { unit: PLUGIN_NAME });
        }
      });
      // The operation that caused a failed append fails; the next ones still try.
      queue = appended.catch(() => undefined);
      return appended;
    };
    if (options.ops.includes("put")) {
      api.hooks.afterPut.tapPromise({ name: PLUGIN_NAME, stage: 0 }, (datum, info) =>
        record({ op: "put", id: datum.id, bytes: datum.content.byteLength, tier: info.tier }),
      );
    }
    if (options.ops.includes("delete")) {
      api.hooks.afterDelete.tapPromise({ name: PLUGIN_NAME, stage: 0 }, (id, existed) => record({ op: "delete", id, existed }));
    }
    api.hooks.close.tapPromise({ name: PLUGIN_NAME, stage: 0 }, () => queue);
    // The handle: `await store.plugin("audit-log")`.
    return { path: options.path, lines: () => lines, flushed: () => queue };
  },
});
