import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { sampleValue } from "./text.js";
import { HistogramTallies, Tallies } from "./tally.js";

describe("metrics: counter tallies", () => {
  it("show on read what prom-client's own children would: sums, zero increments, first-count order", async () => {
    const registry = new Registry();
    const tallies = new Tallies<"op">();
    new Counter({ name: "t_total", help: "t", labelNames: ["op"], registers: [registry], collect() { tallies.flush(this); } });
    const reference = new Counter({ name: "r_total", help: "r", labelNames: ["op"], registers: [registry] });
    const a = tallies.child({ op: "a" });
    const b = tallies.child({ op: "b" });
    const c = tallies.child({ op: "c" }); // never counted: no sample, as with prom-client
    void c;
    b.inc(0);
    a.inc();
    a.inc(2.5);
    reference.labels("b").inc(0);
    reference.labels("a").inc();
    reference.labels("a").inc(2.5);
    let text = await registry.metrics();
    expect(sampleValue(text, "t_total", { op: "a" })).toBe(3.5);
    expect(sampleValue(text, "t_total", { op: "b" })).toBe(0);
    expect(sampleValue(text, "t_total", { op: "c" })).toBeUndefined();
    const lines = (name: string) => text.split("\n").filter((l) => l.startsWith(name)).map((l) => l.slice(name.length));
    expect(lines("t_total")).toEqual(lines("r_total"));
    b.inc(4);
    text = await registry.metrics();
    expect(sampleValue(text, "t_total", { op: "a" })).toBe(3.5);
    expect(sampleValue(text, "t_total", { op: "b" })).toBe(4);
    expect(() => a.inc(-1)).toThrow(TypeError);
  });

  it("histogram tallies show on read what prom-client's observe would: buckets, +Inf, sum, count, order, reset", async () => {
    const registry = new Registry();
    const buckets = [0.001, 0.01, 0.1, 1];
    const tallies = new HistogramTallies<"op">(buckets);
    const tallied = new Histogram({ name: "t_seconds", help: "t", labelNames: ["op"], buckets, registers: [registry], collect() { tallies.flush(this); } });
    const reference = new Histogram({ name: "r_seconds", help: "r", labelNames: ["op"], buckets, registers: [registry] });
    const lines = (text: string, name: string) => text.split("\n").filter((l) => l.startsWith(name)).map((l) => l.slice(name.length));
    const a = tallies.child({ op: "a" });
    const b = tallies.child({ op: "b" });
    tallies.child({ op: "never" });
    const values: [string, number][] = [["b", 0.5], ["a", 0], ["a", 0.001], ["a", 0.0011], ["b", 7], ["a", 1], ["b", 0.01]];
    for (const [op, v] of values) {
      (op === "a" ? a : b).observe(v);
      reference.labels(op).observe(v);
    }
    let text = await registry.metrics();
    expect(lines(text, "t_seconds")).toEqual(lines(text, "r_seconds"));
    expect(sampleValue(text, "t_seconds_bucket", { op: "a", le: "0.001" })).toBe(2);
    expect(sampleValue(text, "t_seconds_bucket", { op: "b", le: "+Inf" })).toBe(3);
    expect(sampleValue(text, "t_seconds_count", { op: "never" })).toBeUndefined();
    // Observations after a read add to what was read; after a reset only the new ones count.
    a.observe(0.05);
    reference.labels("a").observe(0.05);
    text = await registry.metrics();
    expect(lines(text, "t_seconds")).toEqual(lines(text, "r_seconds"));
    expect(sampleValue(text, "t_seconds_count", { op: "a" })).toBe(5);
    tallied.reset();
    reference.reset();
    b.observe(0.002);
    reference.labels("b").observe(0.002);
    text = await registry.metrics();
    expect(lines(text, "t_seconds")).toEqual(lines(text, "r_seconds"));
    expect(sampleValue(text, "t_seconds_count", { op: "b" })).toBe(1);
    expect(() => a.observe(Number.NaN)).toThrow(TypeError);
  });
});
