/**
 * What the generators and the critic share as clients of TrainingFreeGRPO: the trainer of one
 * agent (its client as the learner, its library and the shared one, the solver's learning step),
 * and the fit options that route its failures through the run's guard and its warnings into
 * its summary. Each problem is a batch of its own, and `problemsInFlight` of them are open at
 * once; the library a problem sees is the agent's library as it is when the problem starts.
 */
import type { ChatClient } from "../../llm/port.ts";
import {
  type Attempt,
  type ExperienceLibrary,
  type FailureRecord,
  type FitOptions,
  type GroupStore,
  type RecalledAttempt,
  type RewardValue,
  type RolloutContext,
  renderLessons,
  TrainingFreeGRPO,
} from "../../training-free/index.ts";
import { type ExtractionSettings, type ScaffoldDetails, scaffoldLearning } from "./extraction.ts";
import type { RunGuard } from "./failures.ts";
import type { PromptSet } from "./prompts.ts";
import type { Scaffold } from "./scaffold.ts";
import { parseScaffold } from "./scaffold-parse.ts";
import type { ProblemRef } from "./solve.ts";

/** A stored scaffold: the seed's Python-dict string, or an object. */
export type StoredScaffold = Scaffold | string;

/** A recorded scaffold (a rollout's or a fusion's) with its rewards; `scaffold` null: it failed. */
export interface RecordedScaffold {
  scaffold: StoredScaffold | null;
  /** A failed one's scaffold when only its scoring failed. */
  unscored?: StoredScaffold;
  answer: string | number | null;
  is_correct: boolean;
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_fusion?: number;
  r_total: number;
}

/**
 * A recorded scaffold as TrainingFreeGRPO resumes it: scored; only to be scored again (its
 * scoring failed: the paid-for scaffold is not asked for again); or, undefined, to be made anew.
 */
export function recalledScaffold(
  r: RecordedScaffold,
  id: number,
): RecalledAttempt<StoredScaffold> | undefined {
  if (r.scaffold !== null) {
    const details: ScaffoldDetails = {
      id,
      answer: r.answer,
      r_ans: r.r_ans,
      r_logic: r.r_logic,
      r_graph: r.r_graph,
      ...(r.r_fusion !== undefined ? { r_fusion: r.r_fusion } : {}),
      notes: [],
    };
    return { status: "ok", output: r.scaffold, score: r.r_total, correct: r.is_correct, details };
  }
  if (r.unscored === undefined) return undefined;
  const again = parseScaffold(r.unscored);
  return again.ok ? { status: "unscored", output: again.scaffold } : undefined;
}

export interface AgentTrainerOptions {
  client: ChatClient;
  prompts: PromptSet;
  extraction: ExtractionSettings;
  /** The library that learns; with `useExperiences` false, an empty one that nothing saves. */
  library: ExperienceLibrary;
  /** The lessons every agent reads. */
  shared?: ExperienceLibrary;
  /** false: the prompt says "(none)" instead of the lessons (the arm without experiences). */
  useExperiences: boolean;
  rollout: (problem: ProblemRef, ctx: RolloutContext) => Promise<Attempt<StoredScaffold>>;
  reward: (
    problem: ProblemRef,
    attempt: Attempt<StoredScaffold>,
    ctx: RolloutContext,
  ) => Promise<RewardValue>;
  now: () => Date;
}

export function agentTrainer(o: AgentTrainerOptions): TrainingFreeGRPO<ProblemRef, StoredScaffold> {
  return new TrainingFreeGRPO<ProblemRef, StoredScaffold>({
    rollout: o.rollout,
    reward: o.reward,
    learner: o.client,
    library: o.library,
    ...(o.shared && o.useExperiences ? { readLibraries: [o.shared] } : {}),
    learning: scaffoldLearning(o.prompts, o.extraction),
    taskId: (p) => p.id,
    taskText: (p) => p.text,
    groundTruth: (p) => p.answer,
    taskType: (p) => p.source,
    learnerTemperature: o.extraction.temperature,
    render: (entries) => renderLessons(entries, o.useExperiences ? "(none yet)" : "(none)"),
    now: o.now,
  });
}

export interface AgentFitOptions {
  agent: string;
  guard: RunGuard;
  problemsInFlight: number;
  /** The largest group: with the problems in flight, the attempts that may run at once. */
  maxGroupSize: number;
  groupSize: (p: ProblemRef) => number;
  learn: boolean;
  store: GroupStore<ProblemRef, StoredScaffold>;
  /** Where a failure happened, as the guard prints it ("problem p3, rollout 2"). */
  where: (f: FailureRecord) => string;
  /** Counts each failure by the guard's kind (rate_limit, schema, …). */
  counted: (f: FailureRecord, kind: string, err: unknown) => void;
  warn: (line: string) => void;
}

/**
 * One pass of an agent over its problems: the guard counts failures per agent (and stops the
 * whole run through its signal), so TrainingFreeGRPO's own failure count never stops it.
 */
export function agentFitOptions(o: AgentFitOptions): FitOptions<ProblemRef, StoredScaffold> {
  return {
    epochs: 1,
    groupSize: o.groupSize,
    batchSize: 1,
    batchesInFlight: o.problemsInFlight,
    concurrency: o.problemsInFlight * o.maxGroupSize,
    shuffle: false,
    learn: o.learn,
    store: o.store,
    maxFailures: Number.POSITIVE_INFINITY,
    signal: o.guard.signal,
    onFailure: (f, err) => {
      const kind = o.guard.failure(o.agent, o.where(f), err);
      if (kind !== "stopped") o.counted(f, kind, err);
    },
    onEvent: (e) => {
      if (e.type === "attempt" && e.ok && !e.recorded) o.guard.success(o.agent);
      else if (e.type === "warning") o.warn(e.message);
    },
  };
}
