/**
 * The public shapes of training-free GRPO: what the user's agent and verifier receive and
 * return, the events of a run and its results.
 */
import type { Experience } from "./experience-library.ts";

/** The lessons an attempt is to use: as prompt text and as entries. */
export interface ExperiencesView {
  /** One `[id] lesson` per line; the empty string when there are none (or in the "without" arm). */
  text: string;
  entries: readonly Experience[];
}

export interface RolloutContext {
  experiences: ExperiencesView;
  /** The attempt's index in its group, 0 … groupSize − 1 (k − 1 in an evaluation). */
  index: number;
  groupSize: number;
  /** Derived from the run's seed, the task and the index: pass it on as the request's `seed`. */
  seed: number;
  /** Aborted when the run stops (a fatal endpoint error, too many failures, the caller's signal). */
  signal: AbortSignal;
  /** 1-based learning epoch; 0 in an evaluation. */
  epoch: number;
  mode: "train" | "eval";
}

/**
 * Token counts as an attempt reports them. The project's shape, OpenAI's (`prompt_tokens`,
 * `completion_tokens`) and the AI SDK's (`inputTokens`, `outputTokens`) are all accepted.
 */
export type UsageLike =
  | { promptTokens?: number; completionTokens?: number; calls?: number; costUSD?: number }
  | { prompt_tokens?: number; completion_tokens?: number }
  | { inputTokens?: number; outputTokens?: number };

/** What one run of the user's agent produced. */
export interface Attempt<O> {
  output: O;
  /**
   * What the learner reads of the attempt: tool calls, intermediate steps, the final answer.
   * The output itself (as text) when absent.
   */
  trajectory?: string;
  usage?: UsageLike;
}

/** A verifier's verdict: a score, or a score with correctness and anything worth keeping. */
export type RewardValue = number | { score: number; correct?: boolean; details?: unknown };

export type RolloutFn<T, O> = (task: T, ctx: RolloutContext) => Promise<Attempt<O>>;
/** `ctx` is the attempt's own context: an LLM judge passes `ctx.signal` on, so that a stop aborts it. */
export type RewardFn<T, O> = (
  task: T,
  attempt: Attempt<O>,
  ctx: RolloutContext,
) => RewardValue | Promise<RewardValue>;

/** The usage of one attempt or learner call, in one shape, as the records keep it. */
export interface TokenUsage {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** Absent when the call had no price. */
  costUSD?: number;
}

/** Token usage and money, summed. */
export interface CostTotals {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  /** 0 where nothing was priced; see `priced`. */
  costUSD: number;
  /** Whether any of the counted calls had a price. */
  priced: boolean;
}

export type FailureStage = "rollout" | "reward" | "learner";

export interface FailureRecord {
  stage: FailureStage;
  /** "train", or the evaluation arm. */
  scope: string;
  epoch: number;
  task: string;
  /** The attempt's index (rollout and reward failures). */
  index?: number;
  /** The learner's step (summarise, contrast, propose, merge, extract). */
  step?: string;
  error: string;
  /**
   * Its kind, to count failures by: the client's error kind ("rate_limit", "auth", …) of the error
   * or of an error it wraps (`{ cause }`), "HTTP 500", "reward threw".
   */
  cause: string;
  /** A failure that makes every further call pointless (a rejected key, an unknown model). */
  fatal?: boolean;
}

export interface FailureSummary {
  /** Failures that happened in this call. */
  count: number;
  byStage: Record<FailureStage, number>;
  /** Failures of this call by cause. */
  byCause: Record<string, number>;
  /** The first one of this call, as it happened. */
  first?: FailureRecord;
  list: FailureRecord[];
}

/** One completed group, as the events and the group file tell it. */
export interface GroupSummary {
  epoch: number;
  /** 0-based batch index over the whole run (all epochs). */
  batch: number;
  task: string;
  scores: number[];
  correct: boolean[];
  mean: number;
  std: number;
  /** Whether the group carries signal by the trigger (it may still fail to teach). */
  learn: boolean;
  reason: string;
}

export interface LibraryChange {
  added: string[];
  modified: string[];
  deleted: string[];
  merged: string[];
  warnings: string[];
}

export type TrainingFreeEvent =
  | {
      type: "run-start";
      runDir?: string;
      epochs: number;
      batches: number;
      tasks: number;
      groupSize: number;
      /** Batches already applied by earlier calls on this run directory. */
      resumedBatches: number;
      /** Groups of earlier calls that failed and are retried now. */
      retriedGroups: number;
    }
  | { type: "already-finished"; runDir?: string; batches: number; librarySize: number }
  | {
      type: "attempt";
      scope: string;
      epoch: number;
      task: string;
      index: number;
      ok: boolean;
      score?: number;
      error?: string;
      /** Served from the run directory's records (no call made). */
      recorded: boolean;
    }
  | ({ type: "group" } & GroupSummary)
  | { type: "failure"; failure: FailureRecord }
  | {
      type: "library";
      version: number;
      epoch: number;
      batch: number;
      size: number;
      change: LibraryChange;
      /** Groups whose lessons this version holds; groups still waiting for a failed part. */
      learntFrom: string[];
      pending: string[];
    }
  | { type: "warning"; message: string }
  | { type: "stopping"; reason: string }
  | { type: "run-end"; complete: boolean };

