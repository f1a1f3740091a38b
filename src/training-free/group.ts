/**
 * One call of fit() as both ways of keeping a run share it: the tasks and their ids, the session,
 * the learning form, and one group's course — its attempts, its statistics, the trigger's
 * decision and the per-group part of the learning step — and one batch's update of the library.
 * A run directory (fit-run-dir.ts) and a caller's store (fit-store.ts) differ only in which
 * library a group sees and in what they record.
 */
import { groupStats } from "../core/advantages.ts";
import { fnv1a } from "../core/rng.ts";
import type { Experience, ExperienceLibrary } from "./experience-library.ts";
import type { AttemptView, TaskView } from "./learner-prompts.ts";
import type { BatchPlan, GroupProposal, LearningForm } from "./learning.ts";
import { groupKey, type PendingGroup } from "./run-store.ts";
import { outputText, type Session, SKIPPED } from "./session.ts";
import { decideExtraction } from "./triggers.ts";
import type {
  AttemptRecord,
  ExperiencesView,
  FailureRecord,
  GroupEnd,
  GroupSummary,
  LibraryChange,
  ScoredGroupEnd,
} from "./types.ts";

export interface FitRun<T, O> {
  tasks: readonly T[];
  ids: readonly string[];
  /** Attempts per group, by task index. */
  sizes: readonly number[];
  session: Session<T, O>;
  form: LearningForm;
  library: ExperienceLibrary;
  seed: number;
  /** false: attempts and rewards only; nothing reaches the learner. */
  learn: boolean;
  view(own: readonly Experience[]): ExperiencesView;
  taskView(task: T, id: string): TaskView;
  /** The kind of each task by id, recorded with the lessons it teaches. */
  taskTypes: ReadonlyMap<string, string>;
  now: () => Date;
}

export interface GroupSpec {
  epoch: number;
  batch: number;
  /** The task's index in `tasks`. */
  index: number;
  /** The library version the attempts see (-1: a live library). */
  version: number;
  view: ExperiencesView;
  /** The library as the learner is to read it when the group's learning step starts. */
  libraryText: () => string;
  /** Attempts not to make in this run (see RecalledGroup.waiting). */
  waiting?: ReadonlySet<number>;
}

/** Where a group ended up in one batch. */
export type GroupOutcome<T, O> =
  /** Complete in the caller's records before the run: not run. */
  | { state: "done"; key: string }
  /** An attempt was not made (the run stopped first, or it waits for an upstream result). */
  | { state: "unfinished"; key: string; end?: GroupEnd<T, O> }
  /** An attempt failed, or the learning step did (`learning`): the group teaches once a rerun completes it. */
  | { state: "failed"; key: string; end: GroupEnd<T, O>; pending: PendingGroup; learning?: FailureRecord }
  | { state: "no-signal"; key: string; end: ScoredGroupEnd<T, O> }
  | {
      state: "proposal";
      key: string;
      end: ScoredGroupEnd<T, O>;
      proposal: GroupProposal;
      pending: PendingGroup;
    };

export type ProposalOutcome<T, O> = Extract<GroupOutcome<T, O>, { state: "proposal" }>;

/** A 32-bit seed from its parts (FNV-1a), the same on every machine. */
export function seedOf(...parts: (string | number)[]): number {
  return fnv1a(parts.join("\u0000"));
}

export function emptyChange(): LibraryChange {
  return { added: [], modified: [], deleted: [], merged: [], warnings: [] };
}

/**
 * The group's attempts, then — when every one succeeded — its statistics, the decision, the
 * `scored` hook (false: stop there) and the per-group learning step.
 */
