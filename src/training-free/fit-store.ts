/**
 * fit() over the caller's own records (a GroupStore). Nothing is kept beside them: a group
 * starts from what the store recalls of it, and the store hears of each group as it moves on, so
 * its files stay the one record of the run. The library file is then the only record of what
 * was learned, so each batch sees the library as it is when the batch starts, and applies its
 * update as soon as it is done; at most `batchesInFlight` batches are open at once, and a batch
 * that finishes early does not wait for an earlier one.
 */

import { renderLessons } from "./experience-library.ts";
import { type BatchPlanner, endFit, fitResult, type GroupCounts } from "./fit-result.ts";
import {
  applyProposals,
  type FitRun,
  type GroupOutcome,
  type ProposalOutcome,
  runGroup,
  seedOf,
} from "./group.ts";
import { mapPool } from "./pool.ts";
import { attemptKey, groupKey, type RunStore } from "./run-store.ts";
import type {
  AttemptRecord,
  ExperiencesView,
  FitResult,
  GroupStore,
  RecalledAttempt,
  RecalledGroup,
  ScoredGroupEnd,
} from "./types.ts";

function recalledRecord<O>(
  a: RecalledAttempt<O>,
  where: { epoch: number; task: string; index: number; seed: number },
): AttemptRecord<O> {
  const base = { scope: "train", ...where, version: -1, time: "" };
  const trajectory = a.trajectory !== undefined ? { trajectory: a.trajectory } : {};
  if (a.status === "unscored")
    return {
      ...base,
      status: "failed",
      stage: "reward",
      error: "its reward is to be asked again",
      output: a.output,
      ...trajectory,
    };
  return {
    ...base,
    status: "ok",
    output: a.output,
    ...trajectory,
    score: a.score,
    correct: a.correct,
    ...(a.details !== undefined ? { details: a.details } : {}),
  };
}

export async function fitWithStore<T, O>(
  run: FitRun<T, O>,
  groups: GroupStore<T, O>,
  records: RunStore,
  plan: BatchPlanner,
): Promise<FitResult> {
  const { session, library } = run;
  const counts: GroupCounts = { complete: 0, learntFrom: 0, noSignal: 0, pending: 0, libraryVersion: 0 };
  let recalledDone = 0;
  let applied = 0;
  let appliedNow = 0;
  session.emit({
    type: "run-start",
    epochs: plan.epochs,
    batches: plan.planned,
    tasks: run.tasks.length,
    groupSize: Math.max(...run.sizes),
    resumedBatches: 0,
    retriedGroups: 0,
  });

  const storedGroup = async (
    epoch: number,
    batch: number,
    index: number,
    view: ExperiencesView,
  ): Promise<GroupOutcome<T, O>> => {
    const task = run.tasks[index]!;
    const taskId = run.ids[index]!;
    const key = groupKey(epoch, taskId);
    let recalled: RecalledGroup<O> | undefined;
    const recallOk = await session.hook("recall", () => {
      recalled = groups.recall(task, { epoch, batch, taskId });
    });
    if (!recallOk) {
      counts.pending++;
      return { state: "unfinished", key };
    }
    if (recalled?.done) {
      recalledDone++;
      counts.complete++;
      return { state: "done", key };
    }
    recalled?.attempts?.forEach((a, i) => {
      if (!a) return;
      // A recalled attempt is served as a record of this call: no call is made for it.
      const seed = seedOf(run.seed, epoch, taskId, i);
      records.attempts.set(
        attemptKey("train", epoch, taskId, i),
        recalledRecord(a, { epoch, task: taskId, index: i, seed }),
      );
    });
    const outcome = await runGroup(
      run,
      {
        epoch,
        batch,
        index,
        version: -1,
        view,
        libraryText: () => renderLessons(library.entries()),
        waiting: new Set(recalled?.waiting ?? []),
      },
      (end) => session.hook("scored", () => groups.scored?.(end)),
    );
    if (outcome.state === "no-signal") {
      counts.complete++;
      counts.noSignal++;
    } else if (outcome.state !== "proposal") counts.pending++;
    if (outcome.state === "failed" && outcome.learning) {
      const failure = outcome.learning;
      await session.hook("learningFailed", () =>
        groups.learningFailed?.(outcome.end as ScoredGroupEnd<T, O>, failure),
      );
    } else if ((outcome.state === "failed" || outcome.state === "unfinished") && outcome.end) {
      const end = outcome.end;
      await session.hook("incomplete", () => groups.incomplete?.(end));
    }
    return outcome;
  };

  // Updates apply one at a time, in the order their batches finish; the saves that follow them
  // run outside that order, so that updates queued behind a running save share its write.
  let updates: Promise<unknown> = Promise.resolve();

  /** The batch's update; true when every group of the batch is complete. */
  const update = async (epoch: number, batch: number, outcomes: GroupOutcome<T, O>[]): Promise<boolean> => {
    const proposals = outcomes.filter((o): o is ProposalOutcome<T, O> => o.state === "proposal");
    const complete = outcomes.every(
      (o) => o.state === "done" || o.state === "no-signal" || o.state === "proposal",
    );
    if (proposals.length === 0) return complete;
    const label = `epoch ${epoch} batch ${(batch % plan.perEpoch) + 1}`;
    const applying = updates.then(() => applyProposals(run, proposals, { prefix: `b${batch}`, label }));
    updates = applying.catch(() => {});
    let applied: Awaited<typeof applying>;
    try {
      applied = await applying;
    } catch (err) {
      counts.pending += proposals.length;
      const failure = session.failLearning(err, { epoch, task: label });
      if (failure)
        for (const p of proposals)
          await session.hook("learningFailed", () => groups.learningFailed?.(p.end, failure));
      return false;
    }
    counts.libraryVersion++;
    const version = counts.libraryVersion;
    const saved = await session.hook("library save", () =>
      library.path !== undefined ? library.saveAsync() : undefined,
    );
    if (!saved) {
      counts.pending += proposals.length;
      return false;
    }
    appliedNow++;
    for (const w of applied.change.warnings) session.emit({ type: "warning", message: w });
    session.emit({
      type: "library",
      version,
      epoch,
      batch,
      size: library.entries().length,
      change: applied.change,
      learntFrom: proposals.map((p) => p.key),
      pending: [],
    });
    for (const p of proposals) {
      counts.complete++;
      counts.learntFrom++;
      const change = applied.bySource.get(p.end.taskId) ?? applied.change;
      await session.hook("learnt", () => groups.learnt?.(p.end, change));
    }
    return complete;
  };

  await mapPool(
    Array.from({ length: plan.planned }, (_, g) => g),
    plan.inFlight,
    async (g) => {
      if (session.stopping) return;
      const { epoch, items } = plan.batchTasks(g);
      const view = run.view(library.entries());
      const outcomes = await Promise.all(items.map((i) => storedGroup(epoch, g, i, view)));
      if (await update(epoch, g, outcomes)) applied++;
    },
  );

  const total = plan.epochs * run.tasks.length;
  const complete = counts.complete === total && session.failures.length === 0 && !session.stopping;
  const status: FitResult["status"] =
    recalledDone === total
      ? "already-finished"
      : complete
        ? "finished"
        : session.stopping
          ? "stopped"
          : "incomplete";
  return endFit(
    run,
    records,
    fitResult(run, records, { status, plan, applied, appliedNow, runDir: undefined, counts }),
  );
}
