import type { Datum } from "../core/datum.js";
import type { BackendReport } from "../core/store.js";
import { safe } from "./terminal.js";

/** A datum as JSON: content as UTF-8 text when it is valid UTF-8, else base64. */
export function datumJson(d: Datum): Record<string, unknown> {
  const bytes = Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength);
  const text = bytes.toString("utf8");
  const isText = Buffer.from(text, "utf8").equals(bytes);
  return {
    id: d.id,
    createdAt: d.createdAt,
    createdAtIso: new Date(d.createdAt).toISOString(),
    causalParent: d.causalParent,
    metadata: d.metadata,
    bytes: bytes.byteLength,
    ...(isText ? { content: text } : { contentBase64: bytes.toString("base64") }),
  };
}

function preview(d: Datum, width: number): string {
  const text = Buffer.from(d.content.buffer, d.content.byteOffset, d.content.byteLength).toString("utf8");
  // Replace control and bidi characters (and invalid sequences) so one datum stays on one line,
  // in reading order.
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\ufffd\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/** Columns padded to their widest cell; every cell shown terminal-safe (`safe`) before it is measured. */
export function table(headers: readonly string[], cells: readonly string[][]): string {
  const rows = cells.map((r) => r.map(safe));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const short = (s: string | null, n: number) => (s === null ? "-" : s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function datumTable(datums: readonly Datum[]): string {
  if (datums.length === 0) return "(no datums)";
  return table(
    ["ID", "CREATED", "BYTES", "PARENT", "TAGS", "CONTENT"],
    datums.map((d) => [
      d.id,
      new Date(d.createdAt).toISOString(),
      String(d.content.byteLength),
      short(d.causalParent, 38),
      short(Object.entries(d.metadata).map(([k, v]) => `${k}=${v}`).join(",") || "-", 30),
      preview(d, 40),
    ]),
  );
}

export function chainText(chain: readonly Datum[]): string {
  if (chain.length === 0) return "(no such datum)";
  return chain
    .map((d, i) => `${i === 0 ? "" : `${"  ".repeat(i - 1)}└─ `}${d.id}  ${new Date(d.createdAt).toISOString()}  ${preview(d, 50)}`)
    .join("\n");
}

export function backendText(report: BackendReport): string {
  const notes: string[] = [];
  if (report.volatile) notes.push("VOLATILE: data is lost when the process exits");
  if (report.degraded) notes.push(`DEGRADED: "${report.preferred}" is down`);
  const head = `namespace ${report.namespace}: writes land on ${report.landing}${notes.length ? `  (${notes.join("; ")})` : ""}`;
  const rows = report.tiers.map((t) => [
    t.name,
    String(t.rank),
    t.durability,
    t.landing ? "yes" : "",
    t.up ? "up" : "DOWN",
    t.count === null ? "?" : String(t.count),
    t.bytes === null ? "?" : String(t.bytes),
    t.up ? (t.location ?? "") : (t.error ?? ""),
  ]);
  const p = report.promotion;
  const promotion = p === null ? "" : `; promotion ${p.from} → ${p.to}: ${p.running ? "running" : "done"}, ${p.moved}${p.total === null ? "" : ` of ${p.total}`} moved${p.kept ? `, ${p.kept} kept below` : ""}`;
  const r = report.retention;
  const retention = r.lastAppliedAt === null ? "" : `\nretention: ${r.deleted} deleted (${r.deletedBytes} bytes), ${r.moved} moved (${r.movedBytes} bytes)`;
  const tail = `pending promotions: ${report.pendingPromotions}; pending deletes: ${report.pendingDeletes}${promotion}${retention}`;
  return `${head}\n${table(["TIER", "RANK", "DURABILITY", "LANDING", "STATE", "DATUMS", "BYTES", "WHERE / ERROR"], rows)}\n${tail}`;
}