export async function runGroup<T, O>(
  run: FitRun<T, O>,
  spec: GroupSpec,
  scored: (end: ScoredGroupEnd<T, O>) => Promise<boolean>,
): Promise<GroupOutcome<T, O>> {
  const { session } = run;
  const { epoch, batch, index, version } = spec;
  const task = run.tasks[index]!;
  const id = run.ids[index]!;
  const key = groupKey(epoch, id);
  const size = run.sizes[index]!;
  const made = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      spec.waiting?.has(i)
        ? SKIPPED
        : session.attempt({
            scope: "train",
            epoch,
            task,
            taskId: id,
            index: i,
            groupSize: size,
            seed: seedOf(run.seed, epoch, id, i),
            version,
            view: spec.view,
            mode: "train",
          }),
    ),
  );
  const attempts = made.map((a) => (a === SKIPPED ? undefined : (a as AttemptRecord<O>)));
  const end: GroupEnd<T, O> = { task, taskId: id, epoch, batch, attempts };
  const pending = (reason: string): PendingGroup => ({ key, epoch, batch, task: id, version, reason });
  if (attempts.some((a) => a === undefined)) return { state: "unfinished", key, end };
  const failed = attempts.filter((r) => r!.status === "failed");
  if (failed.length > 0)
    return {
      state: "failed",
      key,
      end,
      pending: pending(`${failed.length} attempt(s) failed: ${failed[0]!.stage}: ${failed[0]!.error}`),
    };
  const recs = attempts as AttemptRecord<O>[];
  const scores = recs.map((r) => r.score!);
  const correct = recs.map((r) => r.correct!);
  const { mean, std } = groupStats(scores);
  const decision = decideExtraction(scores, correct, run.form.trigger);
  const summary: GroupSummary = {
    epoch,
    batch,
    task: id,
    scores,
    correct,
    mean,
    std,
    learn: run.learn && decision.extract,
    reason: decision.reason,
  };
  const full: ScoredGroupEnd<T, O> = { ...end, attempts: recs, summary };
  if (!(await scored(full))) return { state: "unfinished", key };
  session.emit({ type: "group", ...summary });
  if (!summary.learn) return { state: "no-signal", key, end: full };
  const views: AttemptView[] = recs.map((r) => ({
    number: r.index + 1,
    output: r.output,
    trajectory: r.trajectory ?? outputText(r.output),
    score: r.score!,
    correct: r.correct!,
    ...(r.details !== undefined ? { details: r.details } : {}),
  }));
  try {
    const proposal = await run.form.perGroup(
      { task: run.taskView(task, id), attempts: views, library: spec.libraryText() },
      session.stepCall(`e${epoch}/${id}`),
    );
    for (const w of proposal.warnings) session.emit({ type: "warning", message: `${id}: ${w}` });
    return { state: "proposal", key, end: full, proposal, pending: pending("its learning step failed") };
  } catch (err) {
    const failure = session.failLearning(err, { epoch, task: id });
    if (!failure) return { state: "unfinished", key };
    return {
      state: "failed",
      key,
      end: full,
      pending: pending(`learning step failed: ${failure.error}`),
      learning: failure,
    };
  }
}

/** What one batch's update did: the change overall and per source (task id, or the batch's label). */
export interface AppliedPlan {
  change: LibraryChange;
  bySource: Map<string, LibraryChange>;
}

/**
 * The batch part of the learning step and its operations applied to the library. Throws what the
 * learner call threw (a StopError when the run is stopping): the library is then unchanged.
 */
export async function applyProposals<T, O>(
  run: FitRun<T, O>,
  proposals: readonly ProposalOutcome<T, O>[],
  where: { prefix: string; label: string },
): Promise<AppliedPlan> {
  const plan: BatchPlan = await run.form.perBatch(
    proposals.map((o) => o.proposal),
    run.library,
    run.session.stepCall(where.prefix),
    where.label,
  );
  const change = emptyChange();
  change.warnings.push(...plan.warnings);
  const bySource = new Map<string, LibraryChange>();
  for (const src of plan.sources) {
    const type = run.taskTypes.get(src.problemId);
    const r = run.library.apply(src.ops, {
      problemId: src.problemId,
      ...(type !== undefined ? { problemType: type } : {}),
      now: run.now,
    });
    const own = bySource.get(src.problemId) ?? emptyChange();
    for (const c of [change, own]) {
      c.added.push(...r.added);
      c.modified.push(...r.modified);
      c.deleted.push(...r.deleted);
      c.merged.push(...r.merged);
      c.warnings.push(...r.warnings);
    }
    bySource.set(src.problemId, own);
  }
  return { change, bySource };
}
