import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { appendJsonl } from "../../src/io/files.ts";
import { emptyUsage } from "../../src/llm/client.ts";
import { UsageLog } from "../../src/recipes/causal-scaffold/usage-log.ts";
import { bestStep, parametricCharts, trainingFreeCharts } from "../../src/report/charts.ts";
import { flatten, renderReport } from "../../src/report/html.ts";
import { defaultReportPath, watchReport, writeReport } from "../../src/report/index.ts";
import { groupStat, librarySizeOverTime, loadRun, runNames } from "../../src/report/load.ts";
import {
  HOSTILE,
  realTheoryRun,
  tempDir,
  writeBrokenRun,
  writeParametricRun,
  writeTrainingFreeRun,
} from "./fixtures.ts";

const emptyStats = (agent: string) => ({ agent, model: "test-model", ...emptyUsage() });

test("a parametric run loads every numeric series, skipping nulls", () => {
  const run = loadRun(writeParametricRun(join(tempDir("p"), "theory"), 6));
  const p = run.parametric!;
  assert.deepEqual(run.problems, []);
  assert.equal(p.steps, 6);
  assert.deepEqual(
    p.series.get("reward")!.map((q) => q.y),
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
  );
  assert.deepEqual(
    p.series.get("eval_success_rate")!.map((q) => q.x),
    [2, 4, 6],
  );
  assert.equal(p.series.has("grad_norm"), false, "a key whose values are all null has no series");
  assert.equal(bestStep(p), 4);
  assert.deepEqual(
    p.checkpoints.map((c) => c.name),
    ["checkpoint-2", "checkpoint-4"],
  );
  assert.equal(p.samples.length, 1);
  assert.deepEqual(
    { best: p.samples[0]!.best.reward, worst: p.samples[0]!.worst.reward, n: p.samples[0]!.groupSize },
    { best: 0.9, worst: -1, n: 3 },
  );
  assert.equal((p.config as { groupSize: number }).groupSize, 8);
});

test("parametric charts: known groups in order, unknown keys after, reward band, best marker", () => {
  const run = loadRun(writeParametricRun(join(tempDir("p"), "theory"), 6));
  const charts = parametricCharts([{ name: run.name, data: run.parametric! }]);
  const titles = charts.map((c) => c.title);
  assert.equal(titles[0], "Reward: mean, band ± std within groups");
  assert.equal(titles.at(-1), "My custom metric");
  assert.ok(titles.indexOf("KL to the reference") < titles.indexOf("Step time"));
  const reward = charts[0]!;
  assert.equal(reward.series.length, 1);
  assert.equal(reward.series[0]!.band!.length, 6);
  const success = charts.find((c) => c.title === "Success rate")!;
  assert.deepEqual(
    success.series.map((s) => s.name),
    ["training success", "held-out success"],
  );
  assert.deepEqual(success.markers, [{ x: 4, y: 0.9, label: "best by held-out success @4" }]);
  const clip = charts.find((c) => c.title === "Clipped importance ratios")!;
  assert.equal(clip.series.length, 2);
});

test("two runs overlay: one series per run, named after the run", () => {
  const root = tempDir("cmp");
  const a = loadRun(writeParametricRun(join(root, "with"), 4), "with");
  const b = loadRun(writeParametricRun(join(root, "without"), 6), "without");
  const charts = parametricCharts([
    { name: a.name, data: a.parametric! },
    { name: b.name, data: b.parametric! },
  ]);
  const reward = charts.find((c) => c.title.startsWith("Reward"))!;
  assert.deepEqual(
    reward.series.map((s) => s.name),
    ["with", "without"],
  );
  const clip = charts.find((c) => c.title === "Clipped importance ratios")!;
  assert.deepEqual(
    clip.series.map((s) => s.name),
    [
      "with: clipped below 1 − ε",
      "with: clipped above 1 + ε",
      "without: clipped below 1 − ε",
      "without: clipped above 1 + ε",
    ],
  );
  const success = charts.find((c) => c.title === "Success rate")!;
  assert.deepEqual(
    success.markers.map((m) => m.label),
    ["with: best by held-out success @4", "without: best by held-out success @4"],
  );
});

