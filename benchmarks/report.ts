import { OP_LABEL } from "./contender.js";
import { formatRatio, formatUs, type Stats } from "./measure.js";
import type { BenchResults, ConcurrencyResult, QueriesResult, QueryOp, TierResult } from "./results.js";

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [`| ${head.map(esc).join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

const rate = (s: Stats) => (s.opsPerSec >= 1e5 ? `${(s.opsPerSec / 1e6).toFixed(2)} M/s` : s.opsPerSec >= 100 ? `${(s.opsPerSec / 1e3).toFixed(1)} k/s` : `${s.opsPerSec.toFixed(1)}/s`);

function tierSection(t: TierResult): string {
  const out: string[] = [`### ${t.tier} — ${t.label}`];
  if (t.error) {
    out.push(`Not measured: ${t.error}`);
    return out.join("\n\n");
  }
  const dgent = t.contenders.find((c) => c.kind === "dgent")?.name;
  const rows: string[][] = [];
  for (const o of t.ops) {
    if (o.error) {
      rows.push([OP_LABEL[o.op], "error", o.error, "", "", "", "", ""]);
      continue;
    }
    for (const c of t.contenders) {
      const s = o.stats[c.name];
      if (!s) continue;
      const isDgent = c.name === dgent;
      rows.push([
        OP_LABEL[o.op],
        isDgent ? `**${c.name}**` : c.name,
        formatUs(s.p50),
        formatUs(s.p99),
        rate(s),
        `${s.samples}${s.batch > 1 ? ` × ${s.batch}` : ""}`,
        isDgent ? formatRatio(o.ratioRaw) : "",
        isDgent ? (o.bestPeer ? `${formatRatio(o.ratioBestPeer)} (${o.bestPeer})` : "no peer") : "",
      ]);
    }
  }
  out.push(table(["op", "contender", "p50", "p99", "throughput", "samples", "dgent ÷ raw", "dgent ÷ best peer"], rows));
  const notes = t.contenders.flatMap((c) => [`- **${c.name}** (${c.kind}): ${c.description}${c.notes ? `; ${Object.entries(c.notes).map(([op, n]) => `${op}: ${n}`).join("; ")}` : ""}`]);
  for (const s of t.skipped) notes.push(`- ${s.name}: not run — ${s.reason}`);
  out.push(notes.join("\n"));
  if (t.probe) out.push(`Measured once: \`${JSON.stringify(t.probe)}\``);
  return out.join("\n\n");
}

const QUERY_OP_LABEL: Readonly<Record<QueryOp, string>> = {
  filtered: "filtered list(100)",
  ids: 'filtered list(100), select "ids"',
  chainTail: "causalChain tail 20",
};

const n = (x: number) => x.toLocaleString("en");

