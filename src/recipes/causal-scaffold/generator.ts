import { repairJsonlTail } from "../../io/files.ts";
import type { ChatClient } from "../../llm/port.ts";
import {
  type AttemptRecord,
  ExperienceLibrary,
  type GroupEnd,
  type ScoredGroupEnd,
} from "../../training-free/index.ts";
import { agentFitOptions, agentTrainer, recalledScaffold, type StoredScaffold } from "./agent-fit.ts";
import {
  DEFAULT_EXTRACTION,
  type ExtractionSettings,
  learningError,
  type ScaffoldDetails,
} from "./extraction.ts";
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
import { judgeScaffold, type ProblemRef, requestScaffold, type ScoreOptions } from "./solve.ts";

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
  unscored?: StoredScaffold,
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

/** A scored rollout as the cache records it. */
function scoredRollout(rolloutId: number, a: AttemptRecord<StoredScaffold>): RolloutRecord {
  const d = a.details as ScaffoldDetails;
  const rec: RolloutRecord = {
    rollout_id: rolloutId,
    scaffold: a.output as RolloutRecord["scaffold"],
    answer: d.answer,
    is_correct: a.correct!,
    r_ans: d.r_ans,
    r_logic: d.r_logic,
    r_graph: d.r_graph,
    r_total: a.score!,
  };
  if (d.notes.length > 0) rec.error = d.notes.join("; ");
  return rec;
}

/** Problem texts compare equal when they differ only in spacing. */
function sameText(a: string, b: string): boolean {
  return a.replace(/\s+/g, " ").trim() === b.replace(/\s+/g, " ").trim();
}

