// A dgent adapter written only on dgent's public exports for authors (`dgent/extend`): one JSON
// file per datum in a directory.
// Creation is atomic and exclusive (write a temp file, then link() it into place, which fails if
// the name exists), so several processes can share the directory and the append-only law holds.
import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import {
  Lifecycle,
  compareNewestFirst,
  conflictError,
  defineAdapter,
  dgentError,
  instantiateAdapter,
  localPathFromUrl,
  sameValue,
  walkCausalChain,
} from "dgent/extend";

export const ADAPTER_NAME = "dir";

const fileOf = (dir, id) => join(dir, `${createHash("sha256").update(id).digest("hex")}.json`);

const encode = (d) =>
  JSON.stringify({ id: d.id, content: Buffer.from(d.content).toString("base64"), createdAt: d.createdAt, causalParent: d.causalParent, metadata: d.metadata });

const decode = (text) => {
  const r = JSON.parse(text);
  return { ...r, content: new Uint8Array(Buffer.from(r.content, "base64")) };
};

class DirAdapter {
  name = ADAPTER_NAME;
  rank = 15; // between JSONL (10) and SQLite (20)
  capabilities = { persistent: true, multiProcess: true, nativeCausalChain: false, batch: false, scan: true, evicts: false };
  #dir;
  #life = new Lifecycle(ADAPTER_NAME);

  constructor(options) {
    this.#dir = options.dir;
  }

  // Lifecycle.open runs the connect step once, even when open() is called twice at the same time.
  open() {
    return this.#life.open(async () => {
      try {
        await fs.mkdir(this.#dir, { recursive: true });
      } catch (cause) {
        throw dgentError("DGENT_DATA_DIR_UNWRITABLE", `cannot create ${this.#dir}`, { unit: ADAPTER_NAME, cause });
      }
    });
  }

  close() {
    return this.#life.close();
  }

  // Never throws: true when the directory can be read now.
  async probe() {
    try {
      await fs.access(this.#dir);
      return true;
    } catch {
      return false;
    }
  }

  async stats() {
    this.#life.check();
    let count = 0;
    for (const name of await fs.readdir(this.#dir)) if (name.endsWith(".json")) count++;
    return { count, path: this.#dir };
  }

  async put(datum) {
    this.#life.check();
    const file = fileOf(this.#dir, datum.id);
    const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
    await fs.writeFile(temp, encode(datum));
    try {
      await fs.link(temp, file); // atomic, and fails if another writer got there first
    } catch (error) {
      if (error.code !== "EEXIST") throw dgentError("DGENT_BACKEND_ERROR", `cannot write ${file}`, { unit: ADAPTER_NAME, cause: error });
      const existing = await this.get(datum.id);
      if (existing && !sameValue(existing, datum)) throw conflictError(datum.id, ADAPTER_NAME);
    } finally {
      await fs.rm(temp, { force: true });
    }
    return datum.id;
  }

  async get(id) {
    this.#life.check();
    try {
      return decode(await fs.readFile(fileOf(this.#dir, id), "utf8"));
    } catch (error) {
      if (error.code === "ENOENT") return null;
      throw dgentError("DGENT_BACKEND_ERROR", `cannot read datum ${id}`, { unit: ADAPTER_NAME, cause: error });
    }
  }

  async delete(id) {
    this.#life.check();
    try {
      await fs.unlink(fileOf(this.#dir, id));
      return true;
    } catch (error) {
      if (error.code === "ENOENT") return false;
      throw error;
    }
  }

  async list({ prefix, after, limit }) {
    this.#life.check();
    const all = [];
    for await (const d of this.scan()) if (d.id.startsWith(prefix) && d.createdAt > after) all.push(d);
    return all.sort(compareNewestFirst).slice(0, limit);
  }

  async causalChain(id, maxDepth) {
    return walkCausalChain(id, (next) => this.get(next), maxDepth, ADAPTER_NAME);
  }

  async *scan() {
    this.#life.check();
    for (const name of await fs.readdir(this.#dir)) {
      if (!name.endsWith(".json")) continue;
      try {
        yield decode(await fs.readFile(join(this.#dir, name), "utf8"));
      } catch (error) {
        if (error.code !== "ENOENT") throw error; // deleted meanwhile
      }
    }
  }
}

export const dir = defineAdapter({
  name: ADAPTER_NAME,
  rank: 15,
  description: "One JSON file per datum in a directory.",
  // dir:///srv/memories in DGENT_DATABASE_URL or `dgent migrate --to` chooses this tier.
  urlSchemes: ["dir"],
  fromUrl: (url) => ({ dir: localPathFromUrl(url) }),
  optionsSchema: { type: "object", required: ["dir"], additionalProperties: false, properties: { dir: { type: "string", minLength: 1 } } },
  create: (options) => new DirAdapter(options),
});

export const dirAdapter = (options) => instantiateAdapter(dir, options);
