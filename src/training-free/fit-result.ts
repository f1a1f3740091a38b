/** The batches of a fit() call, and the result it returns. */
import { Rng } from "../core/rng.ts";
import { type FitRun, seedOf } from "./group.ts";
import { groupKey, type RunStore } from "./run-store.ts";
import type { AttemptRecord, FitResult } from "./types.ts";
import { addCost, emptyCost } from "./usage.ts";

/** Which tasks batch g holds: each epoch visits the tasks in its own seeded order, batchSize at a time. */
export interface BatchPlanner {
  epochs: number;
  perEpoch: number;
  planned: number;
  inFlight: number;
  batchTasks(g: number): { epoch: number; items: number[] };
}

export function batchPlanner(
  taskCount: number,
  o: { epochs: number; batchSize: number; inFlight: number; shuffle: boolean; seed: number },
): BatchPlanner {
  const perEpoch = Math.ceil(taskCount / o.batchSize);
  const orders = new Map<number, number[]>();
  return {
    epochs: o.epochs,
    perEpoch,
    planned: o.epochs * perEpoch,
    inFlight: o.inFlight,
    batchTasks(g) {
      const epoch = Math.floor(g / perEpoch) + 1;
      let order = orders.get(epoch);
      if (!order) {
        order = Array.from({ length: taskCount }, (_, i) => i);
        if (o.shuffle) new Rng(seedOf(o.seed, "order", epoch)).shuffle(order);
        orders.set(epoch, order);
      }
      const j = g % perEpoch;
      return { epoch, items: order.slice(j * o.batchSize, (j + 1) * o.batchSize) };
    },
  };
}

/** Counts of the groups of a call, where the records do not hold them (a caller's store). */
export interface GroupCounts {
  complete: number;
  learntFrom: number;
  noSignal: number;
  pending: number;
  libraryVersion: number;
}

/**
 * The result of a call. Attempts, cost and (without `counts`) the group figures come from the
 * records, so that a run directory's result covers its earlier calls too.
 */
export function fitResult<T, O>(
  run: FitRun<T, O>,
  store: RunStore,
  o: {
    status: FitResult["status"];
    plan: BatchPlanner;
    applied: number;
    appliedNow: number;
    runDir: string | undefined;
    counts?: GroupCounts;
  },
): FitResult {
  const { session, library } = run;
  const train = [...store.attempts.values()].filter((a) => a.scope === "train");
  const rollouts = emptyCost();
  for (const a of train) addCost(rollouts, a.usage);
  const learner = emptyCost();
  for (const r of store.learner.values()) addCost(learner, r.usage);
  let counts = o.counts;
  if (!counts) {
    const byGroup = new Map<string, AttemptRecord[]>();
    for (const a of train) {
      const k = groupKey(a.epoch, a.task);
      const list = byGroup.get(k);
      if (list) list.push(a);
      else byGroup.set(k, [a]);
    }
    const last = store.versions[store.versions.length - 1];
    counts = {
      complete: [...byGroup.values()].filter((l) => l.every((a) => a.status === "ok")).length,
      learntFrom: new Set(store.versions.flatMap((v) => v.learntFrom)).size,
      noSignal: new Set(store.versions.flatMap((v) => v.noSignal)).size,
      pending: store.pendingGroups().length,
      libraryVersion: last ? last.version : 0,
    };
  }
  return {
    status: o.status,
    complete: o.status === "finished" || (o.status === "already-finished" && counts.pending === 0),
    ...(session.stopReason ? { stopReason: session.stopReason } : {}),
    ...(o.runDir ? { runDir: o.runDir } : {}),
    epochs: o.plan.epochs,
    batches: { planned: o.plan.planned, applied: o.applied, appliedNow: o.appliedNow },
    groups: {
      planned: o.plan.epochs * run.tasks.length,
      complete: counts.complete,
      learntFrom: counts.learntFrom,
      noSignal: counts.noSignal,
      pending: counts.pending,
    },
    attempts: {
      ok: train.filter((a) => a.status === "ok").length,
      failed: train.filter((a) => a.status === "failed").length,
      madeNow: session.madeNow,
      fromRecords: session.fromRecords,
    },
    failures: session.failureSummary(),
    library: {
      size: library.entries().length,
      version: counts.libraryVersion,
      ...(library.path !== undefined ? { path: library.path } : {}),
    },
    cost: { rollouts, learner },
  };
}

/** Records the result of a call that ran (summary.json in a run directory) and ends its events. */
export function endFit<T, O>(run: FitRun<T, O>, store: RunStore, result: FitResult): FitResult {
  store.writeResult("summary.json", result);
  run.session.emit({ type: "run-end", complete: result.complete });
  return result;
}