/**
 * One generator over a list of problems, as a client of TrainingFreeGRPO: a rollout is one
 * scaffold request, its reward the judge and the answer check (their weighted total), a group
 * the N rollouts of one problem, and the learning step the seed's extraction; the rollout cache
 * in the seed's layout is the record TrainingFreeGRPO resumes from. One complete JSONL line per
 * problem. A rerun skips complete problems and redoes exactly the failed parts of the others (the
 * failed rollouts, or only the learning step); a group teaches the library only once every
 * rollout of it succeeded.
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
  const todo: ProblemRef[] = [];
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
    else todo.push(p);
  }
  if (summary.alreadyComplete > 0)
    opts.progress?.tick(summary.alreadyComplete, { done: summary.alreadyComplete });
  if (todo.length === 0) {
    opts.progress?.stop();
    return summary;
  }
  const library = opts.experiences.library(agent);
  const now = () => (opts.now ? opts.now() : new Date());
  const previous = (id: string) => {
    const prev = cache.problems.get(id);
    return prev && prev.rollouts.length > 0 ? prev : undefined;
  };
  const rolloutId = (id: string, index: number) => previous(id)?.rollouts[index]?.rollout_id ?? index + 1;
  let ticked = 0;
  const tick = (fields: Record<string, string | number>) => {
    ticked++;
    opts.progress?.tick(1, fields);
  };
  /** The guard's kind of each failed attempt, by problem and index. */
  const kinds = new Map<string, string>();
  const write = (record: ProblemRecord) => {
    appendProblemRecord(cachePath, record);
    summary.records.push(record);
  };
  const base = (g: GroupEnd<ProblemRef, StoredScaffold>, rollouts: RolloutRecord[]) => ({
    problem_id: g.task.id,
    problem_text: g.task.text,
    ground_truth: g.task.answer,
    rollouts,
    timestamp: now().toISOString(),
  });
  /** The group's rollouts as the cache records them; a rollout kept from the cache stays the same object. */
  const rolloutsOf = (g: GroupEnd<ProblemRef, StoredScaffold>): RolloutRecord[] => {
    const prev = previous(g.taskId);
    return g.attempts.map((a, i) => {
      const id = rolloutId(g.taskId, i);
      const before = prev?.rollouts[i];
      if (a?.status === "ok") return before && !isFailedRollout(before) ? before : scoredRollout(id, a);
      if (a === undefined)
        return failedRollout(id, "stopped before it finished", "stopped", before?.unscored_scaffold);
      const kind = kinds.get(`${g.taskId}/${i}`) ?? a.cause ?? "error";
      return a.stage === "reward"
        ? failedRollout(id, `scoring failed: ${a.error}`, kind, a.output)
        : failedRollout(id, `scaffold request failed: ${a.error}`, kind);
    });
  };
  const learnt = new Map<string, RolloutRecord[]>();
  const withStats = (g: ScoredGroupEnd<ProblemRef, StoredScaffold>) => ({
    ...base(g, learnt.get(g.taskId) ?? rolloutsOf(g)),
    mean: g.summary.mean,
    std: g.summary.std,
  });

  const trainer = agentTrainer({
    client: opts.client,
    prompts: opts.prompts,
    extraction,
    library: useExperiences ? library : ExperienceLibrary.inMemory({ agent }),
    shared: opts.experiences.library("shared"),
    useExperiences,
    now,
    async rollout(problem, ctx) {
      const prompt = opts.prompts.render("generator_scaffold", {
        problem: problem.text,
        experiences: ctx.experiences.text,
      });
      const scaffold = await requestScaffold(opts.client, prompt, {
        what: "scaffold",
        temperature: opts.temperature,
        signal: ctx.signal,
      });
      return { output: scaffold };
    },
    async reward(problem, attempt, ctx) {
      const judged = await judgeScaffold(opts.client, opts.prompts, problem, attempt.output as Scaffold, {
        llmEquivalence: opts.llmEquivalence,
        signal: ctx.signal,
      });
      const details: ScaffoldDetails = {
        id: rolloutId(problem.id, ctx.index),
        answer: judged.answer,
        r_ans: judged.r_ans,
        r_logic: judged.r_logic,
        r_graph: judged.r_graph,
        notes: judged.notes,
      };
      return { score: totalReward(judged, weights), correct: judged.r_ans === 1, details };
    },
  });

  await trainer.fit(
    todo,
    agentFitOptions({
      agent,
      guard,
      problemsInFlight: opts.problemConcurrency ?? 1,
      maxGroupSize: Math.max(opts.rollouts, ...todo.map((p) => previous(p.id)?.rollouts.length ?? 0)),
      groupSize: (p) => previous(p.id)?.rollouts.length ?? opts.rollouts,
      learn,
      where: (f) =>
        f.stage === "learner"
          ? `problem ${f.task}, learning step`
          : `problem ${f.task}, rollout ${rolloutId(f.task, f.index!)}${f.stage === "reward" ? " (scoring)" : ""}`,
      counted: (f, kind) => {
        summary.failures[kind] = (summary.failures[kind] ?? 0) + 1;
        if (f.index !== undefined) kinds.set(`${f.task}/${f.index}`, kind);
      },
      warn: (line) => {
        summary.warnings.push(line);
        opts.progress?.log(`warning: ${line}`);
      },
      store: {
        recall(problem) {
          const prev = previous(problem.id);
          const redo = prev ? prev.rollouts.filter(isFailedRollout).length : opts.rollouts;
          if (useExperiences && learn && redo > 0) library.markUsed();
          return prev
            ? {
                attempts: prev.rollouts.map((r) =>
                  recalledScaffold({ ...r, unscored: r.unscored_scaffold }, r.rollout_id),
                ),
              }
            : undefined;
        },
        incomplete(g) {
          const rollouts = rolloutsOf(g);
          const prev = previous(g.taskId);
          const failedNow = rollouts.filter(isFailedRollout);
          const real = failedNow.filter((r) => r.error_kind !== "stopped");
          summary.failedRollouts += real.length;
          const newlyDone = rollouts.filter(
            (r, i) => !isFailedRollout(r) && (!prev || isFailedRollout(prev.rollouts[i]!)),
          );
          // Keep what succeeded (it was paid for); a problem only interrupted by the stop, with
          // nothing new to keep, is left as it was.
          if (real.length > 0 || newlyDone.length > 0)
            write({
              ...base(g, rollouts),
              extraction: {
                triggered: false,
                reason: `incomplete: ${failedNow.length} of ${rollouts.length} rollouts failed`,
              },
            });
          if (real.length > 0) summary.failed++;
          tick({ failed: failedNow.length });
        },
        scored(g) {
          const { mean, std, learn: learns, reason } = g.summary;
          if (!learns) {
            write({ ...withStats(g), extraction: { triggered: false, reason } });
            summary.completed++;
            tick({ μ: mean, σ: std, learn: "no" });
            return;
          }
          const rollouts = rolloutsOf(g);
          learnt.set(g.taskId, rollouts);
          // The group is on disk before its learning step, so a failure or a crash there costs
          // only that step on the rerun, never the rollouts.
          const prev = previous(g.taskId);
          const onDisk =
            (prev?.extraction?.pending || prev?.extraction?.failed) &&
            prev.rollouts.every((r, i) => r === rollouts[i]);
          if (!onDisk) write({ ...withStats(g), extraction: { triggered: true, reason, pending: true } });
        },
        learningFailed(g, failure) {
          write({
            ...withStats(g),
            extraction: {
              triggered: true,
              reason: g.summary.reason,
              failed: true,
              error: learningError(failure),
            },
          });
          summary.failed++;
          tick({ μ: g.summary.mean, σ: g.summary.std, learn: "failed" });
        },
        learnt(g, change) {
          // The library is saved before this final line: a crash in between redoes the learning
          // step (which may then learn twice from this group) instead of losing what was learned.
          summary.extractions++;
          write({
            ...withStats(g),
            extraction: {
              triggered: true,
              reason: g.summary.reason,
              added: change.added,
              modified: change.modified,
              deleted: change.deleted,
              merged: change.merged,
            },
          });
          summary.completed++;
          tick({ μ: g.summary.mean, σ: g.summary.std, learn: "yes" });
        },
      },
    }),
  );
  // usage counts move on every problem, not only on those that taught the library
  if (learn && useExperiences) await library.saveAsync();
  // What the run did not complete or fail (it stopped first) is skipped.
  summary.skipped = summary.requested - summary.alreadyComplete - summary.completed - summary.failed;
  const notReached = todo.length - ticked;
  if (notReached > 0) opts.progress?.tick(notReached, { skipped: notReached });
  opts.progress?.stop();
  return summary;
}