test("μ, σ (population) and correctness of a group, by hand", () => {
  const s = groupStat("p", [1, 0, 0.5], [true, false, true]);
  assert.equal(s.mean, 0.5);
  assert.ok(Math.abs(s.std - Math.sqrt(1 / 6)) < 1e-12);
  assert.ok(Math.abs(s.correct - 2 / 3) < 1e-12);
  assert.equal(s.rollouts, 3);
});

test("library size replays added/deleted per problem; modified and merged leave it", () => {
  const h = (action: "added" | "deleted" | "modified" | "merged", problem_id: string) => ({
    action,
    id: "x",
    problem_id,
    time: "",
  });
  assert.deepEqual(
    librarySizeOverTime([
      h("added", "p1"),
      h("added", "p1"),
      h("deleted", "p2"),
      h("modified", "p3"),
      h("merged", "p3"),
      h("added", "p4"),
    ]),
    [
      { x: 1, y: 2 },
      { x: 2, y: 1 },
      { x: 3, y: 2 },
    ],
  );
  assert.deepEqual(librarySizeOverTime([]), []);
});

test("a training-free run loads agents, libraries, usage and the A/B result", () => {
  const run = loadRun(writeTrainingFreeRun(tempDir("tf"), 4));
  assert.deepEqual(run.problems, [], JSON.stringify(run.problems));
  const tf = run.trainingFree!;
  assert.deepEqual(
    tf.agents.map((a) => a.agent),
    ["generator_1", "generator_2", "generator_3", "critic"],
  );
  const g1 = tf.agents[0]!;
  assert.equal(g1.problems.length, 4);
  assert.equal(g1.problems[0]!.mean, 0.5);
  assert.ok(Math.abs(g1.problems[1]!.correct - 1 / 3) < 1e-12);
  // critic: fusions of generators 1..3 have r_total 0.2, 0.4, 0.6; the third is wrong
  const c0 = tf.agents[3]!.problems[0]!;
  assert.ok(Math.abs(c0.mean - 0.4) < 1e-12);
  assert.ok(Math.abs(c0.correct - 2 / 3) < 1e-12);
  // failures are counted per agent and kept out of the statistics
  assert.deepEqual(g1.failures, { problems: 1, items: 2, byCause: { rate_limit: 1, schema: 1 } });
  assert.deepEqual(tf.agents[1]!.failures, { problems: 0, items: 0, byCause: {} });
  assert.deepEqual(tf.agents[3]!.failures, { problems: 1, items: 1, byCause: { timeout: 1 } });
  assert.equal(tf.agents[3]!.problems.length, 4);
  const lib = tf.libraries.find((l) => l.owner === "generator_1")!;
  assert.equal(lib.entries.length, 2);
  assert.deepEqual(
    lib.history.map((x) => x.action),
    ["added", "added", "modified", "deleted", "added"],
  );
  assert.deepEqual(
    lib.sizeOverTime.map((q) => q.y),
    [2, 1, 2],
  );
  assert.equal(tf.runSummary!.usage.perAgent.generator_1!.promptTokens, 1000);
  assert.equal(tf.evalResult!.k, 2);
  const charts = trainingFreeCharts([{ name: run.name, data: tf }]);
  assert.deepEqual(
    charts.map((c) => c.title),
    [
      "generator_1: reward μ ± σ per problem",
      "generator_2: reward μ ± σ per problem",
      "generator_3: reward μ ± σ per problem",
      "critic: reward μ ± σ per problem",
      "Correct rollouts per problem",
      "Experience library size",
    ],
  );
});

