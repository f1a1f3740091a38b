/**
 * GrpoConfig: every knob of parametric GRPO under one name, with its one default. The names are
 * those of TRL's GRPOConfig (and of the TrainingArguments it extends) in camelCase, so a TRL
 * configuration reads across; the CLI spells them in TRL's kebab case (--num-generations). The
 * trainer, the loss functions, the demo and the recipes read their defaults from GRPO_DEFAULTS;
 * a recipe that needs other values names them in its own presets.
 *
 * Papers: GRPO — DeepSeekMath (arXiv 2402.03300); PPO (1707.06347); DAPO (2503.14476);
 * Dr. GRPO — "Understanding R1-Zero-Like Training" (2503.20783); GSPO (2507.18071); batch-level
 * reward scaling — "Tricks or Traps? A Deep Dive into RL for LLM Reasoning" (2508.08221); KL
 * estimators k1/k2/k3 — J. Schulman, "Approximating KL Divergence" (2020); CISPO — MiniMax-M1
 * (2506.13585).
 */

/**
 * How the token losses of a batch become one number (see core/loss.ts aggregationWeights); `cispo`
 * also changes the per-token objective (clipped importance weight times A·log π, MiniMax-M1) and
 * aggregates as dapo does.
 */
export const LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo", "cispo"] as const;
export type LossType = (typeof LOSS_TYPES)[number];
export const KL_ESTIMATORS = ["k1", "k2", "k3"] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];
/** What a reward's deviation from its group mean is divided by (see core/advantages.ts). */
export const SCALE_REWARDS = ["group", "batch", "none"] as const;
export type ScaleRewards = (typeof SCALE_REWARDS)[number];
export const IMPORTANCE_SAMPLING_LEVELS = ["token", "sequence"] as const;
export type ImportanceSamplingLevel = (typeof IMPORTANCE_SAMPLING_LEVELS)[number];
/** How the learning rate moves over a run (transformers' lr_scheduler_type, without warm-up). */
export const LR_SCHEDULER_TYPES = ["constant", "linear", "cosine"] as const;
export type LrSchedulerType = (typeof LR_SCHEDULER_TYPES)[number];

/** LoRA adapters, with the names of PEFT's LoraConfig (r, lora_alpha, lora_dropout, target_modules). */
export interface LoraSettings {
  /** rank of A·B. PEFT: 8. */
  r: number;
  /** the adapter's output is scaled by loraAlpha / r. PEFT: 8. */
  loraAlpha: number;
  /** dropout on the adapter's input while training. PEFT: 0. */
  loraDropout: number;
  /** module names, matched as PEFT matches them (q_proj, v_proj, …; GPT-2: c_attn, c_proj, c_fc). */
  targetModules: string[];
}

export interface GrpoConfig {
  // Sampling
  /** G, completions per prompt: the group whose mean is the baseline (GRPO). TRL: 8. */
  numGenerations: number;
  /** Tokens a completion may generate; also dr_grpo's fixed normaliser (Dr. GRPO). TRL: 256. */
  maxCompletionLength: number;
  /** Sampling temperature: exploration within a group. TRL: 1. */
  temperature: number;
  /** Nucleus sampling: keep the most likely tokens up to this mass; 1 keeps all. TRL: 1. */
  topP: number;
  /** Keep only the k most likely tokens; 0 keeps all. TRL: 0. */
  topK: number;

  // Optimisation
  /**
   * Adam's step size. TRL: 1e-6, for pretrained models of billions of parameters; the small
   * in-process models trained here from scratch or from a short warm start need far larger steps.
   */
  learningRate: number;
  /**
   * constant, or decayed to 0 at maxSteps along a line or a half cosine. TRL (TrainingArguments):
   * "linear"; here "constant", the rule the recipes were tuned with.
   */
  lrSchedulerType: LrSchedulerType;
  /** Global gradient-norm clip; ≤ 0 disables it. TRL (TrainingArguments): 1. */
  maxGradNorm: number;
  /** GRPO steps of a run. TRL: −1 (count epochs instead); here a run is counted in steps. */
  maxSteps: number;
  /** μ, optimisation passes over each sampled batch; above 1 the clip starts to bind (GRPO). TRL: 1. */
  numIterations: number;
  /** Seed of the one random stream of a run. TRL (TrainingArguments): 42. */
  seed: number;

