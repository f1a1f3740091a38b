/**
 * How a run treats failures: a call that failed after its retries is recorded (by the caller)
 * and counted here by cause; the first one is printed when it happens; a fatal one (bad key,
 * bad model or path, nothing listening) or `maxFailures` in a row for one agent stops the whole
 * run at once, since every further request would fail the same way.
 */
import { setMaxListeners } from "node:events";
import { LLMError } from "../../llm/client.ts";
import { errorText } from "../../llm/messages.ts";
import { SOLVER_DEFAULTS } from "./defaults.ts";

/** The reason in-flight work is aborted with once the run stops; never recorded as a failure. */
export class RunStoppedError extends Error {
  constructor(
    message: string,
    readonly fatal: boolean,
  ) {
    super(message);
    this.name = "RunStoppedError";
  }
}

/** The LLMError or stop behind an error that wrapped it (`new Error(…, { cause })`), else the error. */
function rootFailure(err: unknown): unknown {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof LLMError || e instanceof RunStoppedError) return e;
  }
  return err;
}

/** The cause of a failure as it is counted and recorded: an LLM error kind, "stopped" or "error". */
export function failureKind(err: unknown): string {
  const root = rootFailure(err);
  if (root instanceof RunStoppedError) return "stopped";
  if (root instanceof LLMError) return root.kind;
  return "error";
}

export interface RunGuardOptions {
  /** Failures in a row, per agent, with no success in between, that stop the run. */
  maxFailures?: number;
  /** Where the first failure is printed. */
  log?: (line: string) => void;
}

export class RunGuard {
  readonly maxFailures: number;
  private readonly controller = new AbortController();
  private readonly log: (line: string) => void;
  private readonly inARow = new Map<string, number>();
  private readonly byAgent = new Map<string, Record<string, number>>();
  private firstPrinted = false;
  /** Why the run stopped early, once it has. */
  stopReason: RunStoppedError | undefined;

  constructor(opts: RunGuardOptions = {}) {
    this.maxFailures = opts.maxFailures ?? SOLVER_DEFAULTS.maxFailures;
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 1)
      throw new RangeError(`maxFailures must be an integer ≥ 1, got ${this.maxFailures}`);
    this.log = opts.log ?? ((line) => console.error(line));
    // every call in flight listens to this one signal
    setMaxListeners(0, this.controller.signal);
  }

  /** Aborts when the run stops; pass it to every call so that nothing waits on a dead endpoint. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopped(): boolean {
    return this.stopReason !== undefined;
  }

  /**
   * Counts a failure of `agent` at `where` (e.g. "problem p3, rollout 2") and returns its kind.
   * An abort caused by the stop itself is not a failure and is only classified.
   */
  failure(agent: string, where: string, err: unknown): string {
    const kind = failureKind(err);
    if (kind === "stopped") return kind;
    const counts = this.byAgent.get(agent) ?? {};
    counts[kind] = (counts[kind] ?? 0) + 1;
    this.byAgent.set(agent, counts);
    const message = errorText(err);
    const root = rootFailure(err);
    if (root instanceof LLMError && root.fatal) {
      // The endpoint's own one-line message: agent, base URL, model, cause and fix.
      this.stop(new RunStoppedError(root.message, true));
      return kind;
    }
    if (!this.firstPrinted) {
      this.firstPrinted = true;
      this.log(`${agent}: first failure of this run, ${where}: ${message} (recorded; a rerun retries it)`);
    }
    const n = (this.inARow.get(agent) ?? 0) + 1;
    this.inARow.set(agent, n);
    if (n >= this.maxFailures) {
      this.stop(
        new RunStoppedError(
          `${agent}: ${n} failures in a row (last: ${message}); stopping, the endpoint looks broken. ` +
            "Rerun once it works: only the failed parts are redone (or raise --max-failures)",
          false,
        ),
      );
    }
    return kind;
  }

  success(agent: string): void {
    this.inARow.set(agent, 0);
  }

  /** Failures of one agent by cause. */
  failuresOf(agent: string): Record<string, number> {
    return { ...(this.byAgent.get(agent) ?? {}) };
  }

  /** The reason is not printed here: the command ends at once and says it as its last line. */
  private stop(reason: RunStoppedError): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.controller.abort(reason);
  }
}

/** "rate_limit 3, schema 1", or "none". */
export function formatCauses(causes: Record<string, number>): string {
  const parts = Object.entries(causes)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`);
  return parts.length > 0 ? parts.join(", ") : "none";
}

/** The counts every agent's pass reports (GeneratorSummary, CriticSummary, the epoch report). */
export interface PassCounts {
  requested: number;
  completed: number;
  alreadyComplete: number;
  failed: number;
  skipped: number;
  failures: Record<string, number>;
  extractions: number;
}

/** "generator_1: 3 completed, 1 failed, 0 skipped (4 requested, 0 already complete); failures by cause: …". */
export function passLine(agent: string, a: PassCounts): string {
  return (
    `${agent}: ${a.completed} completed, ${a.failed} failed, ${a.skipped} skipped ` +
    `(${a.requested} requested, ${a.alreadyComplete} already complete); failures by cause: ${formatCauses(a.failures)}; ` +
    `${a.extractions} library update${a.extractions === 1 ? "" : "s"}`
  );
}

/** Whether every requested problem is complete, now or from before. */
export function passComplete(a: PassCounts): boolean {
  return a.failed === 0 && a.skipped === 0;
}