test("the page escapes text from every file and shows tables", () => {
  const root = tempDir("esc");
  const runs = [
    loadRun(writeParametricRun(join(root, "p"), 4)),
    loadRun(writeTrainingFreeRun(join(root, "tf"), 2)),
  ];
  const html = renderReport(runs);
  assert.ok(!html.includes(HOSTILE), "raw hostile text must not appear");
  assert.ok(!html.includes("<img"), "no element can come from file text");
  assert.equal((html.match(/<script>/g) ?? []).length, 1, "only the page's own script");
  assert.match(html, /&lt;img src=x onerror=/);
  assert.match(html, /Sample completions/);
  assert.match(html, /A\/B evaluation/);
  assert.match(html, /Mean@2 with/);
  assert.match(html, /\$0\.0350/, "total cost over agents");
  assert.match(html, /op-deleted/);
  assert.match(html, /<th>failed problems<\/th><th>failures by cause<\/th>/);
  assert.match(
    html,
    /<td>generator_1<\/td>(?:<td>[^<]*<\/td>){5}<td>1<\/td><td>rate_limit 1, schema 1<\/td>/,
  );
  assert.match(html, /<td>critic<\/td>(?:<td>[^<]*<\/td>){5}<td>1<\/td><td>timeout 1<\/td>/);
  assert.doesNotMatch(html, /Missing or unreadable/);
  assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, "no network reference");
});

test("missing, empty, torn and invalid files are listed instead of failing", () => {
  const run = loadRun(writeBrokenRun(tempDir("broken")));
  const byFile = Object.fromEntries(run.problems.map((p) => [p.file, p.reason]));
  assert.match(byFile["history.jsonl"]!, /truncated/);
  assert.match(byFile["training_stats.json"]!, /invalid JSON/);
  assert.equal(byFile["final/metadata.json"], "empty file");
  assert.equal(byFile["checkpoint-1/metadata.json"], "missing");
  assert.deepEqual(
    run.parametric!.series.get("reward")!.map((p) => p.y),
    [0.1, 0.2],
  );
  const html = renderReport([run]);
  assert.match(html, /<section id="missing"><h2>Missing or unreadable<\/h2>/);
  for (const f of [
    "history.jsonl",
    "training_stats.json",
    "final/metadata.json",
    "checkpoint-1/metadata.json",
  ]) {
    assert.ok(html.includes(`<code>${f}</code>`), f);
  }
});

test("a bad line in the middle of history.jsonl is skipped and named", () => {
  const dir = tempDir("mid");
  appendJsonl(join(dir, "history.jsonl"), { step: 1, reward: 1 });
  appendJsonl(join(dir, "history.jsonl"), "placeholder");
  const text = readFileSync(join(dir, "history.jsonl"), "utf8").replace('"placeholder"', "{oops");
  writeFileSync(join(dir, "history.jsonl"), `${text}{"step":3,"reward":3}\n`);
  const run = loadRun(dir);
  assert.match(run.problems.find((p) => p.file === "history.jsonl")!.reason, /line\(s\) 2\b/);
  assert.deepEqual(
    run.parametric!.series.get("reward")!.map((p) => p.x),
    [1, 3],
  );
});

