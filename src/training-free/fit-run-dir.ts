/**
 * fit() over a run directory (or over memory, without one). Every library version is recorded,
 * batch g sees the version closing batch g − batchesInFlight, and updates apply in batch order,
 * so a killed run rerun with the same arguments ends with the library an uninterrupted run would
 * have. Groups that waited for a failed part are retried on the next call with the version they
 * saw, and teach in its first update.
 */

import type { HistoryEntry } from "./experience-library.ts";
import { renderLessons } from "./experience-library.ts";
import { type BatchPlanner, endFit, fitResult } from "./fit-result.ts";
import {
  applyProposals,
  emptyChange,
  type FitRun,
  type GroupOutcome,
  type ProposalOutcome,
  runGroup,
} from "./group.ts";
import type { PendingGroup, RunStore, VersionRecord } from "./run-store.ts";
import type { FitResult } from "./types.ts";

export async function fitRunDir<T, O>(
  run: FitRun<T, O>,
  store: RunStore,
  plan: BatchPlanner,
  runDir: string | undefined,
): Promise<FitResult> {
  const { session, library, now } = run;
  const { planned, perEpoch, inFlight } = plan;

  // The library as the run left it, or as it is now for a new run (version 0).
  if (store.versions.length === 0) {
    const snap = library.snapshot();
    store.putVersion({
      version: 0,
      kind: "initial",
      epoch: 0,
      batch: -1,
      experiences: snap.experiences,
      history: snap.history,
      learntFrom: [],
      noSignal: [],
      pending: [],
      resolved: [],
      change: emptyChange(),
      time: now().toISOString(),
    });
  } else {
    const last = store.versions.length - 1;
    const before = JSON.stringify(library.entries());
    library.restore(store.stateAt(last));
    if (JSON.stringify(library.entries()) !== before)
      session.emit({
        type: "warning",
        message: `${library.agent}: library restored from version ${last} recorded in ${runDir}`,
      });
  }

  // Which version closes each batch; a batch sees the version closing batch g − inFlight.
  const versionAfter = new Map<number, number>();
  for (const v of store.versions) if (v.kind !== "initial") versionAfter.set(v.batch, v.version);
  // Trailing catch-up versions count as the state after the last batch.
  const seenVersion = (g: number): number => {
    const b = g - inFlight;
    if (b < 0) return 0;
    let v = versionAfter.get(b)!;
    while (store.versions[v + 1]?.kind === "catch-up") v++;
    return v;
  };
  let applied = 0;
  while (versionAfter.has(applied)) applied++;
  const pendingBefore = store.pendingGroups();
  const taskIndex = new Map(run.ids.map((id, i) => [id, i]));

  if (applied >= planned && pendingBefore.length === 0) {
    session.emit({
      type: "already-finished",
      ...(runDir ? { runDir } : {}),
      batches: applied,
      librarySize: library.entries().length,
    });
    return fitResult(run, store, { status: "already-finished", plan, applied, appliedNow: 0, runDir });
  }
  session.emit({
    type: "run-start",
    ...(runDir ? { runDir } : {}),
    epochs: plan.epochs,
    batches: planned,
    tasks: run.tasks.length,
    groupSize: Math.max(...run.sizes),
    resumedBatches: applied,
    retriedGroups: pendingBefore.length,
  });

  const group = (epoch: number, batch: number, index: number, version: number) => {
    const own = store.versions[version]!.experiences;
    return runGroup(
      run,
      { epoch, batch, index, version, view: run.view(own), libraryText: () => renderLessons(own) },
      async (end) => {
        store.putGroup(end.summary);
        return true;
      },
    );
  };

  // Groups of earlier calls that waited for a failed part: retried with the library they saw,
  // and learnt from in the first update of this call.
  const retried = pendingBefore
    .filter((p) => taskIndex.has(p.task))
    .map((p) => group(p.epoch, p.batch, taskIndex.get(p.task)!, p.version));

  let appliedNow = 0;
  let catchUpTaken = false;
  const applyBatch = async (g: number, outcomes: GroupOutcome<T, O>[]): Promise<boolean> => {
    if (session.stopping && outcomes.some((o) => o.state === "unfinished")) return false;
    let catchUp: GroupOutcome<T, O>[] = [];
    if (!catchUpTaken) {
      catchUpTaken = true;
      catchUp = await Promise.all(retried);
    }
    const all = [...catchUp, ...outcomes];
    if (session.stopping && all.some((o) => o.state === "unfinished")) return false;
    const epoch = g < 0 ? plan.batchTasks(planned - 1).epoch : plan.batchTasks(g).epoch;
    const label = g < 0 ? `catch-up after batch ${planned}` : `epoch ${epoch} batch ${(g % perEpoch) + 1}`;
    const proposals = all.filter((o): o is ProposalOutcome<T, O> => o.state === "proposal");
    let change = emptyChange();
    const pending: PendingGroup[] = [];
    let learntFrom: string[] = [];
    const historyBefore = library.operationHistory().length;
    try {
      change = (
        await applyProposals(run, proposals, {
          prefix: g < 0 ? `catch-up${store.versions.length}` : `b${g}`,
          label,
        })
      ).change;
      learntFrom = proposals.map((o) => o.key);
    } catch (err) {
      if (!session.failLearning(err, { epoch, task: label })) return false;
      // The merge failed: the library stays as it was and these groups teach on a rerun.
      pending.push(...proposals.map((o) => o.pending));
    }
    for (const o of all) if (o.state === "failed") pending.push(o.pending);
    const pendingKeys = new Set(pendingBefore.map((p) => p.key));
    const resolved = catchUp
      .filter((o) => o.state === "no-signal" || (o.state === "proposal" && learntFrom.includes(o.key)))
      .map((o) => o.key)
      .filter((k) => pendingKeys.has(k));
    const version = store.versions.length;
    const snap = library.snapshot();
    const record: VersionRecord = {
      version,
      kind: g < 0 ? "catch-up" : "batch",
      epoch,
      batch: g < 0 ? planned - 1 : g,
      experiences: snap.experiences,
      history: snap.history.slice(historyBefore) as HistoryEntry[],
      learntFrom,
      noSignal: all.filter((o) => o.state === "no-signal").map((o) => o.key),
      // A group already waiting stays recorded where it first failed.
      pending: pending.filter((p) => !pendingKeys.has(p.key)),
      resolved,
      change,
      time: now().toISOString(),
    };
    store.putVersion(record);
    if (g >= 0) versionAfter.set(g, version);
    if (library.path !== undefined) await library.saveAsync();
    for (const w of change.warnings) session.emit({ type: "warning", message: w });
    session.emit({
      type: "library",
      version,
      epoch,
      batch: record.batch,
      size: library.entries().length,
      change,
      learntFrom,
      pending: pending.map((p) => p.key),
    });
    appliedNow++;
    return true;
  };

  const applyDone: Promise<boolean>[] = [];
  for (let g = applied; g < planned; g++) {
    // Batch g may start once the version it is to see exists.
    const waitFor = g - inFlight;
    if (waitFor >= applied && !(await applyDone[waitFor - applied]!)) break;
    if (session.stopping) break;
    const { epoch, items } = plan.batchTasks(g);
    const version = seenVersion(g);
    const groups = Promise.all(items.map((i) => group(epoch, g, i, version)));
    const previous = g > applied ? applyDone[g - applied - 1]! : Promise.resolve(true);
    applyDone.push(
      (async () => {
        const outcomes = await groups;
        if (!(await previous)) return false;
        return applyBatch(g, outcomes);
      })(),
    );
  }
  const results = await Promise.all(applyDone);
  const appliedAll = applied + results.filter(Boolean).length;
  if (!catchUpTaken && retried.length > 0 && !session.stopping) await applyBatch(-1, []);
  // Nothing may be left running once fit returns: wait for retried groups that no batch took.
  if (!catchUpTaken) await Promise.all(retried);

  const complete =
    appliedAll >= planned && store.pendingGroups().length === 0 && session.failures.length === 0;
  const status = complete ? "finished" : session.stopping ? "stopped" : "incomplete";
  return endFit(run, store, fitResult(run, store, { status, plan, applied: appliedAll, appliedNow, runDir }));
}
