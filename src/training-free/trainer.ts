/**
 * Training-free GRPO for any agent. The agent's weights never change; what is learned is an
 * experience library that goes into its prompt.
 *
 * Per batch of tasks: a group of attempts per task with the current library, a score for each,
 * the group's μ and σ, the learning step on the groups that carry signal, and one update of the
 * library. Everything done is recorded under `runDir` as it finishes (see run-store.ts), so a
 * killed run rerun with the same arguments continues where it stopped without asking any model
 * again for what is recorded, and ends with the library an uninterrupted run would have.
 */
import { groupStats } from "../core/advantages.ts";
import { Rng } from "../core/rng.ts";
import { writeJsonAtomic } from "../io/files.ts";
import type { Pricing } from "../llm/config.ts";
import { TRAINING_FREE_DEFAULTS } from "./defaults.ts";
import { accuracyAtK } from "./evaluate.ts";
import { type Experience, ExperienceLibrary, type HistoryEntry } from "./experience-library.ts";
import { type Learner, learnerAsk } from "./learner.ts";
import type { AttemptView, TaskView } from "./learner-prompts.ts";
import { type GroupProposal, type LearningForm, type LearningOptions, learningForm } from "./learning.ts";
import {
  type AttemptRecord,
  groupKey,
  type PendingGroup,
  RunStore,
  type VersionRecord,
} from "./run-store.ts";
import { Session, SKIPPED, StopError } from "./session.ts";
import { decideExtraction } from "./triggers.ts";
import type {
  CostTotals,
  EvaluationArm,
  EvaluationResult,
  ExperiencesView,
  FitResult,
  GroupSummary,
  LibraryChange,
  RewardFn,
  RolloutFn,
  TrainingFreeEvent,
} from "./types.ts";
import { addCost, emptyCost } from "./usage.ts";

export interface TrainingFreeGRPOOptions<T, O> {
  /** The user's agent: any code that attempts a task with the given experiences. */
  rollout: RolloutFn<T, O>;
  /** The verifier: a number, or { score, correct?, details? }; may be async (an LLM judge). */
  reward: RewardFn<T, O>;
  /** The chat model that writes the lessons: `openAICompatible({ … })`, any ChatClient or function. */
  learner: Learner;
  /** The library that learns: an instance, or the path of its JSON file. */
  library: ExperienceLibrary | string;
  /** Libraries the agent also reads (e.g. lessons shared by several agents); never changed here. */
  readLibraries?: readonly ExperienceLibrary[];
  learning?: LearningOptions;
  /** A task's stable id (resuming matches attempts by it): `task.id` by default. */
  taskId?: (task: T) => string;
  /** The task as the learner reads it: its question / problem / input / prompt / text field by default. */
  taskText?: (task: T) => string;
  /** The expected answer as the learner reads it: its answer / ground_truth / expected field by default. */
  groundTruth?: (task: T) => string | undefined;
  learnerTemperature?: number;
  learnerMaxTokens?: number;
  /** Prices the learner's tokens when the learner is not a priced client. */
  learnerPricing?: Pricing;
  /** Prices the tokens the attempts report, when they report no cost. */
  rolloutPricing?: Pricing;
  /** How lessons appear in `ctx.experiences.text`: one `[id] lesson` per line by default. */
  render?: (entries: readonly Experience[]) => string;
  /** The clock of every record and lesson (tests pass a fixed one). */
  now?: () => Date;
}

export interface FitOptions {
  epochs?: number;
  groupSize?: number;
  batchSize?: number;
  concurrency?: number;
  /** Where the run is recorded; without it nothing survives the process. */
  runDir?: string;
  onEvent?: (e: TrainingFreeEvent) => void;
  seed?: number;
  shuffle?: boolean;
  batchesInFlight?: number;
  maxFailures?: number;
  /** Learner calls in flight at once (the client's own limit applies too): `concurrency` by default. */
  learnerConcurrency?: number;
  signal?: AbortSignal;
}

export interface EvaluateOptions {
  k?: number;
  /** Which arms to run: with the library, without it, or both on the same tasks and seeds. */
  withExperiences?: "both" | "with" | "without";
  concurrency?: number;
  /** Where the evaluation is recorded (and resumed from); its result goes to evaluation.json there. */
  runDir?: string;
  /** Writes the result here too (or only here, without a runDir). */
  file?: string;
  seed?: number;
  onEvent?: (e: TrainingFreeEvent) => void;
  maxFailures?: number;
  signal?: AbortSignal;
}