  // Loss
  /**
   * β, weight of the KL penalty to the frozen reference; 0 skips the reference. TRL: 0 (DAPO and
   * Dr. GRPO drop the term); DeepSeekMath used 0.04.
   */
  beta: number;
  /** Which estimator of KL(π_θ‖π_ref) per token; k3 is unbiased and ≥ 0 (Schulman). TRL: always k3. */
  klEstimator: KlEstimator;
  /** ε, the clip range of the importance ratio below 1 (PPO). TRL: 0.2. */
  epsilon: number;
  /**
   * The clip range above 1; unset: epsilon. DAPO's clip-higher uses 0.28. TRL: unset. Under
   * `cispo` the importance weight is capped at 1 + epsilonHigh (MiniMax-M1's 1 + ε_high^IS); TRL's
   * epsilon_high is the cap itself there (ScaleRL's ε_max, recommended 5.0, i.e. epsilonHigh 4).
   */
  epsilonHigh?: number;
  /** α, weight of the entropy bonus −α·H: keeps the policy exploring rather than collapsing onto one answer (PPO). TRL: none. */
  entropyCoef: number;
  /**
   * Aggregation of the token losses: grpo (mean of per-sequence means, DeepSeekMath), bnpo,
   * dr_grpo (Dr. GRPO) or dapo (DAPO); or cispo (MiniMax-M1: −sg(min(ρ, 1+ε_high))·A·log π per
   * token, aggregated as dapo). TRL: "dapo"; here "grpo", the rule the recipes were tuned with.
   */
  lossType: LossType;
  /** "token": one ratio per token; "sequence": GSPO's length-normalised sequence ratio. TRL: "token". */
  importanceSamplingLevel: ImportanceSamplingLevel;
  /** "group" (GRPO), "batch" (Tricks or Traps) or "none" (Dr. GRPO: no difficulty bias). TRL: "group". */
  scaleRewards: ScaleRewards;
  /** Leave completions cut by the length limit out of the loss (DAPO's overlong filtering). TRL: false. */
  maskTruncatedCompletions: boolean;
  /** Drop the groups whose rewards are all equal from the update (DAPO's dynamic sampling). TRL: none. */
  dynamicSampling: boolean;

  // The run, as GRPOTrainer (src/rl/grpo-trainer.ts) reads it; the recipes' own trainer counts
  // prompts per step and says evalEvery/saveEvery (src/rl/trainer.ts TrainerConfig) instead.
  /**
   * Completions per step, TRL's per_device_train_batch_size on one device with no gradient
   * accumulation: a step samples perDeviceTrainBatchSize / numGenerations prompts (it must
   * divide). TRL: 8.
   */
  perDeviceTrainBatchSize: number;
  /** One weight per reward function, in their order; unset: 1 each. TRL: None (1 each). */
  rewardWeights?: number[];
  /** Train LoRA adapters over the frozen base; null trains every weight. TRL: none (its peft_config argument). */
  lora: LoraSettings | null;
  /** Report the mean of the metrics every N steps. TRL: 10. */
  loggingSteps: number;
  /** Write checkpoint-N every N steps; 0: never. TRL: 500. */
  saveSteps: number;
  /** Evaluate on the eval dataset every N steps; unset: loggingSteps. TRL: None (then logging_steps). */
  evalSteps?: number;
  /** Completions per eval prompt; unset: numGenerations. TRL: None (then num_generations). */
  numGenerationsEval?: number;
  /** Visit the training rows in a new random order each epoch (else in file order). TRL: true. */
  shuffleDataset: boolean;
  /** More variables for the chat template (e.g. enable_thinking for Qwen3). TRL: None. */
  chatTemplateKwargs?: Record<string, unknown>;
}

