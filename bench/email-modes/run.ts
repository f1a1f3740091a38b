/**
 * Email-agent modes benchmark: per seed, the recipe's supervised warm start, then the three
 * GRPO modes (masked, rollout, simple) from that same start with the same budget. Held-out
 * accuracy is measured the same way for every mode — whole multi-turn episodes on questions
 * from inboxes never trained on, greedy decoding — on the warm-started model ("before") and on
 * each mode's final policy ("after"), and every wrong answer is classified by its cause.
 *
 *   node --import tsx bench/email-modes/run.ts [--seeds 42,7] [--modes masked,rollout,simple]
 *        [--sft-steps N] [--steps N] [--minutes-per-mode 12] [--eval-size 240]
 *        [--output-dir outputs/email_modes_bench] [--backend wasm|cpu] [recipe flags…]
 *
 * Recipe flags (--learning-rate, --num-generations, --batch-size, --beta, --temperature,
 * --sft-noise) override the recipe's defaults, which are what `grpo train email` runs. A
 * seed's warm-started base is saved to <output-dir>/seed-<s>/sft_base and reused by later runs
 * with the same warm-start settings, so modes can be rerun, or run one at a time, from the same
 * start. Per mode it writes held_out_before.jsonl / held_out_after.jsonl (every episode, its
 * verdict, cause and transcript) beside the run's own files, and results.json at the top.
 */

import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../../src/core/rng.ts";
import { readJsonFile, writeJsonAtomic } from "../../src/io/files.ts";
import { type BackendName, initBackend } from "../../src/model/backend.ts";
import { ERROR_CLASSES, ERROR_LABELS, type ErrorCounts } from "../../src/recipes/email/errors.ts";
import type { HeldOutResult } from "../../src/recipes/email/held-out.ts";
import { fixed, stepLine } from "../../src/recipes/email/log.ts";
import {
  EMAIL_MODES,
  EMAIL_RECIPE_DEFAULTS,
  type EmailMode,
  type EmailRunOptions,
  emailDefaults,
} from "../../src/recipes/email/presets.ts";
import type { EmailRlTask } from "../../src/recipes/email/rl-task.ts";
import {
  emailDemonstrations,
  emailTask,
  emailWarmStart,
  newEmailModel,
  prepareEmailTrainer,
  saveBaseModel,
} from "../../src/recipes/email/run.ts";
import { loadStartingModel } from "../../src/rl/prepare.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "42,7" },
    modes: { type: "string", default: EMAIL_MODES.join(",") },
    "sft-steps": { type: "string", default: String(EMAIL_RECIPE_DEFAULTS.sftSteps) },
    "sft-noise": { type: "string", default: String(EMAIL_RECIPE_DEFAULTS.sftNoise) },
    steps: { type: "string", default: String(emailDefaults("masked").maxSteps) },
    "minutes-per-mode": { type: "string", default: "12" },
    "eval-size": { type: "string", default: "240" },
    "eval-every": { type: "string", default: "0" },
    "learning-rate": { type: "string" },
    "num-generations": { type: "string" },
    "batch-size": { type: "string" },
    beta: { type: "string" },
    temperature: { type: "string" },
    "output-dir": { type: "string", default: "outputs/email_modes_bench" },
    backend: { type: "string", default: "wasm" },
  },
});

function num(flag: keyof typeof values): number {
  const v = Number(values[flag]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${flag} must be a number ≥ 0, got ${values[flag]}`);
  return v;
}
const optional = (flag: keyof typeof values) => (values[flag] === undefined ? undefined : num(flag));

const out = values["output-dir"]!;
const seeds = values.seeds!.split(",").map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--seeds: "${s}" is not a non-negative integer`);
  return n;
});
const modes = values.modes!.split(",").map((m) => {
  if (!EMAIL_MODES.includes(m as EmailMode)) throw new Error(`--modes: unknown mode "${m}"`);
  return m as EmailMode;
});
const backend = await initBackend(values.backend as BackendName);
const load = () => fixed(loadavg()[0]!, 1);

function runOptions(mode: EmailMode, seed: number): EmailRunOptions {
  const o: EmailRunOptions = {
    ...emailDefaults(mode),
    ...EMAIL_RECIPE_DEFAULTS,
    evalDatasetSize: num("eval-size"),
    maxSteps: num("steps"),
    mode,
    seed,
    sftSteps: 0,
    sftNoise: num("sft-noise"),
    evalEvery: 0,
    saveEvery: 0,
    resume: false,
    outputDir: join(out, `seed-${seed}`, mode),
    baseModel: join(out, `seed-${seed}`, "sft_base"),
  };
  const overrides = {
    learningRate: optional("learning-rate"),
    numGenerations: optional("num-generations"),
    perDeviceTrainBatchSize: optional("batch-size"),
    beta: optional("beta"),
    temperature: optional("temperature"),
  };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) Object.assign(o, { [k]: v });
  return o;
}

