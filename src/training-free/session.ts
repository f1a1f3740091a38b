/**
 * One call of fit() or evaluate(): the records it reads and writes, the attempts in flight,
 * the learner calls, the failures, and the decision to stop. Nothing here knows about batches
 * or arms; the trainer arranges those.
 */
import { setMaxListeners } from "node:events";
import type { Pricing } from "../llm/config.ts";
import { Limiter } from "../llm/limiter.ts";
import { errorText } from "../llm/messages.ts";
import type { ChatMessage } from "../llm/port.ts";
import type { Ask } from "./learner.ts";
import type { StepCall } from "./learning.ts";
import { attemptKey, type RunStore, requestHash } from "./run-store.ts";
import type {
  Attempt,
  AttemptRecord,
  ExperiencesView,
  FailureRecord,
  FailureStage,
  FailureSummary,
  RewardFn,
  RolloutContext,
  RolloutFn,
  TrainingFreeEvent,
} from "./types.ts";
import { normaliseUsage } from "./usage.ts";

/** Thrown into work that was cut short because the run is stopping; never recorded. */
export class StopError extends Error {
  constructor(reason: string) {
    super(`stopped: ${reason}`);
    this.name = "StopError";
  }
}

/**
 * A failure that every further call would repeat: a rejected key (401/403), an unknown model or
 * path (404), or an error that says so itself (`fatal: true`).
 */
export function isFatal(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const o = e as {
      fatal?: unknown;
      kind?: unknown;
      status?: unknown;
      statusCode?: unknown;
      cause?: unknown;
    };
    if (o.fatal === true || o.kind === "auth") return true;
    const status = typeof o.status === "number" ? o.status : o.statusCode;
    if (status === 401 || status === 403 || status === 404) return true;
    e = o.cause;
  }
  return false;
}

/** The kind of a failure, to count failures by: of the error, or of the first error it wraps that has one. */
function causeOf(stage: FailureStage, err: unknown): string {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    const o = e as { kind?: unknown; status?: unknown; cause?: unknown };
    if (typeof o.kind === "string") return o.kind;
    if (typeof o.status === "number") return `HTTP ${o.status}`;
    e = o.cause;
  }
  return `${stage} threw`;
}

/** An attempt's output as the learner reads it when the attempt gave no trajectory. */
export function outputText(output: unknown): string {
  return typeof output === "string" ? output : JSON.stringify(output);
}

/** A learner call that failed, with the step it belonged to; the step's failure is counted once. */
export class LearnerStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(errorText(cause));
    this.name = "LearnerStepError";
  }
}

export interface SessionOptions<T, O> {
  store: RunStore;
  rollout: RolloutFn<T, O>;
  reward: RewardFn<T, O>;
  ask: Ask;
  concurrency: number;
  learnerConcurrency: number;
  learnerTemperature: number;
  learnerMaxTokens?: number;
  rolloutPricing?: Pricing;
  /** Failures after which the run stops; Infinity leaves stopping to the caller (onFailure, signal). */
  maxFailures: number;
  onEvent?: (e: TrainingFreeEvent) => void;
  onFailure?: (failure: FailureRecord, err: unknown) => void;
  signal?: AbortSignal;
  now: () => Date;
}

export interface AttemptSpec<T> {
  scope: string;
  epoch: number;
  task: T;
  taskId: string;
  index: number;
  groupSize: number;
  seed: number;
  version: number;
  view: ExperiencesView;
  mode: "train" | "eval";
}

/** An attempt not made because the run stopped first; made on the next run. */
export const SKIPPED = Symbol("skipped");

export class Session<T, O> {
  readonly store: RunStore;
  readonly failures: FailureRecord[] = [];
  madeNow = 0;
  fromRecords = 0;
  stopReason: string | undefined;
  private readonly limiter: Limiter;
  private readonly learnerLimiter: Limiter;
  private readonly controller = new AbortController();
  /**
   * The signals of the attempts in flight, aborted together when the run stops: one listener on
   * the run's signal, not one per attempt (node's EventTarget scans its listeners on every add
   * and remove, so hundreds of attempts in flight made each of them cost hundreds of steps).
   */
  private readonly attemptControllers = new Set<AbortController>();
  /** The first error a caller's callback (listener, hook) threw: rethrown once the run is recorded. */
  private callerError: unknown;