/** A 32-bit seed from its parts (FNV-1a), the same on every machine. */
export function seedOf(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  const s = parts.join("\u0000");
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
  return v;
}

function firstString(task: unknown, fields: readonly string[]): string | undefined {
  if (!task || typeof task !== "object") return undefined;
  for (const f of fields) {
    const v = (task as Record<string, unknown>)[f];
    if (typeof v === "string" && v !== "") return v;
    if (typeof v === "number") return String(v);
  }
  return undefined;
}

const TEXT_FIELDS = ["question", "problem", "input", "prompt", "text", "task"] as const;
const ANSWER_FIELDS = ["answer", "ground_truth", "expected", "solution"] as const;

function defaultTaskId(task: unknown, index: number): string {
  const id = (task as { id?: unknown } | null)?.id;
  if (typeof id === "string" && id !== "") return id;
  if (typeof id === "number" && Number.isFinite(id)) return String(id);
  throw new TypeError(
    `task ${index} has no id (a string or number field \`id\`): give TrainingFreeGRPO a taskId: (task) => string, ` +
      "since resuming a run matches attempts by task id",
  );
}

/** Outcome of one group in one batch. */
type GroupOutcome =
  | { state: "unfinished"; key: string }
  | { state: "failed"; pending: PendingGroup }
  | { state: "no-signal"; key: string }
  | { state: "proposal"; key: string; proposal: GroupProposal; pending: PendingGroup };

function emptyChange(): LibraryChange {
  return { added: [], modified: [], deleted: [], merged: [], warnings: [] };
}

export class TrainingFreeGRPO<T, O = unknown> {
  readonly library: ExperienceLibrary;
  readonly readLibraries: readonly ExperienceLibrary[];
  private readonly opts: TrainingFreeGRPOOptions<T, O>;
  private readonly form: LearningForm;
  private readonly now: () => Date;

  constructor(opts: TrainingFreeGRPOOptions<T, O>) {
    if (typeof opts?.rollout !== "function")
      throw new TypeError("TrainingFreeGRPO: rollout (task, ctx) => attempt is required");
    if (typeof opts.reward !== "function")
      throw new TypeError("TrainingFreeGRPO: reward (task, attempt) => score is required");
    if (!opts.learner)
      throw new TypeError(
        "TrainingFreeGRPO: learner is required (e.g. openAICompatible({ baseURL, apiKey, model }))",
      );
    if (!opts.library)
      throw new TypeError("TrainingFreeGRPO: library (an ExperienceLibrary or a path) is required");
    this.opts = opts;
    this.library = typeof opts.library === "string" ? ExperienceLibrary.load(opts.library) : opts.library;
    this.readLibraries = opts.readLibraries ?? [];
    this.form = learningForm(opts.learning ?? {}, this.library.limits);
    this.now = opts.now ?? (() => new Date());
    learnerAsk(opts.learner); // fails now, not mid-run, on a learner of the wrong shape
  }

  private taskId(task: T, index: number): string {
    return this.opts.taskId ? this.opts.taskId(task) : defaultTaskId(task, index);
  }

  private taskView(task: T, id: string): TaskView {
    const text = this.opts.taskText?.(task) ?? firstString(task, TEXT_FIELDS) ?? JSON.stringify(task);
    const answer = this.opts.groundTruth ? this.opts.groundTruth(task) : firstString(task, ANSWER_FIELDS);
    return { id, text, ...(answer !== undefined ? { answer } : {}) };
  }

  private render(entries: readonly Experience[]): string {
    return this.opts.render
      ? this.opts.render(entries)
      : entries.map((e) => `[${e.id}] ${e.content}`).join("\n");
  }

  /** What the agent is given: the learning library's lessons (as of a version) and the read-only ones. */
  private view(own: readonly Experience[]): ExperiencesView {
    const entries = [...own, ...this.readLibraries.flatMap((l) => l.entries())];
    return { text: this.render(entries), entries };
  }

  /** The experiences as the agent gets them now (the library's current lessons and the read-only ones). */
  experiences(): ExperiencesView {
    return this.view(this.library.entries());
  }

  private ids(tasks: readonly T[]): string[] {
    const ids = tasks.map((t, i) => this.taskId(t, i));
    const seen = new Map<string, number>();
    ids.forEach((id, i) => {
      const j = seen.get(id);
      if (j !== undefined)
        throw new Error(`tasks ${j} and ${i} share the id ${JSON.stringify(id)}; task ids must be unique`);
      seen.set(id, i);
    });
    return ids;
  }