export const GRPO_DEFAULTS: Readonly<GrpoConfig> = Object.freeze({
  numGenerations: 8,
  maxCompletionLength: 256,
  temperature: 1,
  topP: 1,
  topK: 0,
  learningRate: 1e-4,
  lrSchedulerType: "constant",
  maxGradNorm: 1,
  maxSteps: 100,
  numIterations: 1,
  seed: 42,
  beta: 0,
  klEstimator: "k3",
  epsilon: 0.2,
  entropyCoef: 0,
  lossType: "grpo",
  importanceSamplingLevel: "token",
  scaleRewards: "group",
  maskTruncatedCompletions: false,
  dynamicSampling: false,
  perDeviceTrainBatchSize: 8,
  lora: null,
  loggingSteps: 10,
  saveSteps: 500,
  shuffleDataset: true,
});

// Every field once: "flag" for the knobs every parametric recipe's command takes (in the order
// the CLI lists them), "run" for those only GRPOTrainer reads. The type makes the list complete.
const FIELDS = {
  maxSteps: "flag",
  numGenerations: "flag",
  maxCompletionLength: "flag",
  learningRate: "flag",
  lrSchedulerType: "flag",
  temperature: "flag",
  topP: "flag",
  topK: "flag",
  beta: "flag",
  klEstimator: "flag",
  epsilon: "flag",
  epsilonHigh: "flag",
  entropyCoef: "flag",
  lossType: "flag",
  importanceSamplingLevel: "flag",
  scaleRewards: "flag",
  maskTruncatedCompletions: "flag",
  dynamicSampling: "flag",
  numIterations: "flag",
  maxGradNorm: "flag",
  seed: "flag",
  perDeviceTrainBatchSize: "run",
  rewardWeights: "run",
  lora: "run",
  loggingSteps: "run",
  saveSteps: "run",
  evalSteps: "run",
  numGenerationsEval: "run",
  shuffleDataset: "run",
  chatTemplateKwargs: "run",
} as const satisfies Record<keyof GrpoConfig, "flag" | "run">;

/** The GrpoConfig fields a recipe's command offers as flags (the loss, sampling and optimiser knobs). */
export type GrpoFlagKey = {
  [K in keyof GrpoConfig]-?: (typeof FIELDS)[K] extends "flag" ? K : never;
}[keyof GrpoConfig];

/** GrpoConfig's flag fields but `except` (those a recipe fixes itself or reads elsewhere). */
export function grpoKeysExcept<E extends GrpoFlagKey>(...except: E[]): Exclude<GrpoFlagKey, E>[] {
  return (Object.keys(FIELDS) as (keyof GrpoConfig)[]).filter(
    (k): k is Exclude<GrpoFlagKey, E> => FIELDS[k] === "flag" && !except.includes(k as E),
  );
}

/**
 * The learning rate of the update that follows `step` completed steps: transformers' schedules
 * without warm-up (linear: lr·(1 − step/maxSteps); cosine: lr·½(1 + cos(π·step/maxSteps))), 0
 * from maxSteps on.
 */
export function learningRateAt(
  cfg: Pick<GrpoConfig, "learningRate" | "lrSchedulerType" | "maxSteps">,
  step: number,
): number {
  if (cfg.lrSchedulerType === "constant") return cfg.learningRate;
  const progress = Math.min(Math.max(step / cfg.maxSteps, 0), 1);
  const factor = cfg.lrSchedulerType === "linear" ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return cfg.learningRate * factor;
}

/** The upper clip range a config means: epsilonHigh, or epsilon when it is unset (as in TRL). */
export function epsilonHighOf(cfg: Pick<GrpoConfig, "epsilon" | "epsilonHigh">): number {
  return cfg.epsilonHigh ?? cfg.epsilon;
}

/** The fields `keys` of `from` that have a value (a config's GrpoConfig part, say). */
export function pickGrpo<K extends keyof GrpoConfig>(
  from: { readonly [P in K]?: GrpoConfig[P] },
  keys: readonly K[],
): Pick<GrpoConfig, K> {
  const out: Partial<Record<K, unknown>> = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out as Pick<GrpoConfig, K>;
}
