import type * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import type { SampleOptions, SampleResult, TokenConstraint } from "../model/sampler.ts";

// The sampler's contract is the trainer's too: one definition, re-exported for rl callers.
export type { SampleOptions, SampleResult, TokenConstraint };

/**
 * What the trainer needs from a policy. Every CausalLM of `src/model` satisfies it; tests use
 * smaller models with the same shape so that the trainer is checked on its own.
 */
export interface PolicyModel {
  /** log π(ids[:, t+1] | ids[:, ≤t]) for t = 0..T-2 → [B, T-1], optionally the entropy per position. */
  tokenLogprobs(
    ids: tf.Tensor2D,
    opts?: { withEntropy?: boolean },
  ): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D };
  /** In a fixed order: the optimizer state is matched to variables by position. */
  trainableVariables(): tf.Variable[];
  namedWeights(): Record<string, tf.Tensor>;
  loadNamedWeights(w: Record<string, tf.Tensor>): void;
  clone(): PolicyModel;
  dispose(): void;
}

export type SampleFn<P extends PolicyModel = PolicyModel> = (
  model: P,
  prompts: number[][],
  opts: SampleOptions,
) => SampleResult;

export interface RewardResult {
  total: number;
  /** the task's notion of a solved episode; drives the success rate and the curriculum. */
  success: boolean;
  /**
   * The named reward functions behind `total`, each unweighted (core's composeRewards gives
   * both). The trainer logs each as `rewards/<name>/mean` and `/std`, so a shaping or
   * exploration term shows apart from the reward it is added to.
   */
  components?: Readonly<Record<string, number>>;
}

/** What the trainer asks of a task that runs its own episodes (see RlTask.rollouts). */
export interface EpisodeRequest {
  /** "train": draw `count` items with `rng`; "eval": every held-out item. */
  split: "train" | "eval";
  count: number;
  /** rollouts per item; they form one advantage group. */
  numGenerations: number;
  temperature: number;
  /** nucleus and top-k truncation of the sampler; unset: none. */
  topP?: number;
  topK?: number;
  rng: Rng;
  phase: number;
}

/** A task as the parametric trainer sees it: prompts, a constraint and a reward. */
export interface RlTask {
  readonly name: string;
  readonly eosId: number;
  readonly constraint?: TokenConstraint;
  /** the training prompts drawn for one step (all of one length, they share a batch). */
  trainPrompts(rng: Rng, n: number): number[][];
  /** fixed held-out prompts for evaluation. */
  evalPrompts(): number[][];
  /** `tokens` are the generated ids, without the prompt, eos included when it was produced. */
  reward(tokens: number[], phase: number): RewardResult;
  /** full token sequences (prompt + completion + eos) for the supervised warm start. */
  demonstrations?(rng: Rng, n: number): number[][];
  /** a completion as text, for the sample table of the run report (samples.jsonl). */
  describe?(tokens: number[]): string;
  /**
   * For tasks whose completions are whole episodes (tool calls interleaved with tool results):
   * the task samples and scores them itself, `numGenerations` per item, item k's rollouts carrying
   * group k. When present the trainer uses it instead of trainPrompts/evalPrompts + reward.
   */
  rollouts?(policy: CausalLM, request: EpisodeRequest): Rollout[];
  /**
   * Scores one training step's completions together, for a reward that depends on the others
   * (how often the group, or the run so far, produced the same answer). `groups[i]` is the group
   * of completion i; `step` counts the steps taken before this one. Default: `reward` on each.
   * Evaluation always uses `reward`.
   */
  rewardBatch?(completions: readonly number[][], ctx: BatchContext): RewardResult[];
  /**
   * Figures of one evaluation beyond the success rate and mean reward, from all its completions
   * (how many distinct answers, say); history.jsonl logs each as `eval_<name>`.
   */
  evalMetrics?(
    completions: readonly number[][],
    ctx: { phase: number; step: number },
  ): Record<string, number>;
  /**
   * Completions from the task's own archive, with their rewards, to add to every training group
   * beside the sampled ones: earlier rare successes, say, so that one lucky sample is learnt from
   * again rather than forgotten. They count in the group's advantages and in the update, but not
   * in the step's reward and success figures: the policy did not write them this step.
   */
  archiveSamples?(
    rng: Rng,
    ctx: { phase: number; step: number },
  ): { tokens: number[]; reward: RewardResult }[];
  /** What the task keeps from step to step; see TaskMemory. */
  readonly memory?: TaskMemory;
  /**
   * The phase evaluations score in, whatever phase the curriculum has reached: the task's real
   * goal, so that success rates stay comparable over a run. Default: the current phase.
   */
  readonly evalPhase?: number;
  /** the number of curriculum phases; 1 when the task has none. */
  readonly phases?: number;
  /** what the logs call the success rate at evaluation ("accuracy", "success"); default "accuracy". */
  readonly successLabel?: string;
}

export interface BatchContext {
  phase: number;
  step: number;
  groups: readonly number[];
}

/**
 * State a task accumulates over a run (an archive of the answers found so far): saved in every
 * checkpoint and restored on resume, so that a resumed run counts on as an uninterrupted one,
 * and written to `<outputDir>/<file>` after every evaluation and at the end, for reports.
 */
export interface TaskMemory {
  /** file name beside history.jsonl; none: the state lives in checkpoints only. */
  readonly file?: string;
  /** a JSON value. */
  save(): unknown;
  /** restores what `save` returned; `source` names where it came from, for error messages. */
  load(state: unknown, source: string): void;
}

/** One sampled completion with what the trainer needs to learn from it. */
export interface Rollout {
  /** which prompt group the completion belongs to. */
  group: number;
  prompt: number[];
  /** generated ids, without the prompt. */
  tokens: number[];
  /** false when the completion hit the length limit before eos. */
  finished: boolean;
  /** per generated token, 0 for tokens written by the environment (tool output): context, never trained. */
  toolMask?: number[];
  reward: number;
  success: boolean;
  /** RewardResult.components of this completion. */
  rewardComponents?: Readonly<Record<string, number>>;
}

/** One GRPO batch in plain arrays: every row is prompt (length promptLength) + completion. */
export interface GrpoBatch {
  /** [B, promptLength + completionLength], padded after the completion (pad id irrelevant: masked). */
  ids: number[][];
  promptLength: number;
  /** [B, completionLength]: completion × tool × truncation mask. */
  mask: number[][];
  /** one advantage per row. */
  advantages: number[];
}
