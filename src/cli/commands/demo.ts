/**
 * `grpo demo`: the smallest end-to-end parametric GRPO run. A tabular policy (independent softmax
 * logits per prompt and position over the digits 0–9) learns to write 6 digits whose sum hits the
 * prompt's target. Everything the real trainer does is here on plain arrays: group sampling with
 * old-policy log-probabilities, verifiable rewards, group-relative advantages, the clipped loss
 * with KL to a frozen reference, the chain rule through log-softmax and Adam.
 */
import type { Command } from "commander";
import { Adam } from "../../core/adam.ts";
import { computeAdvantages, groupStats, type ScaleRewards } from "../../core/advantages.ts";
import { type LossType, policyLoss, type SequenceBatch } from "../../core/loss.ts";
import { METRICS } from "../../core/metrics.ts";
import { Rng } from "../../core/rng.ts";
import { createProgress } from "../progress.ts";

export const DEMO_VOCAB = 10;
export const DEMO_LENGTH = 6;
/** Far from the uniform policy's expected sum (27) on both sides, so the start is poor. */
export const DEMO_TARGETS = [6, 12, 42, 48] as const;
/** Distance at which the partial credit reaches 0. */
const MAX_DISTANCE = 24;

export interface DemoOptions {
  steps: number;
  groupSize: number;
  promptsPerStep: number;
  lr: number;
  seed: number;
  beta: number;
  lossType: LossType;
  scaleRewards: ScaleRewards;
  /** Gradient steps per sampled batch; after the first, ratios leave 1 and clipping matters. */
  innerSteps: number;
  epsLow: number;
  epsHigh: number;
  /** "sequence" uses GSPO's length-normalised sequence ratio. */
  importanceSampling: "token" | "sequence";
}

export const DEMO_DEFAULTS: DemoOptions = {
  steps: 60,
  groupSize: 8,
  promptsPerStep: 4,
  lr: 0.1,
  seed: 0,
  beta: 0.01,
  lossType: "grpo",
  scaleRewards: "group",
  innerSteps: 4,
  epsLow: 0.2,
  epsHigh: 0.2,
  importanceSampling: "token",
};

export interface DemoStepStats {
  step: number;
  reward: number;
  rewardStd: number;
  fracRewardZeroStd: number;
  kl: number;
  entropy: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  loss: number;
}

export interface DemoResult {
  history: DemoStepStats[];
  /** Mean reward of the first up-to-5 steps, and of the last up-to-5 steps. */
  initialReward: number;
  finalReward: number;
  /** Most likely digits per target after training. */
  greedy: { target: number; digits: number[]; reward: number }[];
}

/** Partial credit: 1 when the digits sum to the target, falling linearly with the distance. */
export function demoReward(digits: readonly number[], target: number): number {
  const sum = digits.reduce((a, b) => a + b, 0);
  return 1 - Math.min(Math.abs(sum - target), MAX_DISTANCE) / MAX_DISTANCE;
}

/** Log-softmax of one row of logits. */
function logSoftmax(z: readonly number[]): number[] {
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - max);
  const lse = max + Math.log(s);
  return z.map((v) => v - lse);
}

/** Logits are one flat array: [prompt][position][digit]. */
function rowOffset(prompt: number, pos: number): number {
  return (prompt * DEMO_LENGTH + pos) * DEMO_VOCAB;
}

function rowLogp(logits: readonly number[], prompt: number, pos: number): number[] {
  const o = rowOffset(prompt, pos);
  return logSoftmax(logits.slice(o, o + DEMO_VOCAB));
}

