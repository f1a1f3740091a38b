import { groupStats } from "../../core/advantages.ts";
import { repairJsonlTail } from "../../io/files.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient } from "../../llm/port.ts";
import { mapPool } from "../../training-free/pool.ts";
import { decideExtraction } from "../../training-free/triggers.ts";
import { DEFAULT_EXTRACTION, type ExtractionSettings, extractExperiences } from "./extraction.ts";
import { RunGuard } from "./failures.ts";
import type { ExperienceManager, LibraryOwner } from "./libraries.ts";
import { cacheDir, generatorCachePath } from "./paths.ts";
import type { Progress } from "./progress.ts";
import type { PromptSet } from "./prompts.ts";
import type { GeneratorId, RewardWeights } from "./rewards.ts";
import { DEFAULT_GENERATOR_WEIGHTS, totalReward } from "./rewards.ts";
import {
  appendProblemRecord,
  FAILED_REWARDS,
  isCompleteRecord,
  isFailedRollout,
  type ProblemRecord,
  type RolloutRecord,
  readRolloutCache,
} from "./rollout-cache.ts";
import type { Scaffold } from "./scaffold.ts";
import { parseScaffold } from "./scaffold-parse.ts";
import { judgeScaffold, type ProblemRef, type ScoreOptions, scaffoldReplyParser } from "./solve.ts";

export function generatorAgent(id: GeneratorId): LibraryOwner & `generator_${GeneratorId}` {
  return `generator_${id}`;
}

export interface GeneratorOptions extends ScoreOptions {
  id: GeneratorId;
  client: ChatClient;
  problems: readonly ProblemRef[];
  workdir: string;
  experiences: ExperienceManager;
  prompts: PromptSet;
  rollouts: number;
  temperature: number;
  weights?: RewardWeights;
  extraction?: ExtractionSettings;
  /** false: solve and record without touching the library (evaluation). */
  learn?: boolean;
  /** false: leave the library out of the prompt (the "without experiences" arm of an A/B). */
  useExperiences?: boolean;
  /** Problems solved at once; each runs its rollouts in parallel. */
  problemConcurrency?: number;
  /** Folder of the rollout caches; the epoch-1 folder under `workdir` by default. */
  cacheDir?: string;
  /** Counts failures, prints the first, stops the run when the endpoint is broken. */
  guard?: RunGuard;
  progress?: Progress;
  now?: () => Date;
}

/**
 * What one generator run did with the problems it was given. Every requested problem is in
 * exactly one of completed, alreadyComplete, failed and skipped.
 */
export interface GeneratorSummary {
  generator: GeneratorId;
  cachePath: string;
  requested: number;
  /** Completed by this run. */
  completed: number;
  /** Complete before this run: not touched. */
  alreadyComplete: number;
  /** Attempted, with a rollout or the learning step failed: a rerun redoes exactly those parts. */
  failed: number;
  /** Not attempted, or only interrupted, because the run stopped early. */
  skipped: number;
  failedRollouts: number;
  /** Failed rollouts and learning steps by cause (rate_limit, schema, auth, …). */
  failures: Record<string, number>;
  extractions: number;
  warnings: string[];
  /** The records this run wrote, complete or not, in the order they were written. */
  records: ProblemRecord[];
}

function failedRollout(
  rolloutId: number,
  error: string,
  kind: string,
  unscored?: Scaffold | string,
): RolloutRecord {
  return {
    rollout_id: rolloutId,
    scaffold: null,
    answer: null,
    is_correct: false,
    ...FAILED_REWARDS,
    error,
    error_kind: kind,
    ...(unscored !== undefined ? { unscored_scaffold: unscored } : {}),
  };
}

export interface RolloutContext {
  agent: string;
  guard: RunGuard;
  /** The scaffold of an earlier attempt whose scoring failed: scored again, not asked for again. */
  unscored?: Scaffold | string;
}

/**
 * One rollout: a scaffold from the model (a reply that is no scaffold is retried by the client),
 * then its answer and rewards. Any call that fails after its retries fails the rollout, which is
 * recorded with its cause; it is never scored as if the model had answered.
 */