test("training-free: invalid cache lines and a broken library are reported per file", () => {
  const dir = writeTrainingFreeRun(tempDir("tfb"), 2);
  writeFileSync(join(dir, "grpo_training/cache/generator_2_rollouts.jsonl"), '{"problem_id":"p0"}\n');
  writeFileSync(join(dir, "data/grpo_experiences/critic_experiences.json"), "[");
  // without the usage files, the summary file is what the report reads
  rmSync(join(dir, "grpo_training/run_summary.json"));
  rmSync(join(dir, "grpo_training/usage"), { recursive: true });
  const run = loadRun(dir);
  const files = run.problems.map((p) => p.file).sort();
  assert.deepEqual(files, [
    "data/grpo_experiences/critic_experiences.json",
    "grpo_training/cache/generator_2_rollouts.jsonl",
    "grpo_training/run_summary.json",
  ]);
  assert.match(run.problems.find((p) => p.file.includes("generator_2"))!.reason, /:1 \(field /);
  assert.equal(run.trainingFree!.agents.length, 3);
});

test("a directory with no run files, or no directory at all, is a problem, not a crash", () => {
  assert.match(loadRun(tempDir("empty")).problems[0]!.reason, /no run files/);
  assert.equal(loadRun("/nonexistent/run").problems[0]!.reason, "not a directory");
});

test("run names get the parent folder only when base names collide", () => {
  assert.deepEqual(runNames(["/a/x/run", "/a/y/run", "/b/other"]), ["x/run", "y/run", "other"]);
});

test("flatten turns nested configuration into dotted keys", () => {
  assert.deepEqual(flatten({ a: 1, b: { c: "x", d: [1, 2] } }), [
    ["a", "1"],
    ["b.c", "x"],
    ["b.d", "[1,2]"],
  ]);
});

test("a report of a directory that does not exist is an error, and creates nothing", () => {
  const missing = join(tempDir("gone"), "typo");
  assert.throws(() => writeReport([missing]), /report: .*typo does not exist/);
  assert.equal(existsSync(missing), false);
});

test("usage of a killed run (a usage log without its end line) is in the report", () => {
  const dir = writeTrainingFreeRun(tempDir("killed"), 2);
  const log = new UsageLog(dir, "generator_1", new Date(Date.UTC(2026, 0, 2)));
  log.record({ ...emptyStats("generator_1"), calls: 1, promptTokens: 70 });
  // no close(): the process was killed
  const tf = loadRun(dir).trainingFree!;
  assert.deepEqual(
    tf.runSummary!.runs.map((r) => [r.command, r.status]),
    [
      ["tf-train", "finished"],
      ["generator_1", "unfinished"],
    ],
  );
  assert.equal(tf.runSummary!.usage.perAgent.generator_1!.promptTokens, 1070);
});

test("writeReport writes <run>/report.html atomically and returns the path", () => {
  const dir = writeParametricRun(join(tempDir("w"), "run"), 3);
  const { path } = writeReport([dir]);
  assert.equal(path, defaultReportPath([dir]));
  assert.equal(path, join(dir, "report.html"));
  assert.match(readFileSync(path, "utf8"), /^<!DOCTYPE html>/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.endsWith(".tmp")),
    [],
  );
  const out = join(tempDir("w2"), "sub", "cmp.html");
  assert.equal(writeReport([dir, dir], { out }).path, out);
  assert.ok(existsSync(out));
});

test("watchReport re-renders after the run changes and stops on abort", async () => {
  const dir = writeParametricRun(join(tempDir("watch"), "run"), 2);
  const renders: string[] = [];
  const ac = new AbortController();
  const done = watchReport([dir], {
    intervalMs: 20,
    debounceMs: 40,
    signal: ac.signal,
    onRender: (p) => renders.push(readFileSync(p, "utf8")),
  });
  assert.equal(renders.length, 1, "renders once at start");
  appendJsonl(join(dir, "history.jsonl"), { step: 3, reward: 0.3, marker_metric_x: 1 });
  const deadline = Date.now() + 5000;
  while (renders.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await done;
  assert.equal(renders.length, 2);
  assert.match(renders[1]!, /Marker metric x/);
  assert.doesNotMatch(renders[0]!, /Marker metric x/);
});

test("the token charts of a real run read core's one definition: ratio = trained / completion tokens", async () => {
  const run = loadRun(await realTheoryRun(join(tempDir("tokens"), "theory")));
  const series = run.parametric!.series;
  const ratio = series.get("trainable_tokens_ratio")!;
  assert.equal(ratio.length, 4);
  ratio.forEach((point, i) => {
    const trained = series.get("trainable_tokens")![i]!.y;
    const all = series.get("completion_tokens")![i]!.y;
    assert.ok(all > 0 && trained <= all, `step ${point.x}: ${trained} of ${all}`);
    assert.ok(Math.abs(point.y - trained / all) < 1e-12, `step ${point.x}: ${point.y} vs ${trained}/${all}`);
  });
  const charts = parametricCharts([{ name: run.name, data: run.parametric! }]);
  const tokens = charts.find((c) => c.title === "Tokens per step")!;
  assert.deepEqual(
    tokens.series.map((s) => s.name),
    ["trained tokens", "completion tokens"],
  );
  assert.ok(charts.some((c) => c.title === "Trained share of the completion tokens"));
});