  constructor(private readonly opts: SessionOptions<T, O>) {
    this.store = opts.store;
    this.limiter = new Limiter(opts.concurrency);
    this.learnerLimiter = new Limiter(opts.learnerConcurrency);
    // Every learner call in flight listens to this signal; more than ten is normal.
    setMaxListeners(0, this.controller.signal);
    this.controller.signal.addEventListener(
      "abort",
      () => {
        for (const c of this.attemptControllers) c.abort(this.controller.signal.reason);
      },
      { once: true },
    );
    if (opts.signal) {
      const onAbort = () => this.stop("the caller's signal aborted the run");
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener("abort", onAbort, { once: true });
    }
  }

  get stopping(): boolean {
    return this.stopReason !== undefined;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  emit(e: TrainingFreeEvent): void {
    if (!this.opts.onEvent) return;
    try {
      this.opts.onEvent(e);
    } catch (err) {
      this.callerFailed("onEvent", err);
    }
  }

  /** A broken callback must not leave the run half-recorded: stop cleanly, rethrow at the end. */
  private callerFailed(what: string, err: unknown): void {
    if (this.callerError === undefined) this.callerError = err;
    this.stop(`${what} threw: ${errorText(err)}`);
  }

  /** Runs a caller's hook; false when it threw (the run then stops and fit rethrows the error). */
  async hook(what: string, fn: () => void | Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      this.callerFailed(what, err);
      return false;
    }
  }

  /** Rethrows what a listener or hook threw, once the run has been recorded. */
  rethrowListenerError(): void {
    if (this.callerError !== undefined) throw this.callerError;
  }