function validate(o: DemoOptions): void {
  const positiveInt: (keyof DemoOptions)[] = ["steps", "groupSize", "promptsPerStep", "innerSteps"];
  for (const k of positiveInt) {
    const v = o[k] as number;
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`--${kebab(k)}: expected an integer ≥ 1, got ${v}`);
  }
  if (!(o.lr > 0)) throw new RangeError(`--lr: expected a number > 0, got ${o.lr}`);
  if (!(o.beta >= 0)) throw new RangeError(`--beta: expected a number ≥ 0, got ${o.beta}`);
  if (!Number.isInteger(o.seed)) throw new RangeError(`--seed: expected an integer, got ${o.seed}`);
  if (!["grpo", "bnpo", "dr_grpo", "dapo"].includes(o.lossType)) {
    throw new RangeError(`--loss-type: expected grpo, bnpo, dr_grpo or dapo, got ${o.lossType}`);
  }
  if (!["group", "batch", "none"].includes(o.scaleRewards)) {
    throw new RangeError(`--scale-rewards: expected group, batch or none, got ${o.scaleRewards}`);
  }
  if (o.importanceSampling !== "token" && o.importanceSampling !== "sequence") {
    throw new RangeError(`--importance-sampling: expected token or sequence, got ${o.importanceSampling}`);
  }
  if (!(o.epsLow >= 0) || !(o.epsHigh >= 0))
    throw new RangeError("--eps-low/--eps-high: expected numbers ≥ 0");
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Trains the tabular policy; deterministic given `opts.seed`. `onStep` sees each step's metrics. */
export function trainDemo(
  options: Partial<DemoOptions> = {},
  onStep?: (s: DemoStepStats) => void,
): DemoResult {
  const o: DemoOptions = { ...DEMO_DEFAULTS, ...options };
  validate(o);
  const rng = new Rng(o.seed);
  const size = DEMO_TARGETS.length * DEMO_LENGTH * DEMO_VOCAB;
  // Uniform start; the reference is a frozen copy of it, so the KL term pulls towards uniform.
  const logits = new Array<number>(size).fill(0);
  const reference = [...logits];
  const adam = new Adam(size, { lr: o.lr });
  const history: DemoStepStats[] = [];

  for (let step = 1; step <= o.steps; step++) {
    const prompts: number[] = [];
    const tokens: number[][] = [];
    const oldLogp: number[][] = [];
    const rewardsByGroup: number[][] = [];
    for (let p = 0; p < o.promptsPerStep; p++) {
      const prompt = rng.int(DEMO_TARGETS.length);
      const rewards: number[] = [];
      for (let g = 0; g < o.groupSize; g++) {
        const digits: number[] = [];
        const lps: number[] = [];
        for (let pos = 0; pos < DEMO_LENGTH; pos++) {
          const lp = rowLogp(logits, prompt, pos);
          let u = rng.next();
          let d = 0;
          while (d < DEMO_VOCAB - 1 && u >= Math.exp(lp[d]!)) u -= Math.exp(lp[d++]!);
          digits.push(d);
          lps.push(lp[d]!);
        }
        prompts.push(prompt);
        tokens.push(digits);
        oldLogp.push(lps);
        rewards.push(demoReward(digits, DEMO_TARGETS[prompt]!));
      }
      rewardsByGroup.push(rewards);
    }
    const adv = computeAdvantages(rewardsByGroup, { scaleRewards: o.scaleRewards });
    const advantages = adv.advantages.flat();
    const mask = tokens.map((row) => row.map(() => 1));
    const refLogp = tokens.map((row, i) => row.map((d, pos) => rowLogp(reference, prompts[i]!, pos)[d]!));

    let kl = 0;
    let entropy = 0;
    let clipLow = 0;
    let clipHigh = 0;
    let loss = 0;
    for (let k = 0; k < o.innerSteps; k++) {
      const rows = tokens.map((row, i) => row.map((_, pos) => rowLogp(logits, prompts[i]!, pos)));
      const batch: SequenceBatch = {
        logp: tokens.map((row, i) => row.map((d, pos) => rows[i]![pos]![d]!)),
        oldLogp,
        refLogp,
        entropy: rows.map((r) => r.map((lp) => -lp.reduce((s, l) => s + Math.exp(l) * l, 0))),
        advantages,
        mask,
      };
      const res = policyLoss(batch, {
        beta: o.beta,
        lossType: o.lossType,
        epsLow: o.epsLow,
        epsHigh: o.epsHigh,
        importanceSampling: o.importanceSampling,
        maxCompletionLength: DEMO_LENGTH,
      });
      // Chain rule through log-softmax: d logp[a] / d z[j] = [j = a] − softmax(z)[j].
      const grad = new Array<number>(size).fill(0);
      tokens.forEach((row, i) => {
        row.forEach((d, pos) => {
          const g = res.gradLogp[i]![pos]!;
          if (g === 0) return;
          const o0 = rowOffset(prompts[i]!, pos);
          const lp = rows[i]![pos]!;
          for (let j = 0; j < DEMO_VOCAB; j++) grad[o0 + j] = grad[o0 + j]! - g * Math.exp(lp[j]!);
          grad[o0 + d] = grad[o0 + d]! + g;
        });
      });
      adam.step(logits, grad);
      kl += res.kl / o.innerSteps;
      entropy += res.entropy / o.innerSteps;
      clipLow += res.clipRatioLow / o.innerSteps;
      clipHigh += res.clipRatioHigh / o.innerSteps;
      loss += res.loss / o.innerSteps;
    }
    const stats: DemoStepStats = {
      step,
      reward: groupStats(rewardsByGroup.flat()).mean,
      rewardStd: groupStats(adv.groupStd).mean,
      fracRewardZeroStd: adv.fracRewardZeroStd,
      kl,
      entropy,
      clipRatioLow: clipLow,
      clipRatioHigh: clipHigh,
      loss,
    };
    history.push(stats);
    onStep?.(stats);
  }

  const window = Math.min(5, history.length);
  const meanReward = (xs: DemoStepStats[]) => xs.reduce((s, x) => s + x.reward, 0) / xs.length;
  const greedy = DEMO_TARGETS.map((target, prompt) => {
    const digits = Array.from({ length: DEMO_LENGTH }, (_, pos) => {
      const lp = rowLogp(logits, prompt, pos);
      return lp.indexOf(Math.max(...lp));
    });
    return { target, digits, reward: demoReward(digits, target) };
  });
  return {
    history,
    initialReward: meanReward(history.slice(0, window)),
    finalReward: meanReward(history.slice(-window)),
    greedy,
  };
}