/** The queries part: one summary row per tier, then each tier's cells. */
function queriesSection(qs: readonly QueriesResult[]): string {
  const out: string[] = ["## Queries (issue 14): filtered list(100) by one tag of 20 values, ids only, chain tails"];
  const p = (s: Stats | null) => (s ? `${formatUs(s.p50)} / ${formatUs(s.p95)}` : "–");
  out.push(
    table(
      ["tier", "queryCost", "sizes", "filtered p50 / p95 (large)", "÷ raw", "large ÷ small (raw)", "ids p50 / p95 (large)", "÷ raw", "chain tail: long ÷ short (raw)", "÷ best peer (peers' size)", "16 callers: calls/s dgent / raw"],
      qs.map((q) => {
        if (q.error) return [q.tier, "", q.sizes.map(n).join(" / "), `error: ${q.error}`, "", "", "", "", "", "", ""];
        const f = q.figures;
        const c = q.concurrent;
        const dgentRate = c ? c.byContender.dgent?.opsPerSec : undefined;
        const rawRate = c ? Object.entries(c.byContender).find(([name]) => name !== "dgent")?.[1].opsPerSec : undefined;
        return [
          q.tier,
          q.queryCost,
          q.sizes.map(n).join(" / "),
          p(f.filtered),
          formatRatio(f.filteredRaw),
          `${formatRatio(f.filteredScaling)}${f.rawFilteredScaling !== null ? ` (${formatRatio(f.rawFilteredScaling)})` : ""}`,
          p(f.ids),
          formatRatio(f.idsRaw),
          `${formatRatio(f.chainTail)}${f.rawChainTail !== null ? ` (${formatRatio(f.rawChainTail)})` : ""}`,
          f.bestPeer ? `${formatRatio(f.peerRatio)} (${f.bestPeer}, ${n(q.peerSize ?? 0)})` : "no peer",
          c ? `${dgentRate?.toFixed(0) ?? "–"} / ${rawRate?.toFixed(0) ?? "–"} (${n(c.size)} datums)` : "–",
        ];
      }),
    ),
  );
  for (const q of qs) {
    if (q.error) continue;
    const lines: string[] = [`### queries on ${q.tier} — ${q.label}`];
    const rows: string[][] = [];
    for (const o of q.ops) {
      if (o.error) {
        rows.push([QUERY_OP_LABEL[o.op], "error", o.error, "", "", "", "", ""]);
        continue;
      }
      for (const cell of o.cells) {
        const raw = cell.kind === "dgent" ? o.cells.find((x) => x.kind === "raw" && x.size === cell.size) : undefined;
        rows.push([
          QUERY_OP_LABEL[o.op],
          cell.kind === "dgent" ? `**${cell.contender}**` : cell.contender,
          o.op === "chainTail" ? `${n(cell.size)}-long chain (store of ${n(q.sizes[1])})` : n(cell.size),
          formatUs(cell.stats.p50),
          formatUs(cell.stats.p95),
          formatUs(cell.stats.p99),
          `${cell.stats.samples}${cell.stats.batch > 1 ? ` × ${cell.stats.batch}` : ""}`,
          raw ? formatRatio(cell.stats.p50 / raw.stats.p50) : "",
        ]);
      }
    }
    lines.push(table(["op", "contender", "datums", "p50", "p95", "p99", "samples", "dgent ÷ raw"], rows));
    if (q.concurrent) {
      const c = q.concurrent;
      lines.push(
        `${c.callers} concurrent callers (one process), filtered list(100) on the ${n(c.size)} store:\n\n` +
          table(
            ["contender", "calls/s", "calls", "latency p50", "latency p95"],
            Object.entries(c.byContender).map(([name, x]) => [name, x.opsPerSec.toFixed(0), String(x.calls), formatUs(x.p50), formatUs(x.p95)]),
          ),
      );
    }
    const notes = q.contenders.map((c) => `- **${c.name}** (${c.kind}): ${c.description}`);
    for (const s of q.skipped) notes.push(`- ${s.name}: not run — ${s.reason}`);
    notes.push(`- load: ${Object.entries(q.fillMs).map(([name, ms]) => `${name} ${(ms / 1000).toFixed(1)} s`).join(", ")}`);
    for (const note of q.notes) notes.push(`- ${note}`);
    lines.push(notes.join("\n"));
    out.push(lines.join("\n\n"));
  }
  return out.join("\n\n");
}

/** The concurrency part: per tier, every contender at every level. */
function concurrencySection(rs: readonly ConcurrencyResult[]): string {
  const out: string[] = [
    "## Concurrency (issue 23): put and get with concurrent callers and processes",
    "Throughput = operations per second of all callers (and processes) together; latency = each operation's, waiting for a pooled connection or a group sync included. " +
      "÷ raw and ÷ best peer are dgent's throughput over theirs: **higher is better** (unlike the tiers' tables).",
  ];
  const rate = (x: number) => (x >= 1e5 ? `${(x / 1e6).toFixed(2)} M/s` : x >= 100 ? `${(x / 1e3).toFixed(1)} k/s` : `${x.toFixed(1)}/s`);
  for (const r of rs) {
    const lines: string[] = [`### concurrency on ${r.tier} — ${r.label}`];
    if (r.error) {
      lines.push(`Not measured: ${r.error}`);
      out.push(lines.join("\n\n"));
      continue;
    }
    const rows: string[][] = [];
    for (const row of r.rows) {
      const level = row.processes > 1 ? `${row.processes} processes × ${row.callers / row.processes}` : String(row.callers);
      for (const c of row.cells) {
        const isDgent = c.kind === "dgent" && c.contender === "dgent";
        if (c.error) {
          rows.push([row.op, level, c.contender, "error", c.error, "", "", ""]);
          continue;
        }
        rows.push([
          row.op,
          level,
          isDgent ? `**${c.contender}**` : c.contender,
          rate(c.opsPerSec),
          formatUs(c.p50),
          formatUs(c.p99),
          isDgent ? formatRatio(row.throughputRaw) : "",
          isDgent ? (row.bestPeer ? `${formatRatio(row.throughputBestPeer)} (${row.bestPeer})` : "no peer") : "",
        ]);
      }
    }
    lines.push(table(["op", "callers", "contender", "throughput", "p50", "p99", "dgent ÷ raw (throughput)", "dgent ÷ best peer"], rows));
    const notes = r.contenders.map((c) => `- **${c.name}** (${c.kind}): ${c.description}`);
    for (const s of r.skipped) notes.push(`- ${s.name}: not run — ${s.reason}`);
    if (r.fsyncFloor) notes.push(`- fsync floor (fdatasync after a 1 KiB append, before and after these rows): p50 ${formatUs(r.fsyncFloor.p50)}, p99 ${formatUs(r.fsyncFloor.p99)}`);
    for (const n of r.notes) notes.push(`- ${n}`);
    lines.push(notes.join("\n"));
    out.push(lines.join("\n\n"));
  }
  return out.join("\n\n");
}