  stop(reason: string): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    this.emit({ type: "stopping", reason });
    this.controller.abort(new StopError(reason));
  }

  private fail(f: FailureRecord, err: unknown): void {
    this.failures.push(f);
    this.emit({ type: "failure", failure: f });
    if (this.opts.onFailure) {
      try {
        this.opts.onFailure(f, err);
      } catch (e) {
        this.callerFailed("onFailure", e);
      }
    }
    if (f.fatal) this.stop(`fatal error (${f.stage} of ${f.task}): ${f.error}`);
    else if (this.failures.length > this.opts.maxFailures)
      this.stop(`more than ${this.opts.maxFailures} failures (the last: ${errorText(err)})`);
  }

  /** Whether `err` only says that this run is stopping (then nothing is recorded). */
  private cutShort(err: unknown): boolean {
    return this.stopping && (err instanceof StopError || this.controller.signal.aborted);
  }

  failureSummary(): FailureSummary {
    const byStage: Record<FailureStage, number> = { rollout: 0, reward: 0, learner: 0 };
    const byCause: Record<string, number> = {};
    for (const f of this.failures) {
      byStage[f.stage]++;
      byCause[f.cause] = (byCause[f.cause] ?? 0) + 1;
    }
    return {
      count: this.failures.length,
      byStage,
      byCause,
      ...(this.failures[0] ? { first: this.failures[0] } : {}),
      list: [...this.failures],
    };
  }

  /**
   * One attempt: served from the records when it succeeded before; otherwise the rollout (unless
   * only its reward failed before) and the reward, recorded either way.
   */
  async attempt(spec: AttemptSpec<T>): Promise<AttemptRecord | typeof SKIPPED> {
    const key = attemptKey(spec.scope, spec.epoch, spec.taskId, spec.index);
    const before = this.store.attempts.get(key);
    if (before?.status === "ok") {
      this.fromRecords++;
      this.emitAttempt(spec, { ok: true, score: before.score!, recorded: true });
      return before;
    }
    if (this.stopping) return SKIPPED;
    return this.limiter.run(() => this.runAttempt(spec, before));
  }

  private emitAttempt(
    spec: AttemptSpec<T>,
    outcome: { ok: boolean; score?: number; error?: string; recorded: boolean },
  ): void {
    this.emit({
      type: "attempt",
      scope: spec.scope,
      epoch: spec.epoch,
      task: spec.taskId,
      index: spec.index,
      ...outcome,
    });
  }

  private async runAttempt(
    spec: AttemptSpec<T>,
    before: AttemptRecord | undefined,
  ): Promise<AttemptRecord | typeof SKIPPED> {
    if (this.stopping) return SKIPPED;
    const base = {
      scope: spec.scope,
      epoch: spec.epoch,
      task: spec.taskId,
      index: spec.index,
      seed: spec.seed,
      version: spec.version,
    };
    const failed = (stage: "rollout" | "reward", err: unknown, extra: Partial<AttemptRecord> = {}) => {
      const error = errorText(err);
      const cause = causeOf(stage, err);
      const rec: AttemptRecord = {
        ...base,
        ...extra,
        status: "failed",
        stage,
        error,
        cause,
        time: this.opts.now().toISOString(),
      };
      this.store.putAttempt(rec);
      this.emitAttempt(spec, { ok: false, error, recorded: false });
      const f: FailureRecord = {
        stage,
        scope: spec.scope,
        epoch: spec.epoch,
        task: spec.taskId,
        index: spec.index,
        error,
        cause,
        ...(isFatal(err) ? { fatal: true } : {}),
      };
      this.fail(f, err);
      return rec;
    };

    // Each attempt gets a signal of its own: agent code that never removes its abort listeners
    // (some SDKs) then leaks nothing into the run's signal.
    const own = new AbortController();
    this.attemptControllers.add(own);
    const ctx: RolloutContext = {
      experiences: spec.view,
      index: spec.index,
      groupSize: spec.groupSize,
      seed: spec.seed,
      signal: own.signal,
      epoch: spec.epoch,
      mode: spec.mode,
    };
    try {
      return await this.rolloutAndReward(spec, base, before, ctx, failed);
    } finally {
      this.attemptControllers.delete(own);
    }
  }

  private async rolloutAndReward(
    spec: AttemptSpec<T>,
    base: Pick<AttemptRecord, "scope" | "epoch" | "task" | "index" | "seed" | "version">,
    before: AttemptRecord | undefined,
    ctx: RolloutContext,
    failed: (stage: "rollout" | "reward", err: unknown, extra?: Partial<AttemptRecord>) => AttemptRecord,
  ): Promise<AttemptRecord | typeof SKIPPED> {
    let attempt: Attempt<O>;
    let usage = before?.usage;
    if (before?.stage === "reward" && before.output !== undefined) {
      // The rollout was paid for; only its reward failed.
      attempt = {
        output: before.output as O,
        ...(before.trajectory !== undefined ? { trajectory: before.trajectory } : {}),
      };
    } else {
      this.madeNow++;
      let got: unknown;
      try {
        got = await this.opts.rollout(spec.task, ctx);
      } catch (err) {
        if (this.cutShort(err)) return SKIPPED;
        return failed("rollout", err);
      }
      if (!got || typeof got !== "object" || !("output" in got)) {
        return failed(
          "rollout",
          new TypeError(
            `rollout returned ${got === null ? "null" : typeof got}, expected { output, trajectory?, usage? }`,
          ),
        );
      }
      attempt = got as Attempt<O>;
      usage = normaliseUsage(attempt.usage, this.opts.rolloutPricing);
    }
    // A run directory records what the learner would read; in memory it is derived when needed.
    const trajectory =
      typeof attempt.trajectory === "string"
        ? attempt.trajectory
        : this.store.dir !== undefined
          ? outputText(attempt.output)
          : undefined;
    const kept = {
      output: attempt.output as unknown,
      ...(trajectory !== undefined ? { trajectory } : {}),
      ...(usage ? { usage } : {}),
    };
    let score: number;
    let correct: boolean;
    let details: unknown;
    try {
      const v = await this.opts.reward(spec.task, attempt, ctx);
      if (typeof v === "number") {
        score = v;
        correct = v >= 1;
      } else if (v && typeof v === "object" && typeof v.score === "number") {
        score = v.score;
        correct = typeof v.correct === "boolean" ? v.correct : v.score >= 1;
        details = v.details;
      } else {
        throw new TypeError(
          `reward returned ${JSON.stringify(v)}, expected a number or { score, correct?, details? }`,
        );
      }
      if (!Number.isFinite(score)) throw new RangeError(`reward returned a score of ${score}`);
    } catch (err) {
      if (this.cutShort(err)) return SKIPPED;
      return failed("reward", err, kept);
    }
    const rec: AttemptRecord = {
      ...base,
      status: "ok",
      ...kept,
      score,
      correct,
      ...(details !== undefined ? { details } : {}),
      time: this.opts.now().toISOString(),
    };
    this.store.putAttempt(rec);
    this.emitAttempt(spec, { ok: true, score, recorded: false });
    return rec;
  }

  /**
   * A learner call of one learning step, recorded under `prefix/step`. A call that fails is
   * recorded and rethrown as a LearnerStepError; the step's failure is counted by failLearning.
   */
  stepCall(prefix: string): StepCall {
    return async <V>(step: string, messages: ChatMessage[], parse: (text: string) => V): Promise<V> => {
      const key = `${prefix}/${step}`;
      // Only a run directory's records are ever replayed; in memory the hash would be for nothing.
      const recorded = this.store.dir !== undefined;
      const hash = recorded
        ? requestHash(messages, this.opts.learnerTemperature, this.opts.learnerMaxTokens)
        : "";
      const before = recorded ? this.store.learner.get(key) : undefined;
      if (before?.ok && before.hash === hash && before.text !== undefined) {
        try {
          return parse(before.text);
        } catch {
          // Recorded under a parser that accepted it; ask again.
        }
      }
      if (this.stopping) throw new StopError(this.stopReason!);
      try {
        const answer = await this.learnerLimiter.run(() => {
          if (this.stopping) throw new StopError(this.stopReason!);
          return this.opts.ask(messages, {
            temperature: this.opts.learnerTemperature,
            ...(this.opts.learnerMaxTokens !== undefined ? { maxTokens: this.opts.learnerMaxTokens } : {}),
            parse,
            signal: this.controller.signal,
          });
        });
        this.store.putLearner({
          key,
          hash,
          ok: true,
          ...(recorded ? { text: answer.text } : {}),
          ...(answer.usage ? { usage: answer.usage } : {}),
          time: this.opts.now().toISOString(),
        });
        return answer.value;
      } catch (err) {
        if (this.cutShort(err)) throw err instanceof StopError ? err : new StopError(this.stopReason!);
        this.store.putLearner({
          key,
          hash,
          ok: false,
          error: errorText(err),
          time: this.opts.now().toISOString(),
        });
        throw new LearnerStepError(step, err);
      }
    };
  }

  /**
   * Records the failure of a learning step (a group's, or a batch's merge) once, however many of
   * its calls failed: the step is what a rerun redoes. StopErrors are not failures; they return
   * undefined.
   */
  failLearning(err: unknown, where: { epoch: number; task: string }): FailureRecord | undefined {
    if (err instanceof StopError || this.cutShort(err)) return undefined;
    const inner = err instanceof LearnerStepError ? err.cause : err;
    const f: FailureRecord = {
      stage: "learner",
      scope: "train",
      epoch: where.epoch,
      task: where.task,
      ...(err instanceof LearnerStepError ? { step: err.step } : {}),
      error: errorText(inner),
      cause: causeOf("learner", inner),
      ...(isFatal(inner) ? { fatal: true } : {}),
    };
    this.fail(f, inner);
    return f;
  }
}
