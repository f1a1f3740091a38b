/**
 * Email-agent modes benchmark: one supervised warm start, then the three GRPO modes (masked,
 * rollout, simple) from that same start with the same seed and budget. Held-out accuracy is
 * always measured the same way — whole multi-turn episodes on questions from unseen inboxes,
 * greedy decoding — before and after each mode's training.
 *
 *   npx tsx bench/email-modes/run.ts [--sft-steps 400] [--sft-minutes 30] [--sft-chunk 200] [--steps 30]
 *        [--minutes-per-mode 10] [--eval-size 32] [--seed 42] [--modes masked,rollout,simple]
 *        [--learning-rate 1e-3] [--output-dir outputs/email_modes_bench] [--backend wasm|cpu]
 *
 * The warm-started base is saved to <output-dir>/sft_base and reused when it already exists
 * (its warm start continues for --sft-minutes; 0 keeps it as is), so the modes can be rerun,
 * or run one at a time, from the same start.
 */

import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../../src/core/rng.ts";
import { readJsonFile, writeJsonAtomic } from "../../src/io/files.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { EMAIL_TRAINING_FIELDS } from "../../src/recipes/email/config.ts";
import {
  EMAIL_MODES,
  EMAIL_RECIPE_DEFAULTS,
  type EmailMode,
  type EmailRunOptions,
  emailDefaults,
} from "../../src/recipes/email/presets.ts";
import {
  emailDemonstrations,
  emailTask,
  emailWarmStart,
  newEmailModel,
  prepareEmailTrainer,
  saveBaseModel,
  stepLine,
} from "../../src/recipes/email/run.ts";
import { loadStartingModel } from "../../src/rl/prepare.ts";

const { values } = parseArgs({
  options: {
    "sft-steps": { type: "string", default: "400" },
    "sft-minutes": { type: "string", default: "30" },
    "sft-chunk": { type: "string", default: "200" },
    steps: { type: "string", default: "30" },
    "minutes-per-mode": { type: "string", default: "10" },
    "eval-size": { type: "string", default: "32" },
    "learning-rate": { type: "string", default: "1e-3" },
    "batch-size": { type: "string" },
    "num-generations": { type: "string" },
    beta: { type: "string" },
    "eval-every": { type: "string", default: "0" },
    seed: { type: "string", default: "42" },
    modes: { type: "string", default: EMAIL_MODES.join(",") },
    "output-dir": { type: "string", default: "outputs/email_modes_bench" },
    backend: { type: "string", default: "wasm" },
  },
});

function num(flag: string): number {
  const v = Number(values[flag as keyof typeof values]);
  if (!Number.isFinite(v) || v < 0)
    throw new Error(`--${flag} must be a number ≥ 0, got ${values[flag as keyof typeof values]}`);
  return v;
}

const out = values["output-dir"]!;
const seed = num("seed");
const modes = values.modes!.split(",").map((m) => {
  if (!EMAIL_MODES.includes(m as EmailMode)) throw new Error(`--modes: unknown mode "${m}"`);
  return m as EmailMode;
});
const backend = await initBackend(values.backend as BackendName);

function runOptions(mode: EmailMode): EmailRunOptions {
  return {
    ...emailDefaults(mode),
    ...EMAIL_RECIPE_DEFAULTS,
    evalDatasetSize: num("eval-size"),
    learningRate: num("learning-rate"),
    ...(values["batch-size"] === undefined ? {} : { perDeviceTrainBatchSize: num("batch-size") }),
    ...(values["num-generations"] === undefined ? {} : { numGenerations: num("num-generations") }),
    ...(values.beta === undefined ? {} : { beta: num("beta") }),
    maxSteps: num("steps"),
    mode,
    seed,
    sftSteps: 0,
    evalEvery: 0,
    saveEvery: 0,
    resume: false,
    outputDir: join(out, mode),
    baseModel: join(out, "sft_base"),
  };
}

const baseDir = join(out, "sft_base");
const probe = emailTask(runOptions("masked"));
// A saved base is reused; with --sft-minutes > 0 its warm start continues (steps add up).
const resumeBase = existsSync(join(baseDir, "model.safetensors"));
// A base from another vocabulary (an earlier version of the recipe) fails here, naming its file.
const loadBase = () =>
  loadStartingModel(baseDir, seed, { name: "email", vocabSize: probe.vocabSize, fullModel: true });