/** The recipe's warm start for `seed`, saved once; a saved base with other settings is redone. */
function warmStart(seed: number, task: EmailRlTask): { seconds: number; loss: number } {
  const dir = join(out, `seed-${seed}`, "sft_base");
  const settings = { sft_steps: num("sft-steps"), sft_noise: num("sft-noise") };
  const meta = join(dir, "metadata.json");
  if (existsSync(meta)) {
    const saved = (readJsonFile(meta) as { config?: Record<string, unknown> }).config ?? {};
    if (saved.sft_steps === settings.sft_steps && saved.sft_noise === settings.sft_noise) {
      console.log(`[seed ${seed}] reusing the warm start in ${dir}`);
      return { seconds: Number(saved.sft_seconds), loss: Number(saved.sft_loss) };
    }
  }
  const rng = new Rng(seed ^ 0xe3a1);
  const model = newEmailModel(task, rng);
  const demos = emailDemonstrations(task, settings.sft_noise, rng);
  const t0 = performance.now();
  const losses = emailWarmStart(model, task, demos, settings.sft_steps, rng, (s, l) => {
    if (s % 100 === 0)
      console.log(
        `[seed ${seed}] warm start ${s}/${settings.sft_steps}, cross-entropy ${fixed(l, 3)}, load ${load()}`,
      );
  });
  const seconds = (performance.now() - t0) / 1000;
  const loss = losses.at(-1) ?? Number.NaN;
  saveBaseModel(dir, model, { ...settings, sft_seconds: seconds, sft_loss: loss });
  model.dispose();
  return { seconds, loss };
}

function writeEpisodes(file: string, h: HeldOutResult): void {
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(
    file,
    h.episodes
      .map((e) =>
        JSON.stringify({
          id: e.question.id,
          kind: e.question.kind,
          expected: e.question.answer,
          answer: e.answer,
          verdict: e.verdict,
          cause: e.errorClass,
          answer_in_inbox: e.answerInInbox,
          transcript: e.transcript,
        }),
      )
      .map((line) => `${line}\n`)
      .join(""),
  );
}

/**
 * How varied the correct answers are: a policy that found one answer to repeat would show it
 * as a few values answering many questions.
 */
