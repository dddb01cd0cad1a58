/**
 * The SVG chart of a run (no dependencies): the verdict as bullet rows (each value against its
 * limit on a log scale: left of the line passes), then every tier's p50s as a dot plot on a log
 * time axis (dgent, the raw driver and the peers on one line per operation), then hook overhead.
 */
import { OP_LABEL } from "./contender.js";
import { formatRatio, formatUs } from "./measure.js";
import type { Stats } from "./measure.js";
import type { BenchResults, ConcurrencyResult, TierResult, VerdictRow } from "./results.js";

const W = 1280;
const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";
const C = {
  pass: "#1a7f37",
  miss: "#cf222e",
  na: "#8c959f",
  grid: "#d0d7de",
  text: "#1f2328",
  muted: "#57606a",
  dgent: "#0969da",
  raw: "#1f2328",
  keyv: "#bc4c00",
  unstorage: "#8250df",
  peer: "#bf8700",
  band: "#f6f8fa",
};

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function text(x: number, y: number, s: string, opts: { size?: number; anchor?: "start" | "middle" | "end"; fill?: string; weight?: string } = {}): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${opts.size ?? 12}" text-anchor="${opts.anchor ?? "start"}" fill="${opts.fill ?? C.text}"${opts.weight ? ` font-weight="${opts.weight}"` : ""}>${esc(s)}</text>`;
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string, width = 1, dash?: string): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ""}/>`;
}

function logScale(min: number, max: number, x0: number, width: number): (v: number) => number {
  const a = Math.log10(min);
  const b = Math.log10(max);
  return (v) => x0 + (width * (Math.log10(Math.min(max, Math.max(min, v))) - a)) / (b - a);
}

function verdictSection(rows: readonly VerdictRow[], y0: number): { svg: string[]; height: number } {
  const svg: string[] = [];
  const labelW = 400;
  const x0 = 24 + labelW;
  const plotW = 430;
  const x = logScale(0.1, 10, x0, plotW);
  const rowH = 17;
  let y = y0;
  svg.push(text(24, y, "Verdict — each row: value ÷ limit on a log scale; left of the dashed line passes", { size: 15, weight: "bold" }));
  y += 22;
  for (const t of [0.1, 0.2, 0.5, 1, 2, 5, 10]) {
    svg.push(text(x(t), y, `${t}×`, { size: 10, anchor: "middle", fill: C.muted }));
  }
  y += 6;
  const top = y;
  const gridAt = svg.length;
  const groups: Array<["seed" | "goal", string]> = [
    ["seed", "The seed's per-tier targets (001: memory ~1 µs, file ~1 ms, SQL ~10 ms, Redis ~1–5 ms)"],
    ["goal", "The issue's goals (p50; non-durable modes unless named)"],
  ];
  for (const [source, title] of groups) {
    y += 16;
    svg.push(text(24, y, title, { size: 12, weight: "bold", fill: C.muted }));
    y += 6;
    for (const r of rows.filter((v) => v.source === source)) {
      const cy = y + rowH / 2;
      const color = r.pass === true ? C.pass : r.pass === false ? C.miss : C.na;
      svg.push(text(24, cy + 4, r.title, { size: 11.5 }));
      if (r.value !== null && Number.isFinite(r.limit) && r.limit > 0 && r.value > 0) {
        // A row that must reach its limit (a throughput ratio) draws limit ÷ value: left still passes.
        const ratio = r.atLeast ? r.limit / r.value : r.value / r.limit;
        svg.push(`<rect x="${x0}" y="${(cy - 5).toFixed(1)}" width="${Math.max(1, x(ratio) - x0).toFixed(1)}" height="10" fill="${color}" opacity="0.85"/>`);
        if (ratio > 10) svg.push(text(x0 + plotW + 3, cy + 4, "›", { size: 12, fill: color }));
      } else {
        svg.push(text(x0 + 4, cy + 4, "not measured", { size: 10.5, fill: C.na }));
      }
      const value = r.value === null ? "–" : r.unit === "µs" ? formatUs(r.value) : formatRatio(r.value);
      const limit = r.unit === "µs" ? formatUs(r.limit) : formatRatio(r.limit);
      const verdictWord = r.pass === true ? "pass" : r.pass === false ? "MISS" : "n/a";
      svg.push(text(x0 + plotW + 14, cy + 4, verdictWord, { size: 11.5, weight: "bold", fill: color }));
      svg.push(text(x0 + plotW + 56, cy + 4, `${value}  (limit ${limit})`, { size: 11.5 }));
      y += rowH;
    }
  }
  svg.splice(gridAt, 0, ...[0.1, 0.2, 0.5, 2, 5, 10].map((t) => line(x(t), top, x(t), y, C.grid)));
  svg.push(line(x(1), top, x(1), y, C.text, 1.2, "4 3"));
  return { svg, height: y - y0 + 10 };
}

function markerFor(kind: string, name: string, cx: number, cy: number): string {
  if (name === "dgent, small") return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="5" fill="none" stroke="${C.dgent}" stroke-width="2"/>`;
  if (name === "dgent, large") return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="6" fill="${C.dgent}"/>`;
  if (name === "raw, small") return `<rect x="${(cx - 4).toFixed(1)}" y="${(cy - 4).toFixed(1)}" width="8" height="8" fill="none" stroke="${C.raw}" stroke-width="1.5"/>`;
  if (name === "raw, large") return `<rect x="${(cx - 4.5).toFixed(1)}" y="${(cy - 4.5).toFixed(1)}" width="9" height="9" fill="${C.raw}"/>`;
  if (name === "1 plugin") return `<rect x="${(cx - 4.5).toFixed(1)}" y="${(cy - 4.5).toFixed(1)}" width="9" height="9" fill="${C.keyv}"/>`;
  if (name === "5 plugins") return `<path d="M${cx.toFixed(1)},${(cy - 6).toFixed(1)} L${(cx + 6).toFixed(1)},${cy.toFixed(1)} L${cx.toFixed(1)},${(cy + 6).toFixed(1)} L${(cx - 6).toFixed(1)},${cy.toFixed(1)} Z" fill="${C.miss}" opacity="0.9"/>`;
  if (kind === "dgent") return `<circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="6" fill="${C.dgent}"/>`;
  if (kind === "raw") return `<rect x="${(cx - 4.5).toFixed(1)}" y="${(cy - 4.5).toFixed(1)}" width="9" height="9" fill="${C.raw}"/>`;
  const color = name.startsWith("keyv") ? C.keyv : name.startsWith("unstorage") ? C.unstorage : C.peer;
  if (name.startsWith("unstorage")) return `<path d="M${cx.toFixed(1)},${(cy - 6).toFixed(1)} L${(cx + 6).toFixed(1)},${(cy + 5).toFixed(1)} L${(cx - 6).toFixed(1)},${(cy + 5).toFixed(1)} Z" fill="${color}" opacity="0.9"/>`;
  return `<path d="M${cx.toFixed(1)},${(cy - 6).toFixed(1)} L${(cx + 6).toFixed(1)},${cy.toFixed(1)} L${cx.toFixed(1)},${(cy + 6).toFixed(1)} L${(cx - 6).toFixed(1)},${cy.toFixed(1)} Z" fill="${color}" opacity="0.9"/>`;
}

type Annotate = (t: TierResult, o: TierResult["ops"][number]) => { text: string; bad: boolean };

const ratioNote: Annotate = (t, o) => {
  const dgent = t.contenders.find((c) => c.kind === "dgent");
  const ds = dgent ? o.stats[dgent.name] : undefined;
  const parts: string[] = [];
  if (ds) parts.push(formatUs(ds.p50));
  if (o.ratioRaw !== null) parts.push(`÷raw ${formatRatio(o.ratioRaw)}`);
  if (o.ratioBestPeer !== null) parts.push(`÷best peer ${formatRatio(o.ratioBestPeer)}`);
  return { text: parts.join("   "), bad: o.ratioBestPeer !== null && o.ratioBestPeer > 1 };
};

const LEGEND_TIERS: Array<[string, string, string]> = [
  ["dgent", "dgent", "dgent"],
  ["raw", "raw", "raw driver (same work by hand)"],
  ["peer", "keyv", "Keyv"],
  ["peer", "unstorage", "unstorage"],
];

function dotPlot(tiers: readonly TierResult[], y0: number, title: string, legend = LEGEND_TIERS, annotate: Annotate = ratioNote): { svg: string[]; height: number } {
  const svg: string[] = [];
  const x0 = 250;
  const plotW = 720;
  const x = logScale(0.05, 2e6, x0, plotW);
  let y = y0;
  svg.push(text(24, y, title, { size: 15, weight: "bold" }));
  y += 18;
  let lx = 24;
  for (const [kind, name, label] of legend) {
    svg.push(markerFor(kind, name, lx + 6, y - 4));
    svg.push(text(lx + 16, y, label, { size: 11.5 }));
    lx += 40 + label.length * 6.5;
  }
  y += 14;
  const ticks: Array<[number, string]> = [
    [0.1, "100 ns"],
    [1, "1 µs"],
    [10, "10 µs"],
    [100, "100 µs"],
    [1000, "1 ms"],
    [1e4, "10 ms"],
    [1e5, "100 ms"],
    [1e6, "1 s"],
  ];
  for (const [v, label] of ticks) svg.push(text(x(v), y, label, { size: 10, anchor: "middle", fill: C.muted }));
  y += 6;
  const top = y;
  const rowH = 18;
  const gridAt = svg.length;
  for (const t of tiers) {
    y += 4;
    svg.push(`<rect x="16" y="${y}" width="${W - 32}" height="18" fill="${C.band}"/>`);
    svg.push(text(24, y + 13, `${t.tier} — ${t.label}`, { size: 12, weight: "bold" }));
    y += 20;
    if (t.error) {
      svg.push(text(40, y + 12, `not measured: ${t.error}`, { size: 11, fill: C.na }));
      y += rowH;
      continue;
    }
    for (const o of t.ops) {
      const cy = y + rowH / 2;
      svg.push(text(40, cy + 4, OP_LABEL[o.op] ?? String(o.op), { size: 11.5 }));
      if (o.error) svg.push(text(x0, cy + 4, `error: ${o.error}`, { size: 10.5, fill: C.miss }));
      // Draw peers and raw first, dgent on top.
      const order = [...t.contenders].sort((a, b) => (a.kind === "dgent" ? 1 : 0) - (b.kind === "dgent" ? 1 : 0));
      for (const c of order) {
        const s = o.stats[c.name];
        if (!s) continue;
        svg.push(`<g>${markerFor(c.kind, c.name, x(s.p50), cy)}<title>${esc(`${c.name}: p50 ${formatUs(s.p50)}, p99 ${formatUs(s.p99)}`)}</title></g>`);
      }
      const note = annotate(t, o);
      svg.push(text(x0 + plotW + 16, cy + 4, note.text, { size: 11, fill: note.bad ? C.miss : C.text }));
      y += rowH;
    }
  }
  const grid: string[] = [];
  for (const [v] of ticks) grid.push(line(x(v), top, x(v), y, C.grid));
  svg.splice(gridAt, 0, ...grid);
  return { svg, height: y - y0 + 10 };
}

const rateText = (x: number) => (x >= 1e5 ? `${(x / 1e6).toFixed(2)} M/s` : x >= 1000 ? `${(x / 1000).toFixed(1)} k/s` : `${x.toFixed(0)}/s`);

/** The concurrency rows as dot-plot "tiers": one band per tier, one line per operation and level. */
function concurrencyAsTiers(rs: readonly ConcurrencyResult[]): TierResult[] {
  return rs.map((r) => ({
    tier: `concurrency-${r.tier}`,
    label: r.label,
    prefill: 0,
    contenders: r.contenders,
    skipped: [],
    prefillMs: {},
    ops: r.rows.map((row) => {
      const stats: Record<string, Stats> = {};
      for (const c of row.cells) if (!c.error) stats[c.contender] = { p50: c.p50, p90: c.p99, p95: c.p99, p99: c.p99, mean: c.p50, min: c.p50, max: c.p99, opsPerSec: c.opsPerSec, samples: c.ops, batch: 1 };
      return {
        op: `${row.op} × ${row.processes > 1 ? `${row.processes} processes × ${row.callers / row.processes}` : row.callers}` as never,
        stats,
        raw: row.cells.find((c) => c.kind === "raw")?.contender ?? null,
        ratioRaw: row.throughputRaw,
        bestPeer: row.bestPeer,
        ratioBestPeer: row.throughputBestPeer,
      };
    }),
  }));
}

const concurrencyNote: Annotate = (t, o) => {
  const d = t.contenders.find((c) => c.kind === "dgent");
  const s = d ? o.stats[d.name] : undefined;
  const parts: string[] = [];
  if (s) parts.push(rateText(s.opsPerSec));
  if (o.ratioRaw !== null) parts.push(`÷raw ${formatRatio(o.ratioRaw)}`);
  if (o.ratioBestPeer !== null) parts.push(`÷best peer ${formatRatio(o.ratioBestPeer)}`);
  return { text: parts.join("   "), bad: o.ratioBestPeer !== null && o.ratioBestPeer < 1 };
};

export function chartSvg(r: BenchResults): string {
  const parts: string[] = [];
  let y = 34;
  parts.push(text(24, y, `dgent benchmark — ${r.name === r.mode ? `${r.mode} run` : `${r.name} (${r.mode} run)`}`, { size: 20, weight: "bold" }));
  y += 20;
  const m = r.machine;
  parts.push(text(24, y, `${r.startedAt.slice(0, 16).replace("T", " ")} UTC · ${m.cpu}, ${m.cores} cores, Node ${m.node} · load ${m.loadBefore.map((v) => v.toFixed(1)).join("/")} · ${r.config.contentBytes} B content, ${r.config.tags} tags, ${r.config.prefill.toLocaleString("en")} datums prefilled`, { size: 12, fill: C.muted }));
  y += 18;
  const s = r.summary;
  parts.push(text(24, y, `${s.pass} pass · ${s.miss} miss · ${s.notMeasured} not measured${r.mode === "quick" ? " · quick run: indicative only" : ""}`, { size: 13, weight: "bold", fill: s.miss > 0 ? C.miss : C.pass }));
  y += 30;
  const v = verdictSection(r.verdict, y);
  parts.push(...v.svg);
  y += v.height + 20;
  const d = dotPlot(r.tiers, y, "p50 latency per tier and operation (log scale; hover a marker for p50/p99)");
  parts.push(...d.svg);
  y += d.height + 20;
  if (r.hooks.length) {
    const hookNote: Annotate = (t, o) => {
      const [base, ...more] = t.contenders.map((c) => c.name);
      const b = base ? o.stats[base] : undefined;
      const parts = b ? [`0: ${formatUs(b.p50)}`] : [];
      for (const n of more) {
        const s = o.stats[n];
        if (s && b) parts.push(`${n.split(" ")[0]}: ${formatUs(s.p50)} (${formatRatio(s.p50 / b.p50)})`);
      }
      return { text: parts.join("   "), bad: false };
    };
    const h = dotPlot(
      r.hooks,
      y,
      "Hook overhead — p50 with 0, 1 and 5 trivial plugins (each taps beforePut, afterPut and read)",
      [
        ["dgent", "0 plugins", "0 plugins"],
        ["dgent", "1 plugin", "1 plugin"],
        ["dgent", "5 plugins", "5 plugins"],
      ],
      hookNote,
    );
    parts.push(...h.svg);
    y += h.height + 10;
  }
  const scaled = r.scaling.filter((x) => !x.error);
  if (scaled.length) {
    const [small, large] = (scaled[0] as (typeof scaled)[number]).sizes.map((n) => n.toLocaleString("en"));
    const asTiers: TierResult[] = scaled.map((x) => ({
      tier: `scaling-${x.tier}`,
      label: `${x.tier}: ${small} vs ${large} datums`,
      prefill: 0,
      contenders: [
        { name: "dgent, small", kind: "dgent", description: "" },
        { name: "dgent, large", kind: "dgent", description: "" },
        { name: "raw, small", kind: "raw", description: "" },
        { name: "raw, large", kind: "raw", description: "" },
      ],
      skipped: [],
      prefillMs: {},
      ops: (["get", "list"] as const).map((op) => ({
        op,
        stats: {
          "dgent, small": x[op].small,
          "dgent, large": x[op].large,
          ...(x.raw ? { "raw, small": x.raw[op].small, "raw, large": x.raw[op].large } : {}),
        },
        raw: null,
        ratioRaw: null,
        bestPeer: null,
        ratioBestPeer: null,
      })),
    }));
    const scaleNote: Annotate = (t, o) => {
      const x = scaled.find((v) => `scaling-${v.tier}` === t.tier);
      const op = o.op as "get" | "list";
      if (!x) return { text: "", bad: false };
      return { text: `dgent ${formatRatio(x[op].ratio)}${x.raw ? `   raw ${formatRatio(x.raw[op].ratio)}` : ""}  (limit 1.5×)`, bad: x[op].ratio > 1.5 };
    };
    const sc = dotPlot(
      asTiers,
      y,
      `Scaling — get and list(100) p50 on a store of ${small} and of ${large} datums`,
      [
        ["dgent", "dgent, small", `dgent, ${small}`],
        ["dgent", "dgent, large", `dgent, ${large}`],
        ["raw", "raw, small", `raw, ${small}`],
        ["raw", "raw, large", `raw, ${large}`],
      ],
      scaleNote,
    );
    parts.push(...sc.svg);
    y += sc.height + 10;
  }
  const conc = (r.concurrency ?? []).filter((x) => !x.error && x.rows.length);
  if (conc.length) {
    const c = dotPlot(concurrencyAsTiers(conc), y, "Concurrency — p50 of one operation at each level (log scale); right: dgent's throughput, ÷ raw and ÷ best peer (higher is better)", LEGEND_TIERS, concurrencyNote);
    parts.push(...c.svg);
    y += c.height + 10;
  }
  const height = Math.ceil(y + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" ${FONT}>`,
    `<rect width="${W}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
