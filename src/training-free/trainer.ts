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
import { writeJsonAtomic } from "../io/files.ts";
import type { Pricing } from "../llm/config.ts";
import { TRAINING_FREE_DEFAULTS } from "./defaults.ts";
import { accuracyAtK } from "./evaluate.ts";
import { type Experience, ExperienceLibrary, renderLessons } from "./experience-library.ts";
import { batchPlanner } from "./fit-result.ts";
import { fitRunDir } from "./fit-run-dir.ts";
import { fitWithStore } from "./fit-store.ts";
import { type FitRun, seedOf } from "./group.ts";
import { type Learner, learnerAsk } from "./learner.ts";
import type { TaskView } from "./learner-prompts.ts";
import { type LearningForm, type LearningOptions, learningForm } from "./learning.ts";
import { RunStore } from "./run-store.ts";
import { Session, SKIPPED } from "./session.ts";
import type {
  AttemptRecord,
  CostTotals,
  EvaluationArm,
  EvaluationResult,
  ExperiencesView,
  FailureRecord,
  FitResult,
  GroupStore,
  RewardFn,
  RolloutFn,
  TrainingFreeEvent,
} from "./types.ts";
import { addCost, emptyCost } from "./usage.ts";

export { seedOf };

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
  /** The kind of a task (e.g. its data set), recorded as the `problem_type` of the lessons it teaches. */
  taskType?: (task: T) => string | undefined;
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

export interface FitOptions<T = unknown, O = unknown> {
  epochs?: number;
  /** Attempts per group: a number, or one per task (e.g. one attempt per upstream result it has). */
  groupSize?: number | ((task: T) => number);
  batchSize?: number;
  concurrency?: number;
  /** Where the run is recorded; without it (and without a store) nothing survives the process. */
  runDir?: string;
  /**
   * The caller's own records in place of a run directory (see GroupStore): groups resume from
   * what it recalls, and each batch sees the library as it is when the batch starts.
   */
  store?: GroupStore<T, O>;
  /** false: attempts and rewards only (a baseline, an evaluation arm); the library is not changed. */
  learn?: boolean;
  onEvent?: (e: TrainingFreeEvent) => void;
  /**
   * Each failure as it is recorded, with the error behind it: for a caller that counts failures
   * its own way and stops the run through `signal` (with `maxFailures: Infinity`).
   */
  onFailure?: (failure: FailureRecord, err: unknown) => void;
  seed?: number;
  shuffle?: boolean;
  batchesInFlight?: number;
  /** Failures after which the run stops (10); Infinity never stops on a count. */
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

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
  return v;
}

function failureLimit(v: number): number {
  if (v === Number.POSITIVE_INFINITY || (Number.isInteger(v) && v >= 0)) return v;
  throw new RangeError(`maxFailures must be an integer ≥ 0 or Infinity, got ${v}`);
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
    return this.opts.render ? this.opts.render(entries) : renderLessons(entries);
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

  async fit(tasks: readonly T[], options: FitOptions<T, O> = {}): Promise<FitResult> {
    const d = TRAINING_FREE_DEFAULTS;
    const epochs = positiveInt("epochs", options.epochs ?? d.epochs);
    const groupSize = options.groupSize ?? d.groupSize;
    const batchSize = positiveInt("batchSize", options.batchSize ?? d.batchSize);
    const concurrency = positiveInt("concurrency", options.concurrency ?? d.concurrency);
    const inFlight = positiveInt("batchesInFlight", options.batchesInFlight ?? d.batchesInFlight);
    const maxFailures = failureLimit(options.maxFailures ?? d.maxFailures);
    const seed = options.seed ?? d.seed;
    const shuffle = options.shuffle ?? d.shuffle;
    const learn = options.learn ?? true;
    if (tasks.length === 0) throw new Error("fit: no tasks given");
    if (options.store && options.runDir !== undefined)
      throw new TypeError("fit: give a runDir or a store, not both: each is the record of the run");
    const ids = this.ids(tasks);
    const sizes = tasks.map((t, i) =>
      positiveInt(
        typeof groupSize === "number" ? "groupSize" : `groupSize of task ${ids[i]}`,
        typeof groupSize === "number" ? groupSize : groupSize(t),
      ),
    );

    const store = new RunStore(options.store ? undefined : options.runDir);
    store.open(
      {
        tasks: seedOf(...ids),
        taskCount: ids.length,
        groupSize: typeof groupSize === "number" ? groupSize : `per task ${seedOf(...sizes).toString(16)}`,
        batchSize,
        batchesInFlight: inFlight,
        seed,
        shuffle,
        learning: this.form.name,
        trigger: this.form.trigger,
        groundTruth: this.form.brief.groundTruth,
        library: this.library.agent,
        ...(learn ? {} : { learn: false }),
      },
      "training-free run",
    );
    const session = this.session(store, {
      concurrency,
      learnerConcurrency: positiveInt("learnerConcurrency", options.learnerConcurrency ?? concurrency),
      maxFailures,
      ...(this.opts.learnerMaxTokens !== undefined ? { learnerMaxTokens: this.opts.learnerMaxTokens } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.onFailure ? { onFailure: options.onFailure } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const taskTypes = new Map<string, string>();
    if (this.opts.taskType)
      tasks.forEach((t, i) => {
        const type = this.opts.taskType!(t);
        if (type !== undefined) taskTypes.set(ids[i]!, type);
      });
    const run: FitRun<T, O> = {
      tasks,
      ids,
      sizes,
      session,
      form: this.form,
      library: this.library,
      seed,
      learn,
      view: (own) => this.view(own),
      taskView: (task, id) => this.taskView(task, id),
      taskTypes,
      now: this.now,
    };
    const plan = batchPlanner(tasks.length, { epochs, batchSize, inFlight, shuffle, seed });
    const result = options.store
      ? await fitWithStore(run, options.store, store, plan)
      : await fitRunDir(run, store, plan, options.runDir);
    session.rethrowListenerError();
    return result;
  }

  private session(
    store: RunStore,
    o: Omit<
      ConstructorParameters<typeof Session<T, O>>[0],
      "store" | "rollout" | "reward" | "ask" | "learnerTemperature" | "now" | "rolloutPricing"
    >,
  ): Session<T, O> {
    return new Session<T, O>({
      store,
      rollout: this.opts.rollout,
      reward: this.opts.reward,
      ask: learnerAsk(this.opts.learner, this.opts.learnerPricing),
      learnerTemperature: this.opts.learnerTemperature ?? TRAINING_FREE_DEFAULTS.learnerTemperature,
      ...(this.opts.rolloutPricing ? { rolloutPricing: this.opts.rolloutPricing } : {}),
      now: this.now,
      ...o,
    });
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
    const session = this.session(store, {
      concurrency,
      learnerConcurrency: 1,
      maxFailures: failureLimit(options.maxFailures ?? d.maxFailures),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
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
