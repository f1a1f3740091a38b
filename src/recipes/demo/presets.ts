/** What `grpo demo` can set, and the preset under which it learns in about a second. */
import { GRPO_DEFAULTS, type GrpoConfig, pickGrpo } from "../../core/config.ts";

/** The GrpoConfig knobs the tabular demo uses (its loss is core's policyLoss). */
export const DEMO_GRPO_KEYS = [
  "maxSteps",
  "numGenerations",
  "learningRate",
  "seed",
  "beta",
  "klEstimator",
  "entropyCoef",
  "lossType",
  "scaleRewards",
  "numIterations",
  "epsilon",
  "epsilonHigh",
  "importanceSamplingLevel",
] as const satisfies readonly (keyof GrpoConfig)[];

export interface DemoOptions extends Pick<GrpoConfig, (typeof DEMO_GRPO_KEYS)[number]> {
  /** Prompts (targets) per step; each gets its own group of numGenerations samples. */
  promptsPerStep: number;
}

export const DEMO_PRESET: Readonly<DemoOptions> = Object.freeze({
  ...pickGrpo(GRPO_DEFAULTS, DEMO_GRPO_KEYS),
  // A table of logits learns with steps far larger than a network's, in a few dozen steps.
  maxSteps: 60,
  learningRate: 0.1,
  seed: 0,
  // Some pull towards the uniform start keeps the table from saturating within the run.
  beta: 0.01,
  // Passes after the first move ratios off 1, so the clip range is exercised.
  numIterations: 4,
  promptsPerStep: 4,
});
