/**
 * Theory-discovery benchmark: from the warm-started policy, a fixed wall-time budget of GRPO
 * steps, measuring at every evaluation the share of sampled theories that are valid
 * (anomaly-free and non-trivial), how many distinct valid theories the evaluation's samples
 * hold, how many the run has found so far, and how many of those the demonstrations did not
 * contain. Prints the curve, the most frequent theories of the final evaluation (one repeated
 * theory is a collapse, whatever the share), the targets, and writes training_stats.json,
 * history.jsonl and theories.json to --output-dir.
 *
 *   node --import tsx bench/theory-learning/run.ts [--minutes 15] [--seed 1] [--preset discovery|learning|quick]
 *        [--max-steps N] [--backend wasm|cpu] [--eval-every 100] [--eval-samples 512]
 *        [--learning-rate x] [--num-generations n] [--downsample n] [--sft-steps n] [--replay n]
 *        [--curriculum true|false] [--partial-credit x] [--temperature x] [--entropy-coef x] [--beta x]
 *        [--novelty-weight x] [--core-novelty-weight x] [--diversity-weight x]
 *        [--content-diversity-weight x] [--content-novelty-weight x] [--archive-replay n]
 *        [--demo-valid-share x] [--scale-rewards group|batch|none] [--lr-scheduler-type constant|linear|cosine]
 *        [--output-dir outputs/grpo_theory_bench]
 *   node --import tsx bench/theory-learning/run.ts --enumerate     # the exact count of valid theories
 * Unset flags take the preset's value (default: the discovery preset, what `grpo train theory
 * --preset discovery` runs). --group-size and --kl-coef, earlier names, still work.
 */

import { rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LR_SCHEDULER_TYPES } from "../../src/core/config.ts";
import { Rng } from "../../src/core/rng.ts";
import { writeJsonAtomic } from "../../src/io/files.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { enumerateValidTheories } from "../../src/recipes/theory/enumerate.ts";
import {
  DISCOVERY_THEORY_RUN,
  LEARNING_THEORY_RUN,
  QUICK_GRAMMAR,
  QUICK_GRAMMAR_VALID_THEORIES,
  QUICK_THEORY_RUN,
  type TheoryRunOptions,
} from "../../src/recipes/theory/presets.ts";
import {
  newTheoryModel,
  showDemonstrations,
  theoryTaskFor,
  trainerConfigFor,
  warmStart,
} from "../../src/recipes/theory/run.ts";
import { type EvalResult, GrpoTrainer } from "../../src/rl/trainer.ts";

const { values } = parseArgs({
  options: {
    enumerate: { type: "boolean", default: false },
    preset: { type: "string", default: "discovery" },
    minutes: { type: "string", default: "15" },
    "max-steps": { type: "string", default: "100000" },
    backend: { type: "string", default: "wasm" },
    seed: { type: "string", default: "1" },
    "eval-every": { type: "string", default: "100" },
    "eval-samples": { type: "string", default: "512" },
    "learning-rate": { type: "string" },
    "num-generations": { type: "string" },
    "group-size": { type: "string" },
    downsample: { type: "string" },
    "sft-steps": { type: "string" },
    replay: { type: "string" },
    curriculum: { type: "string" },
    "partial-credit": { type: "string" },
    temperature: { type: "string" },
    "entropy-coef": { type: "string" },
    beta: { type: "string" },
    "kl-coef": { type: "string" },
    "novelty-weight": { type: "string" },
    "core-novelty-weight": { type: "string" },
    "diversity-weight": { type: "string" },
    "content-diversity-weight": { type: "string" },
    "archive-replay": { type: "string" },
    "content-novelty-weight": { type: "string" },
    "demo-valid-share": { type: "string" },
    "scale-rewards": { type: "string" },
    "lr-scheduler-type": { type: "string" },
    "output-dir": { type: "string", default: "outputs/grpo_theory_bench" },
  },
});

if (values.enumerate) {
  const t0 = performance.now();
  const space = enumerateValidTheories(QUICK_GRAMMAR);
  console.log(
    `QUICK_GRAMMAR (${QUICK_GRAMMAR.minFields}..${QUICK_GRAMMAR.maxFields} fields, Y6 in [${QUICK_GRAMMAR.y6Range}]): ` +
      `${space.anomalyFreeMultisets} anomaly-free field multisets, ${space.validMultisets} of them non-trivial, ` +
      `${space.classes} valid theories up to relabelling; by number of fields: ${space.classesByFields.join(", ")} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s, load average ${loadavg()[0]!.toFixed(2)})`,
  );
  if (space.classes !== QUICK_GRAMMAR_VALID_THEORIES) {
    console.error(`QUICK_GRAMMAR_VALID_THEORIES is ${QUICK_GRAMMAR_VALID_THEORIES}: update it in presets.ts`);
    process.exitCode = 1;
  }
  process.exit();
}