export async function runRollout(
  opts: Pick<GeneratorOptions, "client" | "prompts" | "temperature" | "llmEquivalence">,
  problem: ProblemRef,
  rolloutId: number,
  experiencesText: string,
  weights: RewardWeights,
  ctx: RolloutContext = { agent: "generator", guard: new RunGuard() },
): Promise<RolloutRecord> {
  const where = `problem ${problem.id}, rollout ${rolloutId}`;
  const signal = ctx.guard.signal;
  let scaffold: Scaffold | undefined;
  if (ctx.unscored !== undefined) {
    const again = parseScaffold(ctx.unscored);
    if (again.ok) scaffold = again.scaffold;
  }
  if (!scaffold) {
    const prompt = opts.prompts.render("generator_scaffold", {
      problem: problem.text,
      experiences: experiencesText,
    });
    try {
      const r = await opts.client.chat(userMessage(prompt), {
        temperature: opts.temperature,
        parse: scaffoldReplyParser("scaffold"),
        signal,
      });
      scaffold = r.value;
    } catch (err) {
      const kind = ctx.guard.failure(ctx.agent, where, err);
      return failedRollout(rolloutId, `scaffold request failed: ${errorText(err)}`, kind);
    }
  }
  let judged: Awaited<ReturnType<typeof judgeScaffold>>;
  try {
    judged = await judgeScaffold(opts.client, opts.prompts, problem, scaffold, {
      llmEquivalence: opts.llmEquivalence,
      signal,
    });
  } catch (err) {
    const kind = ctx.guard.failure(ctx.agent, `${where} (scoring)`, err);
    return failedRollout(rolloutId, `scoring failed: ${errorText(err)}`, kind, scaffold);
  }
  ctx.guard.success(ctx.agent);
  const rec: RolloutRecord = {
    rollout_id: rolloutId,
    scaffold: scaffold as RolloutRecord["scaffold"],
    answer: judged.answer,
    is_correct: judged.r_ans === 1,
    r_ans: judged.r_ans,
    r_logic: judged.r_logic,
    r_graph: judged.r_graph,
    r_total: totalReward(judged, weights),
  };
  if (judged.notes.length > 0) rec.error = judged.notes.join("; ");
  return rec;
}

/** Problem texts compare equal when they differ only in spacing. */
function sameText(a: string, b: string): boolean {
  return a.replace(/\s+/g, " ").trim() === b.replace(/\s+/g, " ").trim();
}

/**
 * One generator over a list of problems: N rollouts per problem, group statistics, experience
 * update when the group disagrees, one complete JSONL line per problem. A rerun skips complete
 * problems and redoes exactly the failed parts of the others (the failed rollouts, or only the
 * learning step); a group teaches the library only once every rollout of it succeeded.
 */
