/**
 * `grpo demo`: the smallest end-to-end parametric GRPO run. A tabular policy (independent softmax
 * logits per prompt and position over the digits 0–9) learns to write 6 digits whose sum hits the
 * prompt's target. Everything the real trainer does is here on plain arrays: group sampling with
 * old-policy log-probabilities, verifiable rewards, group-relative advantages, the clipped loss
 * with KL to a frozen reference, the chain rule through log-softmax and Adam.
 */
import { Adam } from "../../core/adam.ts";
import { computeAdvantages, groupStats } from "../../core/advantages.ts";
import {
  epsilonHighOf,
  IMPORTANCE_SAMPLING_LEVELS,
  KL_ESTIMATORS,
  LOSS_TYPES,
  SCALE_REWARDS,
} from "../../core/config.ts";
import { policyLoss, type SequenceBatch } from "../../core/loss.ts";
import { Rng } from "../../core/rng.ts";
import { DEMO_PRESET, type DemoOptions } from "./presets.ts";
import { DEMO_LENGTH, DEMO_TARGETS, DEMO_VOCAB, demoReward } from "./task.ts";

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
  const positiveInt = ["maxSteps", "numGenerations", "promptsPerStep", "numIterations"] as const;
  for (const k of positiveInt) {
    const v = o[k];
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`--${kebab(k)}: expected an integer ≥ 1, got ${v}`);
  }
  if (!(o.learningRate > 0))
    throw new RangeError(`--learning-rate: expected a number > 0, got ${o.learningRate}`);
  if (!(o.beta >= 0)) throw new RangeError(`--beta: expected a number ≥ 0, got ${o.beta}`);
  if (!Number.isInteger(o.seed)) throw new RangeError(`--seed: expected an integer, got ${o.seed}`);
  const oneOf = (flag: string, value: string, choices: readonly string[]) => {
    if (!choices.includes(value))
      throw new RangeError(`--${flag}: expected ${choices.join(", ")}, got ${value}`);
  };
  oneOf("loss-type", o.lossType, LOSS_TYPES);
  oneOf("scale-rewards", o.scaleRewards, SCALE_REWARDS);
  oneOf("importance-sampling-level", o.importanceSamplingLevel, IMPORTANCE_SAMPLING_LEVELS);
  oneOf("kl-estimator", o.klEstimator, KL_ESTIMATORS);
  if (!(o.epsilon >= 0) || !(epsilonHighOf(o) >= 0))
    throw new RangeError("--epsilon/--epsilon-high: expected numbers ≥ 0");
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Trains the tabular policy; deterministic given `opts.seed`. `onStep` sees each step's metrics. */
export function trainDemo(
  options: Partial<DemoOptions> = {},
  onStep?: (s: DemoStepStats) => void,
): DemoResult {
  const o: DemoOptions = { ...DEMO_PRESET, ...options };
  validate(o);
  const rng = new Rng(o.seed);
  const size = DEMO_TARGETS.length * DEMO_LENGTH * DEMO_VOCAB;
  // Uniform start; the reference is a frozen copy of it, so the KL term pulls towards uniform.
  const logits = new Array<number>(size).fill(0);
  const reference = [...logits];
  const adam = new Adam(size, { lr: o.learningRate });
  const history: DemoStepStats[] = [];

  for (let step = 1; step <= o.maxSteps; step++) {
    const prompts: number[] = [];
    const tokens: number[][] = [];
    const oldLogp: number[][] = [];
    const rewardsByGroup: number[][] = [];
    for (let p = 0; p < o.promptsPerStep; p++) {
      const prompt = rng.int(DEMO_TARGETS.length);
      const rewards: number[] = [];
      for (let g = 0; g < o.numGenerations; g++) {
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
    for (let k = 0; k < o.numIterations; k++) {
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
        klEstimator: o.klEstimator,
        entropyCoef: o.entropyCoef,
        lossType: o.lossType,
        epsilon: o.epsilon,
        epsilonHigh: o.epsilonHigh,
        importanceSamplingLevel: o.importanceSamplingLevel,
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
      kl += res.kl / o.numIterations;
      entropy += res.entropy / o.numIterations;
      clipLow += res.clipRatioLow / o.numIterations;
      clipHigh += res.clipRatioHigh / o.numIterations;
      loss += res.loss / o.numIterations;
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