const presets: Record<string, TheoryRunOptions> = {
  discovery: DISCOVERY_THEORY_RUN,
  learning: LEARNING_THEORY_RUN,
  quick: QUICK_THEORY_RUN,
};
const preset = presets[values.preset!];
if (!preset) throw new Error(`--preset: one of ${Object.keys(presets).join(", ")}, got ${values.preset}`);
// The earlier names of two flags, still read when given.
values["num-generations"] ??= values["group-size"];
values.beta ??= values["kl-coef"];
const num = (k: keyof typeof values, fallback?: number): number => {
  if (values[k] === undefined && fallback !== undefined) return fallback;
  const v = Number(values[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k}: not a number: ${values[k]}`);
  return v;
};
const schedule = values["lr-scheduler-type"];
if (schedule !== undefined && !(LR_SCHEDULER_TYPES as readonly string[]).includes(schedule))
  throw new Error(`--lr-scheduler-type: one of ${LR_SCHEDULER_TYPES.join(", ")}, got ${schedule}`);
const seed = num("seed");
const opts: TheoryRunOptions = {
  ...preset,
  seed,
  learningRate: num("learning-rate", preset.learningRate),
  numGenerations: num("num-generations", preset.numGenerations),
  downsample: num("downsample", preset.downsample),
  sftSteps: num("sft-steps", preset.sftSteps),
  replay: num("replay", preset.replay),
  useCurriculum: values.curriculum === undefined ? preset.useCurriculum : values.curriculum === "true",
  partialCredit: num("partial-credit", preset.partialCredit),
  temperature: num("temperature", preset.temperature),
  entropyCoef: num("entropy-coef", preset.entropyCoef),
  beta: num("beta", preset.beta),
  noveltyWeight: num("novelty-weight", preset.noveltyWeight),
  coreNoveltyWeight: num("core-novelty-weight", preset.coreNoveltyWeight),
  diversityWeight: num("diversity-weight", preset.diversityWeight),
  contentDiversityWeight: num("content-diversity-weight", preset.contentDiversityWeight),
  archiveReplay: num("archive-replay", preset.archiveReplay),
  contentNoveltyWeight: num("content-novelty-weight", preset.contentNoveltyWeight),
  demoValidShare: num("demo-valid-share", preset.demoValidShare),
  scaleRewards:
    (values["scale-rewards"] as TheoryRunOptions["scaleRewards"] | undefined) ?? preset.scaleRewards,
  lrSchedulerType:
    (values["lr-scheduler-type"] as TheoryRunOptions["lrSchedulerType"] | undefined) ??
    preset.lrSchedulerType,
  evalSamples: num("eval-samples"),
  outputDir: values["output-dir"]!,
};

const backend = await initBackend(values.backend as BackendName);
const task = theoryTaskFor(opts);
const rng = new Rng(seed ^ 0x5f7);
const model = newTheoryModel(task, opts.modelSize, rng);
// Other work on the machine slows the steps down; the load average says how much there was.
const loadAtStart = loadavg();
const t0 = performance.now();
const wall = () => (performance.now() - t0) / 1000;
const demos = showDemonstrations(task, seed);
const sft = warmStart(model, task, demos, opts.sftSteps, rng);
const sftSeconds = wall();
console.log(
  `backend ${backend}; preset ${values.preset}; warm start ${sft.length} steps in ${sftSeconds.toFixed(0)} s ` +
    `(cross-entropy ${sft[0]?.toFixed(3)} → ${sft.at(-1)?.toFixed(3)}) on ${demos.length} demonstrations ` +
    `holding ${task.archive.demonstrationClasses} distinct valid theories`,
);

const config = { ...trainerConfigFor(opts, task), evalEvery: 0, saveEvery: 0 };
const outputDir = opts.outputDir;
// The trainer appends; a previous run's lines would otherwise precede this run's.
for (const f of ["history.jsonl", "samples.jsonl"]) rmSync(join(outputDir, f), { force: true });
const trainer = new GrpoTrainer(model, {
  task,
  config,
  outputDir,
  runInfo: { recipe: "theory", bench: "theory-learning", preset: values.preset },
});

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const figures = (e: EvalResult) => ({
  success_rate: e.successRate,
  reward: e.reward,
  ...e.metrics,
});
type Point = ReturnType<typeof figures> & { step: number; seconds: number; entropy: number | null };
const curve: Point[] = [];
console.log("step  seconds  phase  entropy  success  distinct  novel  | run: distinct  novel  cores");
const report = (e: EvalResult, entropy: number | null, phase: number) => {
  const m = e.metrics ?? {};
  const point = { step: trainer.step, seconds: wall() - grpoStart, entropy, ...figures(e) };
  curve.push(point);
  console.log(
    `${String(point.step).padStart(4)}  ${point.seconds.toFixed(0).padStart(7)}  ${String(phase).padStart(5)}  ` +
      `${(entropy ?? Number.NaN).toFixed(3).padStart(7)}  ${pct(e.successRate).padStart(7)}  ` +
      `${String(m.distinct_valid).padStart(8)}  ${String(m.novel_valid).padStart(5)}  |  ` +
      `${String(m.distinct_valid_cumulative).padStart(12)}  ${String(m.novel_valid_cumulative).padStart(5)}  ` +
      `${String(m.chiral_cores_cumulative).padStart(5)}`,
  );
};
const grpoStart = wall();
trainer.initialEval = await trainer.evaluateAndTrack();
report(trainer.initialEval, null, trainer.phase);

const budget = num("minutes") * 60;
const maxSteps = num("max-steps");
const every = num("eval-every");
let entropy: number | null = null;
while (trainer.step < maxSteps && wall() - grpoStart < budget) {
  const phase = trainer.phase;
  const r = trainer.trainStep();
  entropy = r.entropy ?? entropy;
  if (trainer.step % every === 0) report(await trainer.evaluateAndTrack(), entropy, phase);
}
const grpoSeconds = wall() - grpoStart;
const evalBefore = new Map(task.archive.theories().map((t) => [t.theory, t.eval_samples]));
const final = await trainer.evaluateAndTrack();
if (curve.at(-1)?.step !== trainer.step) report(final, entropy, trainer.phase);
const loadAtEnd = loadavg();
trainer.writeStats(final, grpoSeconds);

// What the final evaluation's samples are: its most frequent theories and their counts.
const finalCounts = task.archive
  .theories()
  .map((t) => ({ ...t, n: t.eval_samples - (evalBefore.get(t.theory) ?? 0) }))
  .filter((t) => t.n > 0)
  .sort((a, b) => b.n - a.n);
console.log(`\nfinal evaluation (${opts.evalSamples} samples): the most frequent valid theories`);
for (const t of finalCounts.slice(0, 8)) {
  console.log(`  ${String(t.n).padStart(4)}×  ${t.theory}${t.in_demonstrations ? "  (demonstrated)" : ""}`);
}
const m = final.metrics!;
// Vector-like pairs and neutral singlets on top of one chiral core make many distinct theories;
// the number of distinct cores says how many really different ones were found.
const cores = m.chiral_cores_cumulative!;
const found = m.distinct_valid_cumulative!;
const novelShare = found > 0 ? m.novel_valid_cumulative! / found : 0;
console.log(
  `\nafter ${trainer.step} GRPO steps (${grpoSeconds.toFixed(0)} s): success ${pct(trainer.initialEval.successRate)} → ${pct(final.successRate)}; ` +
    `${found} distinct valid theories found (${m.novel_valid_cumulative} not demonstrated, ${pct(novelShare)}; ` +
    `${cores} distinct chiral cores; ${pct(found / QUICK_GRAMMAR_VALID_THEORIES)} of the ${QUICK_GRAMMAR_VALID_THEORIES} the grammar allows); ` +
    `${m.distinct_valid} distinct in the final evaluation`,
);
const minutes = num("minutes");
const targets: [string, boolean][] = [
  [`success share > 50% at the end`, final.successRate > 0.5],
  [`≥ 50 distinct valid theories over the run`, found >= 50],
  [`≥ 80% of them not in the demonstrations`, novelShare >= 0.8],
  [`≥ 20 distinct among the final evaluation's samples`, m.distinct_valid! >= 20],
];
console.log(
  `targets (${minutes} min budget): ${targets.map(([name, ok]) => `${name}: ${ok ? "met" : "MISSED"}`).join("; ")}`,
);
console.log(
  `load average: ${loadAtStart.map((l) => l.toFixed(2)).join(", ")} at the start; ${loadAtEnd.map((l) => l.toFixed(2)).join(", ")} at the end (1, 5, 15 min)`,
);
writeJsonAtomic(join(outputDir, "bench_stats.json"), {
  bench: "theory-learning",
  preset: values.preset,
  backend,
  seed,
  sft_steps: sft.length,
  sft_seconds: sftSeconds,
  grpo_steps: trainer.step,
  grpo_seconds: grpoSeconds,
  load_average: { start_1_5_15min: loadAtStart, end_1_5_15min: loadAtEnd },
  demonstration_classes: task.archive.demonstrationClasses,
  chiral_cores: cores,
  final_top: finalCounts.slice(0, 20).map((t) => ({ theory: t.theory, samples: t.n })),
  targets: Object.fromEntries(targets),
  curve,
  options: opts,
  config,
});
console.log(`→ ${join(outputDir, "bench_stats.json")}, training_stats.json, theories.json`);
trainer.dispose();
model.dispose();
