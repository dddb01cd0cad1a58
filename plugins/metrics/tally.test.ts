import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { sampleValue } from "./text.js";
import { Tallies } from "./tally.js";

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
});