export async function runGenerator(opts: GeneratorOptions): Promise<GeneratorSummary> {
  const agent = generatorAgent(opts.id);
  const guard = opts.guard ?? new RunGuard({ log: (l) => opts.progress?.log(l) });
  const cachePath = generatorCachePath(opts.cacheDir ?? cacheDir(opts.workdir), opts.id);
  const weights = opts.weights ?? DEFAULT_GENERATOR_WEIGHTS[opts.id];
  const extraction = opts.extraction ?? DEFAULT_EXTRACTION;
  const learn = opts.learn ?? true;
  const useExperiences = opts.useExperiences ?? true;
  // A line torn by a killed run would glue onto the next append; cut it first.
  repairJsonlTail(cachePath);
  const cache = readRolloutCache(cachePath);
  const summary: GeneratorSummary = {
    generator: opts.id,
    cachePath,
    requested: 0,
    completed: 0,
    alreadyComplete: 0,
    failed: 0,
    skipped: 0,
    failedRollouts: 0,
    failures: {},
    extractions: 0,
    warnings: [],
    records: [],
  };
  const todo: { problem: ProblemRef; prev?: ProblemRecord }[] = [];
  const seen = new Set<string>();
  for (const p of opts.problems) {
    // a problem listed twice (two data sets sharing it) is solved and written once
    if (seen.has(p.id)) continue;
    seen.add(p.id);
    summary.requested++;
    const prev = cache.problems.get(p.id);
    if (prev && (!sameText(prev.problem_text, p.text) || prev.ground_truth.trim() !== p.answer.trim())) {
      throw new Error(
        `${agent}: problem ${p.id} in ${cachePath}:${cache.lines.get(p.id)} has another ` +
          `${sameText(prev.problem_text, p.text) ? "answer" : "text"} than in the data set; ` +
          "its results would stand for another problem. Use a new --workdir for the changed data set, or remove that cache file",
      );
    }
    if (prev && isCompleteRecord(prev, { learn })) summary.alreadyComplete++;
    else todo.push({ problem: p, ...(prev ? { prev } : {}) });
  }
  const library = opts.experiences.library(agent);
  const shared = opts.experiences.library("shared");
  if (summary.alreadyComplete > 0)
    opts.progress?.tick(summary.alreadyComplete, { done: summary.alreadyComplete });
  const now = () => (opts.now ? opts.now() : new Date());
  const fail = (where: string, err: unknown) => {
    const kind = guard.failure(agent, where, err);
    if (kind !== "stopped") summary.failures[kind] = (summary.failures[kind] ?? 0) + 1;
    return kind;
  };
  const write = (record: ProblemRecord) => {
    appendProblemRecord(cachePath, record);
    summary.records.push(record);
  };

  await mapPool(todo, opts.problemConcurrency ?? 1, async ({ problem, prev }) => {
    if (guard.stopped) {
      summary.skipped++;
      opts.progress?.tick(1, { skipped: problem.id });
      return;
    }
    const experiencesText = useExperiences ? library.formatForPrompt(shared.entries()) : "(none)";
    const redo = prev ? prev.rollouts.filter(isFailedRollout).length : opts.rollouts;
    if (useExperiences && learn && redo > 0) library.markUsed();
    const ctx = (unscored?: Scaffold | string): RolloutContext => ({
      agent,
      guard,
      ...(unscored !== undefined ? { unscored } : {}),
    });
    const rollouts = await Promise.all(
      prev && prev.rollouts.length > 0
        ? prev.rollouts.map((r) =>
            isFailedRollout(r)
              ? runRollout(opts, problem, r.rollout_id, experiencesText, weights, ctx(r.unscored_scaffold))
              : Promise.resolve(r),
          )
        : Array.from({ length: opts.rollouts }, (_, i) =>
            runRollout(opts, problem, i + 1, experiencesText, weights, ctx()),
          ),
    );
    const base = {
      problem_id: problem.id,
      problem_text: problem.text,
      ground_truth: problem.answer,
      rollouts,
    };
    const failedNow = rollouts.filter(isFailedRollout);
    if (failedNow.length > 0) {
      const real = failedNow.filter((r) => r.error_kind !== "stopped");
      for (const r of real) summary.failures[r.error_kind!] = (summary.failures[r.error_kind!] ?? 0) + 1;
      summary.failedRollouts += real.length;
      const newlyDone = rollouts.filter(
        (r, i) => !isFailedRollout(r) && (!prev || isFailedRollout(prev.rollouts[i]!)),
      );
      // Keep what succeeded (it was paid for); a problem only interrupted by the stop, with
      // nothing new to keep, is left as it was.
      if (real.length > 0 || newlyDone.length > 0) {
        write({
          ...base,
          timestamp: now().toISOString(),
          extraction: {
            triggered: false,
            reason: `incomplete: ${failedNow.length} of ${rollouts.length} rollouts failed`,
          },
        });
      }
      if (real.length > 0) summary.failed++;
      else summary.skipped++;
      opts.progress?.tick(1, { failed: failedNow.length });
      return;
    }
    const totals = rollouts.map((r) => r.r_total);
    const decision = decideExtraction(
      totals,
      rollouts.map((r) => r.is_correct),
      extraction,
    );
    const { mean, std } = groupStats(totals);
    const learns = decision.extract && learn;
    if (!learns) {
      write({
        ...base,
        timestamp: now().toISOString(),
        mean,
        std,
        extraction: { triggered: false, reason: decision.reason },
      });
      summary.completed++;
      opts.progress?.tick(1, { μ: mean, σ: std, learn: "no" });
      return;
    }
    // The group is on disk before its learning step, so a failure or a crash there costs only
    // that step on the rerun, never the rollouts.
    const onDisk =
      (prev?.extraction?.pending || prev?.extraction?.failed) &&
      prev.rollouts.every((r, i) => r === rollouts[i]);
    if (!onDisk) {
      write({
        ...base,
        timestamp: now().toISOString(),
        mean,
        std,
        extraction: { triggered: true, reason: decision.reason, pending: true },
      });
    }
    const outcome = await extractExperiences({
      client: opts.client,
      prompts: opts.prompts,
      library,
      problem,
      attempts: rollouts.map((r) => ({
        id: r.rollout_id,
        scaffoldText: typeof r.scaffold === "string" ? r.scaffold : JSON.stringify(r.scaffold),
        answer: r.answer === null ? null : String(r.answer),
        isCorrect: r.is_correct,
        reward: r.r_total,
      })),
      temperature: extraction.temperature,
      now,
      signal: guard.signal,
    });
    for (const w of outcome.warnings) {
      summary.warnings.push(w);
      opts.progress?.log(`warning: ${w}`);
    }
    if (outcome.error) {
      const kind = fail(`problem ${problem.id}, learning step`, outcome.cause ?? new Error(outcome.error));
      write({
        ...base,
        timestamp: now().toISOString(),
        mean,
        std,
        extraction: { triggered: true, reason: decision.reason, failed: true, error: outcome.error },
      });
      if (kind === "stopped") summary.skipped++;
      else summary.failed++;
      opts.progress?.tick(1, { μ: mean, σ: std, learn: "failed" });
      return;
    }
    // The library is saved before the final line: a crash in between redoes the learning step
    // (which may then learn twice from this group) instead of losing what was learned.
    await library.saveAsync();
    summary.extractions++;
    write({
      ...base,
      timestamp: now().toISOString(),
      mean,
      std,
      extraction: {
        triggered: true,
        reason: decision.reason,
        added: outcome.added,
        modified: outcome.modified,
        deleted: outcome.deleted,
        merged: outcome.merged,
      },
    });
    summary.completed++;
    opts.progress?.tick(1, { μ: mean, σ: std, learn: "yes" });
  });
  // usage counts move on every problem, not only on those that taught the library
  if (learn && useExperiences && todo.length > 0) await library.saveAsync();
  opts.progress?.stop();
  return summary;
}