function parseNumber(name: string, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new RangeError(`${name}: expected ${integer ? "an integer" : "a number"}, got "${value}"`);
    }
    return n;
  };
}

export function register(program: Command): void {
  const d = DEMO_DEFAULTS;
  program
    .command("demo")
    .description(
      `Smallest end-to-end GRPO run (no model, no key, a few seconds): a tabular policy learns to write ` +
        `${DEMO_LENGTH} digits whose sum hits a target (${DEMO_TARGETS.join(", ")}), rewarded by distance.`,
    )
    .option("--steps <n>", "training steps", parseNumber("--steps", true), d.steps)
    .option("--group-size <n>", "completions per prompt (G)", parseNumber("--group-size", true), d.groupSize)
    .option(
      "--prompts-per-step <n>",
      "prompts (targets) per step",
      parseNumber("--prompts-per-step", true),
      d.promptsPerStep,
    )
    .option("--lr <x>", "Adam learning rate", parseNumber("--lr", false), d.lr)
    .option("--seed <n>", "random seed (same seed, same run)", parseNumber("--seed", true), d.seed)
    .option(
      "--beta <x>",
      "KL weight towards the initial (uniform) policy",
      parseNumber("--beta", false),
      d.beta,
    )
    .option("--loss-type <t>", "grpo | bnpo | dr_grpo | dapo", d.lossType)
    .option("--scale-rewards <s>", "group | batch | none", d.scaleRewards)
    .option(
      "--inner-steps <n>",
      "gradient steps per sampled batch",
      parseNumber("--inner-steps", true),
      d.innerSteps,
    )
    .option("--eps-low <x>", "lower clip range", parseNumber("--eps-low", false), d.epsLow)
    .option(
      "--eps-high <x>",
      "upper clip range (DAPO clip-higher: 0.28)",
      parseNumber("--eps-high", false),
      d.epsHigh,
    )
    .option("--importance-sampling <s>", "token | sequence (GSPO)", d.importanceSampling)
    .addHelpText(
      "after",
      "\nExample:\n  grpo demo --steps 80 --group-size 16 --loss-type dr_grpo --scale-rewards none --seed 7\n\n" +
        "Prints reward, reward_std, kl and clip ratios per step, then the mean reward of the first\n" +
        "and last 5 steps and the most likely digits for each target.",
    )
    .action((opts: Partial<DemoOptions>) => {
      const steps = opts.steps ?? d.steps;
      const progress = createProgress({ label: "demo", total: steps });
      let result: DemoResult;
      try {
        result = trainDemo(opts, (s) =>
          progress.tick(1, {
            [METRICS.reward]: s.reward,
            [METRICS.rewardStd]: s.rewardStd,
            [METRICS.kl]: s.kl,
            [METRICS.clipRatioLowMean]: s.clipRatioLow,
            [METRICS.clipRatioHighMean]: s.clipRatioHigh,
          }),
        );
      } finally {
        progress.stop();
      }
      for (const g of result.greedy) {
        const sum = g.digits.reduce((a, b) => a + b, 0);
        console.log(`target ${g.target}: ${g.digits.join(" ")} (sum ${sum}, reward ${g.reward.toFixed(2)})`);
      }
      console.log(`reward: ${result.initialReward.toFixed(2)} -> ${result.finalReward.toFixed(2)}`);
    });
}
