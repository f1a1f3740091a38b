import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { appendJsonl, writeJsonAtomic } from "../../src/io/files.ts";
import { runColor } from "../../src/report/charts.ts";
import { renderReport } from "../../src/report/html.ts";
import { loadRun } from "../../src/report/load.ts";
import { tempDir, writeTrainingFreeRun } from "./fixtures.ts";

/** A parametric run whose metrics move (so each gets a real chart), with or without curriculum. */
function movingRun(dir: string, opts: { steps?: number; shift?: number; curriculum?: boolean } = {}): string {
  const steps = opts.steps ?? 8;
  const shift = opts.shift ?? 0;
  for (let s = 1; s <= steps; s++) {
    const line: Record<string, number> = {
      step: s,
      reward: -0.5 + s / 10 + shift,
      reward_std: 0.1 + s / 100,
      frac_reward_zero_std: 0.25 + (s % 3) / 10,
      kl: 0.001 * s,
      "clip_ratio/low_mean": 0.01 * (s % 3),
      "clip_ratio/high_mean": 0.02 + 0.001 * s,
      "completions/mean_length": 10 + s,
      "completions/clipped_ratio": 0.1 + 0.02 * s,
      trainable_tokens: 60 + s,
      completion_tokens: 100 + 2 * s,
      trainable_tokens_ratio: (60 + s) / (100 + 2 * s),
      success_rate: s / steps,
      step_time: 0.5 + (s % 2) / 10,
      // a flat metric: nothing moves, nothing to draw
      "clip_ratio/region_mean": 0,
      phase: opts.curriculum ? 1 + Math.floor((s - 1) / 3) : 3,
    };
    if (s % 2 === 0) {
      line.eval_success_rate = s === 4 ? 0.9 : 0.5;
      line.eval_reward = s === 4 ? 0.8 : 0.4;
    }
    appendJsonl(join(dir, "history.jsonl"), line);
  }
  const config = opts.curriculum ? { curriculum: { threshold: 0.5 } } : { beta: 0.05 };
  writeJsonAtomic(join(dir, "training_stats.json"), { best: { successRate: 0.9, step: 4 }, config });
  writeJsonAtomic(join(dir, "final", "metadata.json"), { step: steps, config });
  return dir;
}

interface DrawnChart {
  title: string;
  /** stroke colour of each series polyline, by its data-series name */
  strokes: Map<string, string>;
  /** fill colour of each band, by its data-series name */
  bands: Map<string, string>;
  yTicks: string[];
  yLabel: string | undefined;
  xLabel: string | undefined;
}

/** The charts of a page as the browser would draw them: title, colours, y ticks, axis labels. */
function drawnCharts(html: string): DrawnChart[] {
  return [...html.matchAll(/<svg class="chart"[^>]*aria-label="([^"]*)"[\s\S]*?<\/svg>/g)].map((m) => {
    const svg = m[0];
    const attr = (re: RegExp) => new Map([...svg.matchAll(re)].map((x) => [x[1]!, x[2]!]));
    const labels = [...svg.matchAll(/<text class="label"([^>]*)>([^<]*)</g)];
    return {
      title: m[1]!,
      strokes: attr(/<polyline class="series" data-series="([^"]*)"[^>]* stroke="([^"]*)"/g),
      bands: attr(/<polygon class="band" data-series="([^"]*)"[^>]* fill="([^"]*)"/g),
      yTicks: [...svg.matchAll(/text-anchor="end" dominant-baseline="middle">([^<]*)</g)].map((x) => x[1]!),
      xLabel: labels.find((l) => !l[1]!.includes("rotate"))?.[2],
      yLabel: labels.find((l) => l[1]!.includes("rotate"))?.[2],
    };
  });
}

const NON_NEGATIVE = [
  "Clipped importance ratios",
  "Truncated completions",
  "Groups with equal rewards (no signal)",
  "Completion length",
  "Tokens per step",
  "KL to the reference",
  "Step time",
  "Success rate",
];

