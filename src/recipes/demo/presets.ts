/** What `grpo demo` can set, and the defaults under which it learns in about a second. */

import type { ScaleRewards } from "../../core/advantages.ts";
import type { LossType } from "../../core/loss.ts";

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
