/** JSON schemas of the API's bodies and answers: the OpenAPI document's components. */
export type JsonSchema = Readonly<Record<string, unknown>>;

export const str: JsonSchema = { type: "string" };
export const num: JsonSchema = { type: "number" };
export const int: JsonSchema = { type: "integer", minimum: 0 };
export const bool: JsonSchema = { type: "boolean" };
export const order: JsonSchema = { type: "string", enum: ["newest", "oldest"] };
export const select: JsonSchema = { type: "string", enum: ["full", "meta", "ids"] };
export const arr = (items: JsonSchema): JsonSchema => ({ type: "array", items });
export const obj = (properties: Record<string, JsonSchema>, required: readonly string[] = []): JsonSchema => ({
  type: "object",
  properties,
  ...(required.length ? { required } : {}),
});
export const items = (item: JsonSchema): JsonSchema => obj({ items: arr(item) }, ["items"]);

const tags: JsonSchema = { type: "object", additionalProperties: { type: "string" } };

export const datum: JsonSchema = {
  type: "object",
  description: "A datum; content is base64",
  properties: {
    id: { type: "string", description: "1–1024 bytes of UTF-8, no control characters" },
    content: { type: "string", format: "byte" },
    createdAt: { type: "number", description: "epoch milliseconds" },
    causalParent: { type: ["string", "null"] },
    metadata: tags,
  },
  required: ["id", "content", "createdAt", "causalParent", "metadata"],
};

export const header: JsonSchema = {
  type: "object",
  description: "A datum without its content (select: meta)",
  properties: { id: str, createdAt: num, causalParent: { type: ["string", "null"] }, metadata: tags },
  required: ["id", "createdAt", "causalParent", "metadata"],
};

export const idOut: JsonSchema = obj({ id: str }, ["id"]);

export const page: JsonSchema = obj(
  { items: arr({ anyOf: [datum, header, str] }), cursor: { type: ["string", "null"], description: "pass back for the next page; null after the last" } },
  ["items", "cursor"],
);

const tagCondition: JsonSchema = {
  anyOf: [
    str,
    obj({ eq: str }, ["eq"]),
    obj({ in: arr(str) }, ["in"]),
    obj({ prefix: str }, ["prefix"]),
    obj({ exists: bool }, ["exists"]),
  ],
};

const filterProps: Record<string, JsonSchema> = {
  prefix: str,
  idRange: obj({ gte: str, lt: str }),
  where: { type: "object", additionalProperties: tagCondition },
  parent: str,
  after: num,
  before: num,
};

export const filter: JsonSchema = obj(filterProps);

export const searchRequest: JsonSchema = obj(
  {
    query: { description: "a text, or (vector search) a vector of the embedder's size", anyOf: [str, { type: "array", items: num, minItems: 1 }] },
    mode: { type: "string", enum: ["auto", "vector", "text", "hybrid"], description: "auto (default): hybrid when the store has both recall and fulltext, else the one it has" },
    k: { type: "integer", minimum: 1, maximum: 1000, description: "results wanted (default 10)" },
    filter: obj(filterProps),
    metric: { type: "string", enum: ["cosine", "dot", "l2"], description: "vector search only" },
    select: { type: "string", enum: ["ids", "meta", "full"], description: "ids (default): id and score; meta: also the datum's header; full: also the whole datum" },
  },
  ["query"],
);

export const searchAnswer: JsonSchema = obj(
  {
    mode: { type: "string", enum: ["vector", "text", "hybrid"], description: "the search that ran" },
    items: arr(
      obj(
        {
          id: str,
          score: { type: "number", description: "higher is closer; comparable only within one search" },
          ranks: obj({ vector: { type: ["integer", "null"] }, text: { type: ["integer", "null"] } }, ["vector", "text"]),
          datum: { anyOf: [datum, header, { type: "null" }] },
        },
        ["id", "score"],
      ),
    ),
  },
  ["mode", "items"],
);
export const deleteFilter: JsonSchema = obj({ ...filterProps, all: bool });
export const queryOptions: JsonSchema = obj({ ...filterProps, order, limit: int, cursor: str, select });

export const ref: JsonSchema = obj({ name: str, target: str, version: int, updatedAt: num }, ["name", "target", "version", "updatedAt"]);

export const expect: JsonSchema = {
  description: "a ref expectation",
  anyOf: [obj({ version: int }, ["version"]), obj({ target: str }, ["target"]), obj({ absent: { const: true } }, ["absent"])],
};

export const reflogEntry: JsonSchema = obj(
  { name: str, from: { type: ["string", "null"] }, to: { type: ["string", "null"] }, version: int, at: num, by: str },
  ["name", "from", "to", "version", "at", "by"],
);

export const txOp: JsonSchema = {
  anyOf: [
    obj({ op: { const: "put" }, datum }, ["op", "datum"]),
    obj({ op: { const: "delete" }, id: str }, ["op", "id"]),
    obj({ op: { const: "setRef" }, name: str, target: str, expect }, ["op", "name", "target"]),
    obj({ op: { const: "deleteRef" }, name: str, expect }, ["op", "name"]),
  ],
};

export const txResult: JsonSchema = obj(
  {
    results: arr({
      anyOf: [
        obj({ op: { const: "put" }, id: str }, ["op", "id"]),
        obj({ op: { const: "delete" }, id: str, existed: bool }, ["op", "id", "existed"]),
        obj({ op: { const: "setRef" }, ref }, ["op", "ref"]),
        obj({ op: { const: "deleteRef" }, name: str, existed: bool }, ["op", "name", "existed"]),
      ],
    }),
  },
  ["results"],
);

export const info: JsonSchema = obj({ namespace: str, capabilities: { type: "object" }, backend: { type: "object" }, lastEventId: { type: ["integer", "null"] } }, ["namespace", "capabilities", "backend"]);

export const error: JsonSchema = obj(
  {
    error: obj({ code: { type: "string", description: "a code of core/ERRORS.md" }, message: str, retryable: bool, details: { type: "object" } }, ["code", "message", "retryable"]),
  },
  ["error"],
);