describe("report charts", () => {
  test("two runs compared: each keeps one colour on every chart, bands included", () => {
    const root = tempDir("colours");
    const runs = [
      loadRun(movingRun(join(root, "baseline")), "baseline"),
      loadRun(movingRun(join(root, "clip-higher"), { shift: 0.2 }), "clip-higher"),
    ];
    const charts = drawnCharts(renderReport(runs));
    assert.ok(charts.length >= 10, `${charts.length} charts`);
    const seen = new Map<string, Set<string>>();
    for (const c of charts) {
      for (const [name, stroke] of c.strokes) {
        const run = runs.find((r) => name === r.name || name.startsWith(`${r.name}: `));
        assert.ok(run, `${c.title}: series "${name}" names its run`);
        const set = seen.get(run.name) ?? new Set<string>();
        set.add(stroke);
        seen.set(run.name, set);
      }
    }
    assert.deepEqual([...seen.get("baseline")!], [runColor(0)], "baseline: one colour on every chart");
    assert.deepEqual([...seen.get("clip-higher")!], [runColor(1)], "clip-higher: one colour on every chart");
    assert.notEqual(runColor(0), runColor(1));
    const reward = charts.find((c) => c.title.startsWith("Reward"))!;
    assert.deepEqual(Object.fromEntries(reward.bands), { baseline: runColor(0), "clip-higher": runColor(1) });
  });

  test("training-free runs compared keep their colours too", () => {
    const root = tempDir("tf-colours");
    const runs = [
      loadRun(writeTrainingFreeRun(join(root, "with"), 4), "with"),
      loadRun(writeTrainingFreeRun(join(root, "without"), 4, -0.2), "without"),
    ];
    for (const c of drawnCharts(renderReport(runs))) {
      for (const [name, stroke] of c.strokes) {
        const ri = name === "without" || name.startsWith("without: ") ? 1 : 0;
        assert.equal(stroke, runColor(ri), `${c.title}: ${name}`);
      }
    }
  });

  test("quantities that cannot be negative get axes from 0; others follow their data", () => {
    const charts = drawnCharts(renderReport([loadRun(movingRun(tempDir("axes")))]));
    for (const title of NON_NEGATIVE) {
      const c = charts.find((x) => x.title === title);
      assert.ok(c, `a chart titled ${title}`);
      assert.match(c.yTicks[0]!, /^0%?$/, `${title}: axis starts at ${c.yTicks[0]}`);
    }
    const reward = charts.find((c) => c.title.startsWith("Reward"))!;
    assert.ok(Number(reward.yTicks[0]) < 0, "a reward may be negative: its axis goes below 0");
    const clip = charts.find((c) => c.title === "Clipped importance ratios")!;
    assert.ok(
      clip.yTicks.every((t) => t.endsWith("%")),
      "shares are labelled in percent",
    );
  });

  test("every axis says what it measures; known metrics get readable titles", () => {
    const charts = drawnCharts(renderReport([loadRun(movingRun(tempDir("units")))]));
    for (const c of charts) {
      assert.ok(c.xLabel, `${c.title}: x axis label`);
      assert.ok(c.yLabel, `${c.title}: y axis label`);
      assert.doesNotMatch(c.title, /[_/]/, `readable title: ${c.title}`);
    }
    assert.equal(charts.find((c) => c.title === "Completion length")!.yLabel, "tokens");
    assert.equal(charts.find((c) => c.title === "Step time")!.yLabel, "seconds");
  });

  test("a flat metric says so instead of drawing an empty chart", () => {
    const html = renderReport([loadRun(movingRun(tempDir("flat")))]);
    // clip_ratio/region_mean is 0 on every step: named in the clip chart's legend as such
    assert.match(html, /data-series="clip ratio region mean \(0% throughout\)"/);
    const only = tempDir("only-flat");
    appendJsonl(join(only, "history.jsonl"), { step: 1, reward: 0.5, "completions/clipped_ratio": 0 });
    appendJsonl(join(only, "history.jsonl"), { step: 2, reward: 0.6, "completions/clipped_ratio": 0 });
    const page = renderReport([loadRun(only)]);
    assert.match(page, /<figure class="flat" data-title="Truncated completions">/);
    assert.match(page, /0% throughout/);
    assert.ok(!drawnCharts(page).some((c) => c.title === "Truncated completions"), "no empty chart");
  });

  test("the curriculum phase is charted only for runs that used the curriculum", () => {
    const off = drawnCharts(renderReport([loadRun(movingRun(tempDir("no-curr")))]));
    assert.ok(!off.some((c) => c.title === "Curriculum phase"));
    const offHtml = renderReport([loadRun(movingRun(tempDir("no-curr2")))]);
    assert.doesNotMatch(offHtml, /Curriculum phase/);
    const on = drawnCharts(renderReport([loadRun(movingRun(tempDir("curr"), { curriculum: true }))]));
    assert.ok(on.some((c) => c.title === "Curriculum phase"));
  });

  test("the page takes the window's width", () => {
    const html = renderReport([loadRun(movingRun(tempDir("width")))]);
    assert.match(html, /\.charts\{display:grid;grid-template-columns:repeat\(auto-fill,minmax\(/);
    assert.match(html, /svg\.chart\{[^}]*width:100%;height:auto/);
  });
});
