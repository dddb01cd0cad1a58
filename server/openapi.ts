/** The OpenAPI 3.1 document of the API, built from the route table (served at `/v1/openapi.json`). */
import type { RouteSpec } from "./routes.js";
import * as S from "./schemas.js";

const STATUSES: Readonly<Record<string, string>> = {
  "400": "invalid input (DGENT_INVALID_*)",
  "401": "no token, an unknown one or an expired one (DGENT_UNAUTHORIZED)",
  "403": "the token is not scoped for this namespace and right (DGENT_FORBIDDEN)",
  "404": "no such datum, ref or namespace (DGENT_NOT_FOUND)",
  "409": "DGENT_CONFLICT (append-only law) or DGENT_REF_CONFLICT",
  "413": "body too large (DGENT_PAYLOAD_TOO_LARGE)",
  "429": "rate limited (DGENT_RATE_LIMITED); see Retry-After",
  "408": "the request was not received in full within the server's request timeout (DGENT_REQUEST_TIMEOUT); the connection is closed",
  "501": "the store lacks what the operation needs (DGENT_UNSUPPORTED: refs, transactions, the change stream, a search plugin)",
  "503": "a tier cannot be reached now (DGENT_UNAVAILABLE)",
};

export function openApiDocument(routes: readonly RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = `/v1/ns/{ns}${r.path.replace(/:(\w+)/g, "{$1}")}`;
    const parameters: unknown[] = [{ name: "ns", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" } }];
    for (const p of r.path.match(/:(\w+)/g) ?? []) {
      parameters.push({ name: p.slice(1), in: "path", required: true, description: "percent-encoded (a / is %2F)", schema: S.str });
    }
    for (const [name, schema] of Object.entries(r.query ?? {})) parameters.push({ name, in: "query", required: false, schema });
    const errors = Object.fromEntries(Object.entries(STATUSES).map(([code, description]) => [code, { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } }]));
    const response = "mediaType" in r.response
      ? { description: r.response.description, content: { [r.response.mediaType as string]: { schema: { type: "string" } } } }
      : { description: "OK", content: { "application/json": { schema: r.response } } };
    const content: Record<string, unknown> = {};
    if (r.body) content["application/json"] = { schema: r.body };
    if (r.rawBody) content["application/octet-stream"] = { schema: { type: "string", format: "binary" } };
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      description: `Needs the ${r.right} right on the namespace.`,
      parameters,
      ...(Object.keys(content).length ? { requestBody: { required: r.method !== "DELETE", content } } : {}),
      responses: { "200": response, ...errors },
      security: [{ bearer: [] }],
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "dgent", version, description: "The HTTP API of dgent serve: datums, refs, transactions, queries, search and a change stream, per namespace." },
    paths,
    components: {
      schemas: { Error: S.error, Datum: S.datum, Header: S.header, Ref: S.ref },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}