/** The results as Markdown: what `benchmarks/results/<name>.md` holds and stdout shows. */
export function markdownReport(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# dgent benchmark — ${r.name === r.mode ? `${r.mode} run` : `${r.name} (${r.mode} run)`}`);
  out.push(
    [
      `- command: \`${r.command}\``,
      `- started ${r.startedAt}, took ${r.durationS.toFixed(0)} s${m.commit ? `, commit ${m.commit.slice(0, 12)}` : ""}`,
      `- machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(0)} GiB, ${m.os}, Node ${m.node}${m.note ? ` — ${m.note}` : ""}`,
      `- load average before ${m.loadBefore.map((x) => x.toFixed(2)).join(" ")}, after ${m.loadAfter.map((x) => x.toFixed(2)).join(" ")}; data under ${m.tmpdir}`,
      `- workload: ${r.config.contentBytes} B content, ${r.config.tags} tags, prefill ${r.config.prefill.toLocaleString("en")} datums (object stores ${r.config.objectStorePrefill}), chains of ${r.config.chainDepth}, list(${r.config.listLimit}) newest first, putMany(${r.config.batch})`,
      `- one sequential caller; p50/p99 of per-call latency (a sample of a call under 2 µs is the mean of a batch, see "samples"); throughput = calls per second of that caller`,
    ].join("\n"),
  );
  const s = r.summary;
  out.push(`## Verdict: ${s.pass} pass, ${s.miss} miss, ${s.notMeasured} not measured`);
  out.push(
    table(
      ["", "target", "value", "detail"],
      r.verdict.map((v) => [v.pass === true ? "pass" : v.pass === false ? "**MISS**" : "n/a", v.title, v.value === null ? "–" : v.unit === "µs" ? formatUs(v.value) : formatRatio(v.value), v.detail]),
    ),
  );
  if (r.fsyncFloor) out.push(`fsync floor (fdatasync after a 1 KiB append): p50 ${formatUs(r.fsyncFloor.p50)}, p99 ${formatUs(r.fsyncFloor.p99)} over ${r.fsyncFloor.samples} samples.`);
  out.push("## Tiers");
  for (const t of r.tiers) out.push(tierSection(t));
  if (r.hooks.length) {
    out.push("## Hook overhead (0, 1, 5 trivial plugins tapping beforePut, afterPut, read)");
    for (const h of r.hooks) {
      if (h.error) {
        out.push(`${h.tier}: not measured: ${h.error}`);
        continue;
      }
      const names = h.contenders.map((c) => c.name);
      const base = names[0] as string;
      out.push(
        `### ${h.tier}\n\n` +
          table(
            ["op", ...names.map((n) => `${n} p50`), ...names.slice(1).map((n) => `${n} ÷ ${base}`)],
            h.ops.map((o) => {
              const b = o.stats[base];
              return [
                OP_LABEL[o.op],
                ...names.map((n) => (o.stats[n] ? formatUs((o.stats[n] as Stats).p50) : "–")),
                ...names.slice(1).map((n) => (o.stats[n] && b ? formatRatio((o.stats[n] as Stats).p50 / b.p50) : "–")),
              ];
            }),
          ),
      );
    }
  }
  if (r.scaling.length) {
    out.push("## Scaling (get and list(100) on one store of each size, measured interleaved; the raw baseline at the same sizes for context)");
    out.push(
      table(
        ["tier", "sizes", "fill, dgent + raw (batches of 1000)", "get p50", "get ratio", "raw get ratio", "list(100) p50", "list ratio", "raw list ratio"],
        r.scaling.map((x) =>
          x.error
            ? [x.tier, `${x.sizes.join(" / ")}`, "", "", "", "", "", "", `error: ${x.error}`]
            : [
                x.tier,
                x.sizes.map((n) => n.toLocaleString("en")).join(" → "),
                x.fillMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(" / "),
                `${formatUs(x.get.small.p50)} → ${formatUs(x.get.large.p50)}`,
                formatRatio(x.get.ratio),
                x.raw ? `${formatRatio(x.raw.get.ratio)} (${formatUs(x.raw.get.small.p50)} → ${formatUs(x.raw.get.large.p50)})` : "–",
                `${formatUs(x.list.small.p50)} → ${formatUs(x.list.large.p50)}`,
                formatRatio(x.list.ratio),
                x.raw ? `${formatRatio(x.raw.list.ratio)} (${formatUs(x.raw.list.small.p50)} → ${formatUs(x.raw.list.large.p50)})` : "–",
              ],
        ),
      ),
    );
  }
  if (r.queries?.length) out.push(queriesSection(r.queries));
  if (r.concurrency?.length) out.push(concurrencySection(r.concurrency));
  return `${out.join("\n\n")}\n`;
}
