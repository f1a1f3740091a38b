import assert from "node:assert/strict";
import { test } from "node:test";
import {
  countDrawnPoints,
  escapeXml,
  formatTick,
  lineChart,
  niceTicks,
  paddedRange,
} from "../../src/report/svg.ts";

/** The point lists of every series polyline, in order. */
function polylines(svg: string): string[] {
  return [...svg.matchAll(/<polyline class="series"[^>]* points="([^"]*)"/g)].map((m) => m[1]!);
}

// 200×100 with margins left 64, right 16, top 28, bottom 44: plot 120 wide, 28 high, origin (64, 56).
const SMALL = { width: 200, height: 100 };

test("two points map to the corners of the plot area", () => {
  const svg = lineChart({
    title: "t",
    series: [
      {
        name: "a",
        points: [
          { x: 0, y: 0 },
          { x: 10, y: 10 },
        ],
      },
    ],
    ...SMALL,
  });
  assert.deepEqual(polylines(svg), ["64,56 184,28"]);
  assert.match(svg, /data-expected-points="2"/);
});

test("points are drawn in x order whatever the input order", () => {
  const svg = lineChart({
    title: "t",
    series: [
      {
        name: "a",
        points: [
          { x: 10, y: 10 },
          { x: 0, y: 0 },
        ],
      },
    ],
    ...SMALL,
  });
  assert.deepEqual(polylines(svg), ["64,56 184,28"]);
});

test("a single point lands in the middle of both axes", () => {
  const svg = lineChart({ title: "t", series: [{ name: "a", points: [{ x: 5, y: 3 }] }], ...SMALL });
  // x: 5 ± 0.5 widened to whole steps 4..6; y: 3 ± 0.3 = 2.7..3.3 in steps of 0.1
  assert.deepEqual(polylines(svg), ["124,42"]);
  assert.equal((svg.match(/<circle class="pt"/g) ?? []).length, 1);
});

