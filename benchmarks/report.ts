import { OP_LABEL } from "./contender.js";
import { formatRatio, formatUs, type Stats } from "./measure.js";
import type { BenchResults, TierResult } from "./results.js";

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
  return `${out.join("\n\n")}\n`;
}