/** What fit() did, and whether the run is complete (a command exits non-zero when it is not). */
export interface FitResult {
  /** finished: every batch applied, nothing failed; already-finished: so on arrival, no call made. */
  status: "finished" | "already-finished" | "incomplete" | "stopped";
  complete: boolean;
  stopReason?: string;
  runDir?: string;
  epochs: number;
  batches: { planned: number; applied: number; appliedNow: number };
  groups: { planned: number; complete: number; learntFrom: number; noSignal: number; pending: number };
  attempts: { ok: number; failed: number; madeNow: number; fromRecords: number };
  failures: FailureSummary;
  library: { size: number; version: number; path?: string };
  /** Everything the run directory records, earlier calls included. */
  cost: { rollouts: CostTotals; learner: CostTotals };
}

export interface EvaluationArm {
  /** Mean over tasks of the fraction of its k attempts that are correct. */
  meanAtK: number;
  /** Fraction of tasks with at least one correct attempt among k. */
  passAtK: number;
  attempts: number;
  failed: number;
  perTask: { task: string; correct: number; failed: number }[];
  cost: CostTotals;
}

export interface EvaluationResult {
  k: number;
  tasks: number;
  seed: number;
  /** False when an attempt failed: its accuracy is then over fewer attempts than asked. */
  complete: boolean;
  librarySize: number;
  with?: EvaluationArm;
  without?: EvaluationArm;
  /** with − without, when both arms ran. */
  delta?: { meanAtK: number; passAtK: number };
  cost: CostTotals;
  failures: FailureSummary;
  /** The JSON file the result was written to. */
  file?: string;
}

/** One attempt as it ended: its output and score, or its failure and at which stage. */
export interface AttemptRecord<O = unknown> {
  /** "train", or an evaluation arm. */
  scope: string;
  epoch: number;
  task: string;
  index: number;
  seed: number;
  /** The library version the attempt saw (-1 for none, or for a live library). */
  version: number;
  status: "ok" | "failed";
  stage?: "rollout" | "reward";
  error?: string;
  /** The failure's kind, as FailureRecord.cause. */
  cause?: string;
  output?: O;
  trajectory?: string;
  score?: number;
  correct?: boolean;
  details?: unknown;
  usage?: TokenUsage;
  time: string;
}

/** Where a group stands in a run. */
export interface GroupWhere {
  epoch: number;
  /** 0-based batch index over the whole run. */
  batch: number;
  taskId: string;
}

/** An attempt as the caller's records hold it from an earlier run. */
export type RecalledAttempt<O> =
  | { status: "ok"; output: O; trajectory?: string; score: number; correct: boolean; details?: unknown }
  /** The rollout succeeded but its reward failed: only the reward is asked again. */
  | { status: "unscored"; output: O; trajectory?: string };

/** What the caller's records hold of one group before the run touches it. */
export interface RecalledGroup<O> {
  /** Complete in the records (every attempt scored, its learning step done or not due): not run again. */
  done?: boolean;
  /** By index; a missing or undefined entry is made anew (it failed, or was never made). */
  attempts?: readonly (RecalledAttempt<O> | undefined)[];
  /**
   * Indices that cannot be attempted in this run, because what they need is not there yet (an
   * upstream step's result): the group waits and teaches nothing, and this is no failure.
   */
  waiting?: readonly number[];
}

/** A group whose attempts have all ended (made now, served from the records, or not made). */
export interface GroupEnd<T, O> extends GroupWhere {
  task: T;
  /** By index; undefined for an attempt not made (waiting, or the run stopped first). */
  attempts: readonly (AttemptRecord<O> | undefined)[];
}

/** A group whose every attempt succeeded, with its statistics and whether it is to teach. */
export interface ScoredGroupEnd<T, O> extends GroupEnd<T, O> {
  attempts: readonly AttemptRecord<O>[];
  summary: GroupSummary;
}

/**
 * Records the caller owns, in its own files and layout, in place of a run directory: fit() asks
 * them what an earlier run left of each group and tells them as each group moves on. With a
 * store, each batch sees the library as it is when the batch starts and applies its update as
 * soon as it is done (at most `batchesInFlight` batches open at once), since the library file is
 * then the only record of what was learned. A hook that throws stops the run; fit() rethrows it
 * once everything in flight has ended.
 */
export interface GroupStore<T, O> {
  /** Called once per group as it starts; undefined when the records hold nothing of it. */
  recall(task: T, where: GroupWhere): RecalledGroup<O> | undefined;
  /** Every attempt ended and some failed, waited or were cut short by a stop: nothing is learned yet. */
  incomplete?(group: GroupEnd<T, O>): void | Promise<void>;
  /** Every attempt succeeded; called before the learning step, which follows when `summary.learn`. */
  scored?(group: ScoredGroupEnd<T, O>): void | Promise<void>;
  /** The group's learning step failed (the failure is also reported as it happened). */
  learningFailed?(group: ScoredGroupEnd<T, O>, failure: FailureRecord): void | Promise<void>;
  /** The group's lessons are in the library, and the library is saved when it has a file. */
  learnt?(group: ScoredGroupEnd<T, O>, change: LibraryChange): void | Promise<void>;
}