  async fit(tasks: readonly T[], options: FitOptions = {}): Promise<FitResult> {
    const d = TRAINING_FREE_DEFAULTS;
    const epochs = positiveInt("epochs", options.epochs ?? d.epochs);
    const groupSize = positiveInt("groupSize", options.groupSize ?? d.groupSize);
    const batchSize = positiveInt("batchSize", options.batchSize ?? d.batchSize);
    const concurrency = positiveInt("concurrency", options.concurrency ?? d.concurrency);
    const inFlight = positiveInt("batchesInFlight", options.batchesInFlight ?? d.batchesInFlight);
    const maxFailures = options.maxFailures ?? d.maxFailures;
    const seed = options.seed ?? d.seed;
    const shuffle = options.shuffle ?? d.shuffle;
    if (tasks.length === 0) throw new Error("fit: no tasks given");
    const ids = this.ids(tasks);

    const store = new RunStore(options.runDir);
    store.open(
      {
        tasks: seedOf(...ids),
        taskCount: ids.length,
        groupSize,
        batchSize,
        batchesInFlight: inFlight,
        seed,
        shuffle,
        learning: this.form.name,
        trigger: this.form.trigger,
        groundTruth: this.form.brief.groundTruth,
        library: this.library.agent,
      },
      "training-free run",
    );
    const session = new Session<T, O>({
      store,
      rollout: this.opts.rollout,
      reward: this.opts.reward,
      ask: learnerAsk(this.opts.learner, this.opts.learnerPricing),
      concurrency,
      learnerConcurrency: positiveInt("learnerConcurrency", options.learnerConcurrency ?? concurrency),
      learnerTemperature: this.opts.learnerTemperature ?? d.learnerTemperature,
      ...(this.opts.learnerMaxTokens !== undefined ? { learnerMaxTokens: this.opts.learnerMaxTokens } : {}),
      ...(this.opts.rolloutPricing ? { rolloutPricing: this.opts.rolloutPricing } : {}),
      maxFailures,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      now: this.now,
    });

    // The library as the run left it, or as it is now for a new run (version 0).
    if (store.versions.length === 0) {
      const snap = this.library.snapshot();
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
        time: this.now().toISOString(),
      });
    } else {
      const last = store.versions.length - 1;
      const before = JSON.stringify(this.library.entries());
      this.library.restore(store.stateAt(last));
      if (JSON.stringify(this.library.entries()) !== before)
        session.emit({
          type: "warning",
          message: `${this.library.agent}: library restored from version ${last} recorded in ${options.runDir}`,
        });
    }

    const perEpoch = Math.ceil(tasks.length / batchSize);
    const planned = epochs * perEpoch;
    const orders = new Map<number, number[]>();
    const batchTasks = (g: number): { epoch: number; items: number[] } => {
      const epoch = Math.floor(g / perEpoch) + 1;
      let order = orders.get(epoch);
      if (!order) {
        order = tasks.map((_, i) => i);
        if (shuffle) new Rng(seedOf(seed, "order", epoch)).shuffle(order);
        orders.set(epoch, order);
      }
      const j = g % perEpoch;
      return { epoch, items: order.slice(j * batchSize, (j + 1) * batchSize) };
    };

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
    const taskIndex = new Map(ids.map((id, i) => [id, i]));

    if (applied >= planned && pendingBefore.length === 0) {
      session.emit({
        type: "already-finished",
        ...(options.runDir ? { runDir: options.runDir } : {}),
        batches: applied,
        librarySize: this.library.entries().length,
      });
      return this.fitResult(
        session,
        "already-finished",
        epochs,
        epochs * tasks.length,
        planned,
        applied,
        0,
        options.runDir,
      );
    }
    session.emit({
      type: "run-start",
      ...(options.runDir ? { runDir: options.runDir } : {}),
      epochs,
      batches: planned,
      tasks: tasks.length,
      groupSize,
      resumedBatches: applied,
      retriedGroups: pendingBefore.length,
    });

    const runGroup = async (
      epoch: number,
      batch: number,
      index: number,
      version: number,
    ): Promise<GroupOutcome> => {
      const task = tasks[index]!;
      const id = ids[index]!;
      const key = groupKey(epoch, id);
      const own = store.versions[version]!.experiences;
      const view = this.view(own);
      const attempts = await Promise.all(
        Array.from({ length: groupSize }, (_, i) =>
          session.attempt({
            scope: "train",
            epoch,
            task,
            taskId: id,
            index: i,
            groupSize,
            seed: seedOf(seed, epoch, id, i),
            version,
            view,
            mode: "train",
          }),
        ),
      );
      const pending = (reason: string): PendingGroup => ({ key, epoch, batch, task: id, version, reason });
      if (attempts.some((a) => a === SKIPPED)) return { state: "unfinished", key };
      const recs = attempts as AttemptRecord[];
      const failed = recs.filter((r) => r.status === "failed");
      if (failed.length > 0)
        return {
          state: "failed",
          pending: pending(`${failed.length} attempt(s) failed: ${failed[0]!.stage}: ${failed[0]!.error}`),
        };
      const scores = recs.map((r) => r.score!);
      const correct = recs.map((r) => r.correct!);
      const { mean, std } = groupStats(scores);
      const decision = decideExtraction(scores, correct, this.form.trigger);
      const summary: GroupSummary = {
        epoch,
        batch,
        task: id,
        scores,
        correct,
        mean,
        std,
        learn: decision.extract,
        reason: decision.reason,
      };
      store.putGroup(summary);
      session.emit({ type: "group", ...summary });
      if (!decision.extract) return { state: "no-signal", key };
      const views: AttemptView[] = recs.map((r) => ({
        number: r.index + 1,
        output: r.output,
        trajectory: r.trajectory ?? "",
        score: r.score!,
        correct: r.correct!,
        ...(r.details !== undefined ? { details: r.details } : {}),
      }));
      try {
        const proposal = await this.form.perGroup(
          {
            task: this.taskView(task, id),
            attempts: views,
            library: own.map((e) => `[${e.id}] ${e.content}`).join("\n"),
          },
          session.stepCall(`e${epoch}/${id}`, { epoch, task: id }),
        );
        for (const w of proposal.warnings) session.emit({ type: "warning", message: `${id}: ${w}` });
        return { state: "proposal", key, proposal, pending: pending("its learning step failed") };
      } catch (err) {
        if (err instanceof StopError) return { state: "unfinished", key };
        return { state: "failed", pending: pending(`learning step failed: ${(err as Error).message}`) };
      }
    };

    // Groups of earlier calls that waited for a failed part: retried with the library they saw,
    // and learnt from in the first update of this call.
    const retried = pendingBefore
      .filter((p) => taskIndex.has(p.task))
      .map((p) => runGroup(p.epoch, p.batch, taskIndex.get(p.task)!, p.version));

    let appliedNow = 0;
    let catchUpTaken = false;
    const applyBatch = async (g: number, outcomes: GroupOutcome[]): Promise<boolean> => {
      if (session.stopping && outcomes.some((o) => o.state === "unfinished")) return false;
      let catchUp: GroupOutcome[] = [];
      if (!catchUpTaken) {
        catchUpTaken = true;
        catchUp = await Promise.all(retried);
      }
      const all = [...catchUp, ...outcomes];
      if (session.stopping && all.some((o) => o.state === "unfinished")) return false;
      const epoch = g < 0 ? batchTasks(planned - 1).epoch : batchTasks(g).epoch;
      const label = g < 0 ? `catch-up after batch ${planned}` : `epoch ${epoch} batch ${(g % perEpoch) + 1}`;
      const proposals = all.filter((o) => o.state === "proposal");
      const change = emptyChange();
      const pending: PendingGroup[] = [];
      let learntFrom: string[] = [];
      const historyBefore = this.library.operationHistory().length;
      try {
        const plan = await this.form.perBatch(
          proposals.map((o) => o.proposal),
          this.library,
          session.stepCall(g < 0 ? `catch-up${store.versions.length}` : `b${g}`, { epoch, task: label }),
          label,
        );
        change.warnings.push(...plan.warnings);
        for (const src of plan.sources) {
          const r = this.library.apply(src.ops, { problemId: src.problemId, now: this.now });
          change.added.push(...r.added);
          change.modified.push(...r.modified);
          change.deleted.push(...r.deleted);
          change.merged.push(...r.merged);
          change.warnings.push(...r.warnings);
        }
        learntFrom = proposals.map((o) => o.key);
      } catch (err) {
        if (err instanceof StopError) return false;
        // The merge failed: the library stays as it was and these groups teach on a rerun.
        pending.push(...proposals.map((o) => o.pending));
      }
      for (const o of all) if (o.state === "failed") pending.push(o.pending);
      const pendingKeys = new Set(pendingBefore.map((p) => p.key));
      const resolved = catchUp
        .filter((o) => o.state === "no-signal" || (o.state === "proposal" && learntFrom.includes(o.key)))
        .map((o) => (o as { key: string }).key)
        .filter((k) => pendingKeys.has(k));
      const version = store.versions.length;
      const snap = this.library.snapshot();
      const record: VersionRecord = {
        version,
        kind: g < 0 ? "catch-up" : "batch",
        epoch,
        batch: g < 0 ? planned - 1 : g,
        experiences: snap.experiences,
        history: snap.history.slice(historyBefore) as HistoryEntry[],
        learntFrom,
        noSignal: all.filter((o) => o.state === "no-signal").map((o) => (o as { key: string }).key),
        // A group already waiting stays recorded where it first failed.
        pending: pending.filter((p) => !pendingKeys.has(p.key)),
        resolved,
        change,
        time: this.now().toISOString(),
      };
      store.putVersion(record);
      if (g >= 0) versionAfter.set(g, version);
      if (this.library.path !== undefined) await this.library.saveAsync();
      for (const w of change.warnings) session.emit({ type: "warning", message: w });
      session.emit({
        type: "library",
        version,
        epoch,
        batch: record.batch,
        size: this.library.entries().length,
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
      const { epoch, items } = batchTasks(g);
      const version = seenVersion(g);
      const groups = Promise.all(items.map((i) => runGroup(epoch, g, i, version)));
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
    const result = this.fitResult(
      session,
      status,
      epochs,
      epochs * tasks.length,
      planned,
      appliedAll,
      appliedNow,
      options.runDir,
    );
    store.writeResult("summary.json", result);
    session.emit({ type: "run-end", complete: result.complete });
    session.rethrowListenerError();
    return result;
  }

  private fitResult(
    session: Session<T, O>,
    status: FitResult["status"],
    epochs: number,
    plannedGroups: number,
    planned: number,
    applied: number,
    appliedNow: number,
    runDir: string | undefined,
  ): FitResult {
    const store = session.store;
    const train = [...store.attempts.values()].filter((a) => a.scope === "train");
    const byGroup = new Map<string, AttemptRecord[]>();
    for (const a of train) {
      const k = groupKey(a.epoch, a.task);
      const list = byGroup.get(k);
      if (list) list.push(a);
      else byGroup.set(k, [a]);
    }
    const rollouts = emptyCost();
    for (const a of train) addCost(rollouts, a.usage);
    const learner = emptyCost();
    for (const r of store.learner.values()) addCost(learner, r.usage);
    const learntFrom = new Set(store.versions.flatMap((v) => v.learntFrom));
    const noSignal = new Set(store.versions.flatMap((v) => v.noSignal));
    const pending = store.pendingGroups().length;
    const last = store.versions[store.versions.length - 1];
    return {
      status,
      complete: status === "finished" || (status === "already-finished" && pending === 0),
      ...(session.stopReason ? { stopReason: session.stopReason } : {}),
      ...(runDir ? { runDir } : {}),
      epochs,
      batches: { planned, applied, appliedNow },
      groups: {
        planned: plannedGroups,
        complete: [...byGroup.values()].filter((l) => l.every((a) => a.status === "ok")).length,
        learntFrom: learntFrom.size,
        noSignal: noSignal.size,
        pending,
      },
      attempts: {
        ok: train.filter((a) => a.status === "ok").length,
        failed: train.filter((a) => a.status === "failed").length,
        madeNow: session.madeNow,
        fromRecords: session.fromRecords,
      },
      failures: session.failureSummary(),
      library: {
        size: this.library.entries().length,
        version: last ? last.version : 0,
        ...(this.library.path !== undefined ? { path: this.library.path } : {}),
      },
      cost: { rollouts, learner },
    };
  }

  /**
   * Mean@k and Pass@k of the agent on `tasks`, with the library and without it, on the same
   * tasks and the same seeds (attempt j of a task has one seed in both arms). Nothing is learned.
   */
  async evaluate(tasks: readonly T[], options: EvaluateOptions = {}): Promise<EvaluationResult> {
    const d = TRAINING_FREE_DEFAULTS;
    const k = positiveInt("k", options.k ?? d.k);
    const concurrency = positiveInt("concurrency", options.concurrency ?? d.concurrency);
    const seed = options.seed ?? d.seed;
    const arms = options.withExperiences ?? "both";
    if (!["both", "with", "without"].includes(arms))
      throw new RangeError(
        `withExperiences must be "both", "with" or "without", got ${JSON.stringify(arms)}`,
      );
    if (tasks.length === 0) throw new Error("evaluate: no tasks given");
    const ids = this.ids(tasks);
    const store = new RunStore(options.runDir);
    store.open({ tasks: seedOf(...ids), taskCount: ids.length, k, seed }, "evaluation");
    const session = new Session<T, O>({
      store,
      rollout: this.opts.rollout,
      reward: this.opts.reward,
      ask: learnerAsk(this.opts.learner, this.opts.learnerPricing),
      concurrency,
      learnerConcurrency: 1,
      learnerTemperature: this.opts.learnerTemperature ?? d.learnerTemperature,
      ...(this.opts.rolloutPricing ? { rolloutPricing: this.opts.rolloutPricing } : {}),
      maxFailures: options.maxFailures ?? d.maxFailures,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      now: this.now,
    });
    const withView = this.experiences();
    // Attempts with the library are recorded under its content, so that a changed library is
    // evaluated anew while the arm without it is reused.
    const withScope = `with:${seedOf(withView.text).toString(16)}`;
    const runArm = async (scope: string, view: ExperiencesView): Promise<EvaluationArm> => {
      const perTask = await Promise.all(
        tasks.map(async (task, ti) => {
          const id = ids[ti]!;
          const recs = await Promise.all(
            Array.from({ length: k }, (_, j) =>
              session.attempt({
                scope,
                epoch: 0,
                task,
                taskId: id,
                index: j,
                groupSize: k,
                seed: seedOf(seed, "eval", id, j),
                version: -1,
                view,
                mode: "eval",
              }),
            ),
          );
          return { id, recs: recs.filter((r): r is AttemptRecord => r !== SKIPPED) };
        }),
      );
      const cost = emptyCost();
      for (const t of perTask) for (const r of t.recs) addCost(cost, r.usage);
      const acc = accuracyAtK(
        perTask.map((t) => ({
          rollouts: t.recs.map((r) => ({ is_correct: r.status === "ok" && r.correct === true })),
        })),
        k,
      );
      return {
        meanAtK: acc.meanAtK,
        passAtK: acc.passAtK,
        attempts: perTask.reduce((n, t) => n + t.recs.length, 0),
        failed: perTask.reduce((n, t) => n + t.recs.filter((r) => r.status === "failed").length, 0),
        perTask: perTask.map((t) => ({
          task: t.id,
          correct: t.recs.filter((r) => r.status === "ok" && r.correct).length,
          failed: t.recs.filter((r) => r.status === "failed").length,
        })),
        cost,
      };
    };
    const [w, wo] = await Promise.all([
      arms === "without" ? undefined : runArm(withScope, withView),
      arms === "with" ? undefined : runArm("without", { text: "", entries: [] }),
    ]);
    const cost: CostTotals = emptyCost();
    for (const arm of [w, wo]) {
      if (!arm) continue;
      cost.calls += arm.cost.calls;
      cost.promptTokens += arm.cost.promptTokens;
      cost.completionTokens += arm.cost.completionTokens;
      cost.costUSD += arm.cost.costUSD;
      cost.priced ||= arm.cost.priced;
    }
    const expected = (w ? tasks.length * k : 0) + (wo ? tasks.length * k : 0);
    const made = (w?.attempts ?? 0) + (wo?.attempts ?? 0);
    const failed = (w?.failed ?? 0) + (wo?.failed ?? 0);
    const result: EvaluationResult = {
      k,
      tasks: tasks.length,
      seed,
      complete: made === expected && failed === 0,
      librarySize: withView.entries.length,
      ...(w ? { with: w } : {}),
      ...(wo ? { without: wo } : {}),
      ...(w && wo ? { delta: { meanAtK: w.meanAtK - wo.meanAtK, passAtK: w.passAtK - wo.passAtK } } : {}),
      cost,
      failures: session.failureSummary(),
    };
    const file = store.writeResult("evaluation.json", result);
    if (options.file) writeJsonAtomic(options.file, { ...result, file: options.file });
    const shown = options.file ?? file;
    if (shown) result.file = shown;
    session.emit({ type: "run-end", complete: result.complete });
    session.rethrowListenerError();
    return result;
  }
}