function answerSpread(h: HeldOutResult): string {
  const counts = new Map<string, number>();
  for (const e of h.episodes) if (e.answer !== null) counts.set(e.answer, (counts.get(e.answer) ?? 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  const answered = [...counts.values()].reduce((a, b) => a + b, 0);
  return `${counts.size} distinct answers in ${answered}; most frequent ${top ? `"${top[0]}" ×${top[1]}` : "none"}`;
}

/** Accuracy per kind of question ("owner 0.62, room 0.80, …"): which facts the agent copies well. */
function byKind(h: HeldOutResult): string {
  const tally = new Map<string, { right: number; all: number }>();
  for (const e of h.episodes) {
    const t = tally.get(e.question.kind) ?? { right: 0, all: 0 };
    t.all++;
    if (e.errorClass === null) t.right++;
    tally.set(e.question.kind, t);
  }
  return [...tally.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([k, t]) => `${k} ${t.right}/${t.all}`)
    .join(", ");
}

interface Row {
  seed: number;
  mode: EmailMode | "warm start";
  before: number;
  after: number;
  rewardBefore: number;
  rewardAfter: number;
  errorsBefore: ErrorCounts;
  errorsAfter: ErrorCounts;
  steps: number;
  seconds: number;
  trainableRatio: number;
  loadStart: string;
  loadEnd: string;
}
const rows: Row[] = [];
const started = performance.now();

for (const seed of seeds) {
  const probe = emailTask(runOptions("masked", seed));
  const loadSft = load();
  const sft = warmStart(seed, probe);
  const base = loadStartingModel(join(out, `seed-${seed}`, "sft_base"), seed, {
    name: "email",
    vocabSize: probe.vocabSize,
    fullModel: true,
  });
  const before = probe.heldOutEpisodes(base, 0, seed);
  base.dispose();
  writeEpisodes(join(out, `seed-${seed}`, "held_out_before.jsonl"), before);
  console.log(
    `[seed ${seed}] warm start: ${num("sft-steps")} steps in ${fixed(sft.seconds, 0)} s, cross-entropy ${fixed(sft.loss, 3)}; ` +
      `held-out accuracy ${fixed(before.accuracy, 3)}, reward ${fixed(before.reward, 3)} (${answerSpread(before)}; ${byKind(before)})`,
  );
  rows.push({
    seed,
    mode: "warm start",
    before: before.accuracy,
    after: before.accuracy,
    rewardBefore: before.reward,
    rewardAfter: before.reward,
    errorsBefore: before.errors,
    errorsAfter: before.errors,
    steps: num("sft-steps"),
    seconds: sft.seconds,
    trainableRatio: Number.NaN,
    loadStart: loadSft,
    loadEnd: load(),
  });
  for (const mode of modes) {
    const o = runOptions(mode, seed);
    rmSync(o.outputDir, { recursive: true, force: true });
    const { trainer, task } = await prepareEmailTrainer(o, {
      log: (l) => console.log(`[seed ${seed} ${mode}] ${l}`),
    });
    const loadStart = load();
    const t0 = performance.now();
    const budget = num("minutes-per-mode") * 60_000;
    let trained = 0;
    let total = 0;
    while (trainer.step < o.maxSteps && performance.now() - t0 < budget) {
      const r = trainer.trainStep();
      trained += r.trainable_tokens ?? 0;
      total += r.completion_tokens ?? 0;
      if (trainer.step % 10 === 0 || trainer.step === 1)
        console.log(`[seed ${seed} ${mode}] ${stepLine(r, o.maxSteps)} | load ${load()}`);
      if (num("eval-every") > 0 && trainer.step % num("eval-every") === 0) {
        const h = task.heldOutEpisodes(trainer.policy, 0, seed);
        console.log(
          `[seed ${seed} ${mode}] step ${trainer.step}: held-out accuracy ${fixed(h.accuracy, 3)}, reward ${fixed(h.reward, 3)}`,
        );
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    await trainer.saveCheckpoint(join(o.outputDir, "final"));
    const after = task.heldOutEpisodes(trainer.policy, 0, seed);
    writeEpisodes(join(o.outputDir, "held_out_after.jsonl"), after);
    rows.push({
      seed,
      mode,
      before: before.accuracy,
      after: after.accuracy,
      rewardBefore: before.reward,
      rewardAfter: after.reward,
      errorsBefore: before.errors,
      errorsAfter: after.errors,
      steps: trainer.step,
      seconds,
      trainableRatio: total > 0 ? trained / total : 0,
      loadStart,
      loadEnd: load(),
    });
    console.log(
      `[seed ${seed} ${mode}] after ${trainer.step} steps (${fixed(seconds, 0)} s): held-out accuracy ` +
        `${fixed(after.accuracy, 3)}, reward ${fixed(after.reward, 3)} (${answerSpread(after)}; ${byKind(after)})`,
    );
    trainer.policy.dispose();
    trainer.dispose();
  }
}

const o = runOptions("masked", seeds[0]!);
console.log(
  `\nbackend ${backend}; seeds ${seeds.join(", ")}; ${num("eval-size")} held-out questions per seed; ` +
    `warm start ${num("sft-steps")} steps (noise ${num("sft-noise")}); GRPO up to ${num("steps")} steps or ` +
    `${num("minutes-per-mode")} min per mode, ${o.perDeviceTrainBatchSize} questions × ${o.numGenerations} episodes, ` +
    `learning rate ${o.learningRate}, β ${o.beta}, temperature ${o.temperature}; ` +
    `total ${fixed((performance.now() - started) / 60_000, 1)} min\n`,
);
console.log(
  "| seed | mode | held-out acc before | after | reward before → after | steps | wall time | trainable-token ratio | load avg (start → end) |",
);
console.log("|---|---|---:|---:|---|---:|---:|---:|---|");
for (const r of rows) {
  const ratio = Number.isNaN(r.trainableRatio) ? "" : `${fixed(100 * r.trainableRatio, 1)}%`;
  console.log(
    `| ${r.seed} | ${r.mode} | ${fixed(r.before, 3)} | ${r.mode === "warm start" ? "" : fixed(r.after, 3)} | ` +
      `${fixed(r.rewardBefore, 3)} → ${fixed(r.rewardAfter, 3)} | ${r.steps} | ${fixed(r.seconds, 0)} s | ${ratio} | ${r.loadStart} → ${r.loadEnd} |`,
  );
}
console.log("\nWrong held-out answers by cause (warm start → after each mode):\n");
const trained = rows.filter((r) => r.mode !== "warm start");
console.log(`| cause | ${trained.map((r) => `seed ${r.seed} ${r.mode}`).join(" | ")} |`);
console.log(`|---|${trained.map(() => "---:").join("|")}|`);
for (const c of ERROR_CLASSES) {
  console.log(
    `| ${ERROR_LABELS[c]} | ${trained.map((r) => `${r.errorsBefore[c]} → ${r.errorsAfter[c]}`).join(" | ")} |`,
  );
}
writeJsonAtomic(join(out, "results.json"), { backend, seeds, rows });
