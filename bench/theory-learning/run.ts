/**
 * Theory-learning benchmark: from the warm-started policy, the share of sampled theories that
 * are anomaly-free and non-trivial, before and after a fixed wall-time budget of GRPO steps.
 * Prints the curve and writes training_stats.json (plus history.jsonl) to --output-dir.
 *
 *   node --import tsx bench/theory-learning/run.ts [--minutes 15] [--max-steps N] [--backend wasm|cpu]
 *        [--learning-rate 5e-4] [--num-generations 256] [--downsample 64] [--sft-steps 400] [--seed 1]
 *        [--replay 2] [--no-curriculum] [--partial-credit 0] [--temperature 1] [--entropy-coef 0.01]
 *        [--beta 0.01] [--measure-every 25] [--output-dir outputs/grpo_theory_bench]
 * The defaults are the measured configuration of bench/README.md; --downsample 0 and --replay 0
 * turn those off. --group-size and --kl-coef, the flags' earlier names, still work.
 */

import { rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../../src/core/rng.ts";
import { writeJsonAtomic } from "../../src/io/files.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { QUICK_GRAMMAR } from "../../src/recipes/theory/presets.ts";
import { theoryRlTask } from "../../src/recipes/theory/rl-task.ts";
import {
  measureTheories,
  newTheoryModel,
  QUICK_THEORY_RUN,
  trainerConfigFor,
  warmStart,
} from "../../src/recipes/theory/run.ts";
import { GrpoTrainer } from "../../src/rl/trainer.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "15" },
    "max-steps": { type: "string", default: "100000" },
    backend: { type: "string", default: "wasm" },
    "learning-rate": { type: "string", default: "5e-4" },
    "num-generations": { type: "string", default: "256" },
    "group-size": { type: "string" },
    "sft-steps": { type: "string", default: "400" },
    "measure-every": { type: "string", default: "25" },
    samples: { type: "string", default: "512" },
    seed: { type: "string", default: "1" },
    replay: { type: "string", default: "2" },
    downsample: { type: "string", default: "64" },
    "no-curriculum": { type: "boolean", default: false },
    "partial-credit": { type: "string", default: "0" },
    temperature: { type: "string", default: "1" },
    "entropy-coef": { type: "string", default: "0.01" },
    beta: { type: "string", default: "0.01" },
    "kl-coef": { type: "string" },
    "output-dir": { type: "string", default: "outputs/grpo_theory_bench" },
  },
});
// The earlier names of two flags, still read when given.
if (values["group-size"] !== undefined) values["num-generations"] = values["group-size"];
if (values["kl-coef"] !== undefined) values.beta = values["kl-coef"];
const num = (k: keyof typeof values) => {
  const v = Number(values[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k}: not a number: ${values[k]}`);
  return v;
};

const backend = await initBackend(values.backend as BackendName);
const seed = num("seed");
const samples = num("samples");
const outputDir = values["output-dir"]!;
const task = theoryRlTask({ ...QUICK_GRAMMAR, reward: { partialCredit: num("partial-credit") } });
const rng = new Rng(seed);
const model = newTheoryModel(task, "tiny", rng);

// Other work on the machine slows the steps down; the load average says how much there was.
const loadAtStart = loadavg()[0]!;
const t0 = performance.now();
const wall = () => (performance.now() - t0) / 1000;
const sft = warmStart(model, task, num("sft-steps"), rng);
const sftSeconds = wall();
const before = measureTheories(model, task, samples, seed + 1000);
console.log(
  `backend ${backend}; warm start ${sft.length} steps in ${sftSeconds.toFixed(0)} s (cross-entropy ${sft[0]?.toFixed(3)} → ${sft.at(-1)?.toFixed(3)})`,
);
console.log(
  `before GRPO: anomaly-free & non-trivial ${(100 * before.validShare).toFixed(1)}% of ${samples}, reward ${before.reward.toFixed(3)}`,
);

const config = {
  ...trainerConfigFor(
    {
      ...QUICK_THEORY_RUN,
      seed,
      learningRate: num("learning-rate"),
      numGenerations: num("num-generations"),
      temperature: num("temperature"),
      entropyCoef: num("entropy-coef"),
      beta: num("beta"),
      useCurriculum: values["no-curriculum"] !== true,
    },
    task,
  ),
  evalEvery: 0,
  saveEvery: 0,
  // Prioritised replay brings back the rare groups with a clear winner (an anomaly-free theory).
  replay: num("replay") > 0 ? { capacity: 64, perStep: num("replay") } : undefined,
  // Sampling is cheap next to the update: sample --num-generations, update on the --downsample most varied.
  downsample: num("downsample") > 0 ? num("downsample") : undefined,
};
const trainer = new GrpoTrainer(model, {
  task,
  config,
  outputDir,
  runInfo: { recipe: "theory", bench: "theory-learning" },
});
// The trainer appends; a previous run's lines would otherwise precede this run's.
for (const f of ["history.jsonl", "samples.jsonl"]) rmSync(join(outputDir, f), { force: true });
const budget = num("minutes") * 60;
const maxSteps = num("max-steps");
const every = num("measure-every");
const grpoStart = wall();
const curve: {
  step: number;
  seconds: number;
  train_success_rate: number;
  reward: number;
  valid_share: number;
}[] = [];
console.log("step  seconds  phase  train_success  reward  valid_share(256)");
while (trainer.step < maxSteps && wall() - grpoStart < budget) {
  const r = trainer.trainStep();
  if (trainer.step % every === 0) {
    const m = measureTheories(model, task, 256, seed + 2000 + trainer.step);
    const point = {
      step: trainer.step,
      seconds: wall() - grpoStart,
      train_success_rate: r.success_rate ?? 0,
      reward: r.reward ?? 0,
      valid_share: m.validShare,
    };
    curve.push(point);
    console.log(
      `${String(point.step).padStart(4)}  ${point.seconds.toFixed(0).padStart(7)}  ${String(r.phase).padStart(5)}  ${point.train_success_rate.toFixed(3).padStart(13)}  ${point.reward.toFixed(3).padStart(6)}  ${point.valid_share.toFixed(3)}`,
    );
  }
}
const grpoSeconds = wall() - grpoStart;
const after = measureTheories(model, task, samples, seed + 1000);
console.log(
  `after ${trainer.step} GRPO steps (${grpoSeconds.toFixed(0)} s): anomaly-free & non-trivial ${(100 * after.validShare).toFixed(1)}%, reward ${after.reward.toFixed(3)}`,
);
for (const e of after.examples) console.log(`  e.g. ${e}`);
const loadAtEnd = loadavg();
console.log(
  `load average: ${loadAtStart.toFixed(2)} at the start; ${loadAtEnd.map((l) => l.toFixed(2)).join(", ")} (1, 5, 15 min) at the end`,
);
writeJsonAtomic(join(outputDir, "training_stats.json"), {
  bench: "theory-learning",
  backend,
  seed,
  sft_steps: sft.length,
  sft_seconds: sftSeconds,
  grpo_steps: trainer.step,
  grpo_seconds: grpoSeconds,
  load_average: { start_1min: loadAtStart, end_1_5_15min: loadAtEnd },
  before,
  after,
  curve,
  config,
});
console.log(`→ ${join(outputDir, "training_stats.json")}`);
trainer.dispose();
model.dispose();
