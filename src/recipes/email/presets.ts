/**
 * What `grpo train email` and `grpo agent` need before anything runs: the modes, sizes and
 * defaults. Kept apart from the recipe so that registering the commands loads no tensors.
 */

import { GRPO_DEFAULTS, type GrpoConfig, grpoKeysExcept, pickGrpo } from "../../core/config.ts";
import type { GPTConfig } from "../../model/gpt.ts";
import type { EmailTrainingConfig } from "./config.ts";
import type { InboxOptions } from "./inbox.ts";

export type EmailMode = "masked" | "rollout" | "simple";
export const EMAIL_MODES: readonly EmailMode[] = ["masked", "rollout", "simple"];

/**
 * Small inboxes keep episodes short enough for a tiny model's context; one fact per inbox keeps
 * the distractors to the ones that share its keywords, so that copying the answer is learnable.
 */
export const EMAIL_INBOX: InboxOptions = { projects: 1, factsPerProject: 1, fillerEmails: 0 };
/** The demonstrations' search limit: a few hits hold the source, more only lengthen the context. */
export const EMAIL_MAX_RESULTS = 3;
export const EMAIL_MODEL: Pick<GPTConfig, "dModel" | "nLayers" | "nHeads" | "contextLength"> = {
  // Copying the answer out of an email needs attention heads wide enough to find it by content.
  dModel: 128,
  nLayers: 2,
  nHeads: 4,
  // The longest demonstration is about 350 tokens (see tokenizer.ts).
  contextLength: 384,
};

/**
 * The GrpoConfig knobs `grpo train email` sets beyond its environment variables (which set
 * maxSteps, learningRate, numGenerations and beta; MAX_TOKENS is the completion length).
 */
export const EMAIL_GRPO_KEYS = grpoKeysExcept(
  "maxSteps",
  "learningRate",
  "numGenerations",
  "beta",
  "maxCompletionLength",
);

/** Everything `grpo train email` can set: the environment-variable settings, GrpoConfig's others, the recipe's own. */
export interface EmailRunOptions
  extends EmailTrainingConfig,
    Pick<GrpoConfig, (typeof EMAIL_GRPO_KEYS)[number]> {
  mode: EmailMode;
  /** supervised warm-start steps on noisy scripted demonstrations (0: none). */
  sftSteps: number;
  /** the demonstrations' noise (wrong searches, distractor reads, wrong answers). */
  sftNoise: number;
  /** demonstration questions, from inboxes of their own (0: one per training question). */
  sftDemos: number;
  /** start from this warm-started base checkpoint instead of running the warm start. */
  baseModel?: string;
  evalEvery: number;
  saveEvery: number;
  /** stop once held-out accuracy reaches it. */
  targetAccuracy?: number;
  /** 0 = greedy: the agent's accuracy as it would be used. */
  evalTemperature: number;
  maxTurnTokens: number;
  loraRank: number;
  /** weight of the answer_parts shaping term (reward.ts; 0: the environment's reward alone). */
  answerPartsWeight: number;
  resume: boolean;
}

/**
 * The one set of defaults of the environment-variable settings, sized for a two-core CPU: a small
 * word-and-character model, a thousand warm-start steps (about 5 minutes) and 360 GRPO steps
 * (about 3). OUTPUT_DIR defaults to outputs/grpo_<mode>.
 */
export function emailDefaults(mode: EmailMode): EmailTrainingConfig {
  return {
    trainDatasetSize: 1000,
    // At least 100, so that one question is at most a point of accuracy.
    evalDatasetSize: 100,
    // Held-out accuracy was still rising at 200 steps (0.74 → 0.79) and reached 0.86 at 360.
    maxSteps: 360,
    learningRate: 1e-3,
    perDeviceTrainBatchSize: 2,
    numGenerations: 4,
    // DeepSeekMath's KL weight: the adapters stay near the warm-started model.
    beta: 0.04,
    maxTurns: 6,
    maxTokens: 120,
    outputDir: `outputs/grpo_${mode}`,
  };
}

/** The defaults of everything else: GrpoConfig's for its knobs, the recipe's for its own. */
export const EMAIL_RECIPE_DEFAULTS = {
  ...pickGrpo(GRPO_DEFAULTS, EMAIL_GRPO_KEYS),
  sftSteps: 1000,
  sftNoise: 0.1,
  sftDemos: 0,
  evalEvery: 20,
  saveEvery: 50,
  evalTemperature: 0,
  maxTurnTokens: 40,
  loraRank: 8,
  answerPartsWeight: 0,
} as const;

export const BASE_MODEL_DIR = "base_model";

/** The inbox settings a run used, for `grpo agent` to build inboxes of the same kind. */
export const RUN_INFO_INBOX = "inbox";

/** The help's `grpo agent` example: a question of the inbox that --seed 7 draws with EMAIL_INBOX (a test checks it). */
export const AGENT_EXAMPLE = { seed: 7, question: "When is the Lumen design review?" } as const;