if (!resumeBase || num("sft-minutes") > 0) {
  const saved = resumeBase ? readBaseConfig() : {};
  const previous = Number(saved.sft_steps ?? 0);
  const previousSeconds = Number(saved.sft_seconds ?? 0);
  const rng = new Rng((seed ^ 0xe3a1) + previous);
  const model = resumeBase ? loadBase() : newEmailModel(probe, rng);
  const demos = emailDemonstrations(probe, EMAIL_RECIPE_DEFAULTS.sftNoise, rng);
  const t0 = performance.now();
  const budget = num("sft-minutes") * 60_000;
  let done = 0;
  let loss = Number.NaN;
  // Pieces of --sft-chunk steps: each sftTrain call starts a fresh Adam, so pieces are long;
  // after each, the held-out accuracy shows whether the warm start has learnt to answer yet.
  const chunk = Math.max(1, num("sft-chunk"));
  // Saved after every piece, so that a stopped warm start keeps what it has learnt.
  const save = () =>
    saveBaseModel(baseDir, model, {
      sft_steps: previous + done,
      sft_seconds: previousSeconds + (performance.now() - t0) / 1000,
      sft_loss: loss,
    });
  while (done < num("sft-steps") && performance.now() - t0 < budget) {
    const n = Math.min(chunk, num("sft-steps") - done);
    const losses = emailWarmStart(model, probe, demos, n, rng, (s, l) => {
      if (s % 50 === 0) console.log(`warm start ${previous + done + s} steps, cross-entropy ${l.toFixed(3)}`);
    });
    done += n;
    loss = losses.at(-1)!;
    save();
    const h = probe.heldOutEpisodes(model, 0, seed);
    console.log(
      `warm start ${previous + done} steps, cross-entropy ${loss.toFixed(3)}, held-out accuracy ${h.accuracy.toFixed(3)}, ` +
        `reward ${h.reward.toFixed(3)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
  if (done === 0) save();
  model.dispose();
}

function readBaseConfig(): Record<string, unknown> {
  return (readJsonFile(join(baseDir, "metadata.json")) as { config?: Record<string, unknown> }).config ?? {};
}

const base = loadBase();
const before = probe.heldOutEpisodes(base, 0, seed);
base.dispose();
console.log(
  `warm-started base: held-out accuracy ${before.accuracy.toFixed(3)}, reward ${before.reward.toFixed(3)}`,
);

interface Row {
  mode: EmailMode;
  before: number;
  after: number;
  rewardBefore: number;
  rewardAfter: number;
  steps: number;
  seconds: number;
  trainableRatio: number;
}
const rows: Row[] = [];
for (const mode of modes) {
  const o = runOptions(mode);
  rmSync(o.outputDir, { recursive: true, force: true });
  const { trainer } = await prepareEmailTrainer(o, { log: (l) => console.log(`[${mode}] ${l}`) });
  const t0 = performance.now();
  const budget = num("minutes-per-mode") * 60_000;
  let trained = 0;
  let total = 0;
  while (trainer.step < o.maxSteps && performance.now() - t0 < budget) {
    const r = trainer.trainStep();
    trained += r.trainable_tokens ?? 0;
    total += r.completion_tokens ?? 0;
    console.log(`[${mode}] ${stepLine(r, o.maxSteps)}`);
    if (num("eval-every") > 0 && trainer.step % num("eval-every") === 0) {
      const h = probe.heldOutEpisodes(trainer.policy, 0, seed);
      console.log(
        `[${mode}] step ${trainer.step}: held-out accuracy ${h.accuracy.toFixed(3)}, reward ${h.reward.toFixed(3)}`,
      );
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await trainer.saveCheckpoint(join(o.outputDir, "final"));
  const after = probe.heldOutEpisodes(trainer.policy, 0, seed);
  rows.push({
    mode,
    before: before.accuracy,
    after: after.accuracy,
    rewardBefore: before.reward,
    rewardAfter: after.reward,
    steps: trainer.step,
    seconds,
    trainableRatio: total > 0 ? trained / total : 0,
  });
  console.log(
    `[${mode}] after ${trainer.step} steps: held-out accuracy ${after.accuracy.toFixed(3)}, reward ${after.reward.toFixed(3)}`,
  );
  trainer.policy.dispose();
  trainer.dispose();
}

console.log(
  `\nbackend ${backend}; seed ${seed}; ${probe.dataset.eval.length} held-out questions; ` +
    `settings: ${EMAIL_TRAINING_FIELDS.map((f) => f.env).join(", ")} at the recipe defaults except MAX_STEPS=${num("steps")}, ` +
    `LEARNING_RATE=${num("learning-rate")}, EVAL_DATASET_SIZE=${num("eval-size")}\n`,
);
console.log(
  "| mode | held-out acc before | after | reward before → after | steps | wall time (GRPO) | trainable-token ratio |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.mode} | ${r.before.toFixed(3)} | ${r.after.toFixed(3)} | ${r.rewardBefore.toFixed(3)} → ${r.rewardAfter.toFixed(3)} | ${r.steps} | ${r.seconds.toFixed(0)} s | ${(100 * r.trainableRatio).toFixed(1)}% |`,
  );
}
writeJsonAtomic(join(out, "results.json"), { backend, seed, rows });