test("a constant series is drawn mid-height, with ticks around it", () => {
  const pts = [1, 2, 3].map((x) => ({ x, y: 0 }));
  const svg = lineChart({ title: "t", series: [{ name: "a", points: pts }], ...SMALL });
  assert.deepEqual(polylines(svg), ["64,42 124,42 184,42"]);
  const yTicks = [...svg.matchAll(/text-anchor="end" dominant-baseline="middle">([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(yTicks, ["-1.0", "-0.5", "0", "0.5", "1.0"]);
});

test("NaN, Infinity and null values are skipped, not drawn at 0", () => {
  const points = [
    { x: 0, y: 0 },
    { x: 5, y: Number.NaN },
    { x: 7, y: Number.POSITIVE_INFINITY },
    { x: 8, y: null as unknown as number },
    { x: 10, y: 10 },
  ];
  const svg = lineChart({ title: "t", series: [{ name: "a", points }], ...SMALL });
  assert.deepEqual(polylines(svg), ["64,56 184,28"]);
  assert.equal(countDrawnPoints([{ name: "a", points }]), 2);
  assert.doesNotMatch(svg, /NaN|Infinity/);
});

test("an all-NaN series says no data and counts zero points", () => {
  const svg = lineChart({ title: "t", series: [{ name: "a", points: [{ x: 1, y: Number.NaN }] }] });
  assert.match(svg, /data-expected-points="0"/);
  assert.match(svg, />no data</);
});

test("several series each get a polyline and a legend entry", () => {
  const svg = lineChart({
    title: "t",
    series: [
      { name: "run-a", points: [{ x: 1, y: 1 }] },
      {
        name: "run-b",
        points: [
          { x: 1, y: 2 },
          { x: 2, y: 3 },
        ],
      },
    ],
  });
  assert.equal(polylines(svg).length, 2);
  assert.match(svg, />run-a</);
  assert.match(svg, />run-b</);
  assert.match(svg, /data-expected-points="3"/);
});

test("the legend sits under the plot, growing the chart, and can be forced for one series", () => {
  const one = { name: "only-run", points: [{ x: 1, y: 1 }] };
  assert.doesNotMatch(lineChart({ title: "t", series: [one], ...SMALL }), /class="legend"/);
  const forced = lineChart({ title: "t", series: [one], legend: true, ...SMALL });
  assert.match(forced, /class="legend"[\s\S]*>only-run</);
  assert.match(forced, /height="114"/, "100 + one 14px legend row");
  // the plot area itself is unchanged: same point position as without a legend
  assert.deepEqual(polylines(forced), polylines(lineChart({ title: "t", series: [one], ...SMALL })));
});

test("a band widens the y range to mean ± std and is drawn as a polygon", () => {
  const svg = lineChart({
    title: "t",
    series: [
      {
        name: "r",
        points: [
          { x: 0, y: 0 },
          { x: 10, y: 0 },
        ],
        band: [
          { x: 0, y: 1 },
          { x: 10, y: 1 },
        ],
      },
    ],
    ...SMALL,
  });
  // y range −1..1: the line sits mid-height; the band spans the full plot height
  assert.deepEqual(polylines(svg), ["64,42 184,42"]);
  assert.match(svg, /<polygon class="band" data-series="r" points="64,28 184,28 184,56 64,56"/);
});

test("a marker is drawn with its label, escaped", () => {
  const svg = lineChart({
    title: "t",
    series: [
      {
        name: "a",
        points: [
          { x: 1, y: 1 },
          { x: 2, y: 2 },
        ],
      },
    ],
    markers: [{ x: 2, y: 2, label: "best <2>" }],
  });
  assert.match(svg, /class="marker"/);
  assert.match(svg, /best &lt;2&gt;/);
});

test("titles and series names from files are escaped", () => {
  const evil = `<script>alert("x")</script>&`;
  const svg = lineChart({
    title: evil,
    series: [
      {
        name: evil,
        points: [
          { x: 1, y: 1 },
          { x: 2, y: 1 },
        ],
      },
      { name: "b", points: [] },
    ],
  });
  assert.doesNotMatch(svg, /<script>/);
  assert.match(svg, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&amp;/);
  assert.equal(escapeXml(`a'b`), "a&#39;b");
});

test("paddedRange widens empty, single and constant inputs", () => {
  assert.deepEqual(paddedRange([]), { min: 0, max: 1 });
  assert.deepEqual(paddedRange([0, 0]), { min: -1, max: 1 });
  assert.deepEqual(paddedRange([-5]), { min: -5.5, max: -4.5 });
  assert.deepEqual(paddedRange([2, Number.NaN, 8]), { min: 2, max: 8 });
});

test("niceTicks gives exact multiples of a 1-2-5 step covering the range", () => {
  assert.deepEqual(niceTicks({ min: 0.1, max: 0.7 }).ticks, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  const t = niceTicks({ min: -0.31, max: 0.27 });
  assert.equal(t.step, 0.1);
  assert.deepEqual(t.ticks, [-0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3]);
  assert.ok(t.ticks.every((v) => !Object.is(v, -0)));
  assert.deepEqual(niceTicks({ min: 0, max: 1000 }).ticks, [0, 200, 400, 600, 800, 1000]);
  // integer axis (steps): never a step below 1
  assert.deepEqual(niceTicks({ min: 1, max: 3 }, 6, 1).ticks, [1, 2, 3]);
});

test("tick labels keep enough decimals to differ", () => {
  assert.equal(formatTick(2.981, 0.0005), "2.9810");
  assert.equal(formatTick(2.9815, 0.0005), "2.9815");
  assert.equal(formatTick(0.3, 0.1), "0.3");
  assert.equal(formatTick(400, 200), "400");
  assert.equal(formatTick(0, 0.1), "0");
  assert.equal(formatTick(3e-6, 1e-6), "3.0e-6");
  assert.equal(formatTick(2e6, 5e5), "2.0e+6");
});

/** The y tick labels of a chart, bottom to top. */
function yTicks(svg: string): string[] {
  return [...svg.matchAll(/text-anchor="end" dominant-baseline="middle">([^<]*)</g)].map((m) => m[1]!);
}

test("yMin 0: a share near 0.02 gets an axis from 0, a constant 0 gets 0…1, labels in percent", () => {
  const pts = (ys: number[]) => ys.map((y, i) => ({ x: i + 1, y }));
  const share = lineChart({ title: "t", series: [{ name: "a", points: pts([0.02, 0.03]) }], yMin: 0 });
  assert.equal(yTicks(share)[0], "0");
  const free = lineChart({ title: "t", series: [{ name: "a", points: pts([0.02, 0.03]) }] });
  assert.notEqual(yTicks(free)[0], "0", "without yMin the axis follows the data");
  const zero = lineChart({ title: "t", series: [{ name: "a", points: pts([0, 0]) }], yMin: 0 });
  assert.deepEqual([yTicks(zero)[0], yTicks(zero).at(-1)], ["0", "1.0"]);
  const pct = lineChart({
    title: "t",
    series: [{ name: "a", points: pts([0.1, 0.5]) }],
    yMin: 0,
    yPercent: true,
  });
  assert.deepEqual(yTicks(pct), ["0%", "10%", "20%", "30%", "40%", "50%"]);
  // a quantity that went negative keeps its own floor
  const neg = lineChart({ title: "t", series: [{ name: "a", points: pts([-0.2, 0.5]) }], yMin: 0 });
  assert.ok(Number(yTicks(neg)[0]) < 0);
  const counts = lineChart({
    title: "t",
    series: [{ name: "a", points: pts([1, 2]) }],
    yMin: 0,
    yInteger: true,
  });
  assert.ok(
    yTicks(counts).every((t) => Number.isInteger(Number(t))),
    yTicks(counts).join(","),
  );
});
