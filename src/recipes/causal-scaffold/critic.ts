import { existsSync } from "node:fs";
import { repairJsonlTail } from "../../io/files.ts";
import type { ChatClient } from "../../llm/port.ts";
import type { AttemptRecord, ScoredGroupEnd } from "../../training-free/index.ts";
import { agentFitOptions, agentTrainer, recalledScaffold, type StoredScaffold } from "./agent-fit.ts";
import {
  DEFAULT_EXTRACTION,
  type ExtractionSettings,
  learningError,
  type ScaffoldDetails,
} from "./extraction.ts";
import { RunGuard } from "./failures.ts";
import type { ExperienceManager } from "./libraries.ts";
import { cacheDir, criticLearningPath, criticResultsPath, generatorCachePath } from "./paths.ts";
import type { Progress } from "./progress.ts";
import type { PromptSet } from "./prompts.ts";
import type { GeneratorId, RewardWeights } from "./rewards.ts";
import {
  DEFAULT_CRITIC_WEIGHTS,
  FUSION_JUDGE_JSON,
  GENERATOR_IDS,
  parseFusionJudge,
  totalReward,
} from "./rewards.ts";
import {
  appendCriticLearning,
  appendCriticRecord,
  type CriticRecord,
  criticKey,
  FAILED_REWARDS,
  isCompleteRecord,
  isFailedFusion,
  isFailedRollout,
  type ProblemRecord,
  readCriticLearning,
  readCriticResults,
  readRolloutCache,
  scaffoldOf,
} from "./rollout-cache.ts";
import type { Scaffold } from "./scaffold.ts";
import { askJudge, judgeScaffold, type ProblemRef, requestScaffold, type ScoreOptions } from "./solve.ts";

export interface CriticOptions extends ScoreOptions {
  client: ChatClient;
  workdir: string;
  experiences: ExperienceManager;
  prompts: PromptSet;
  temperature: number;
  weights?: RewardWeights;
  extraction?: ExtractionSettings;
  learn?: boolean;
  generators?: readonly GeneratorId[];
  /** Only these problems (in this order); all problems of the caches otherwise. */
  problemIds?: readonly string[];
  maxProblems?: number;
  problemConcurrency?: number;
  /** Folder holding the generator caches and the critic results; epoch-1 folder by default. */
  cacheDir?: string;
  guard?: RunGuard;
  /** Called once the number of problems is known. */
  progress?: (total: number) => Progress | undefined;
  now?: () => Date;
}

/**
 * What one critic run did, per problem (its fusions, one per generator, and its learning step).
 * Every requested problem is in exactly one of completed, alreadyComplete, failed and skipped.
 */
export interface CriticSummary {
  resultsPath: string;
  requested: number;
  completed: number;
  alreadyComplete: number;
  /** A fusion or the learning step failed: a rerun redoes exactly those. */
  failed: number;
  /** Not attempted because the run stopped, or waiting for a generator's incomplete record. */
  skipped: number;
  /** Fusions this run completed, and those that failed. */
  fused: number;
  failedFusions: number;
  /** (problem, generator) pairs not fused because the generator's record has failed rollouts. */
  waitingForGenerators: number;
  failures: Record<string, number>;
  extractions: number;
  warnings: string[];
  /** The fusion records this run wrote, complete or not. */
  records: CriticRecord[];
}

/** The generator caches the critic reads; a missing one is an error that says how to make it. */
export function loadGeneratorCaches(
  dir: string,
  generators: readonly GeneratorId[],
): Map<GeneratorId, Map<string, ProblemRecord>> {
  const out = new Map<GeneratorId, Map<string, ProblemRecord>>();
  for (const g of generators) {
    const path = generatorCachePath(dir, g);
    if (!existsSync(path)) {
      throw new Error(
        `critic: rollout cache of generator ${g} not found: ${path}. ` +
          `Create it with \`grpo generator --id ${g} --dataset <name>\` (or \`grpo generators --all\`) first.`,
      );
    }
    out.set(g, readRolloutCache(path).problems);
  }
  return out;
}

function failedFusion(
  problem: ProblemRef,
  generator: GeneratorId,
  error: string,
  kind: string,
  now: Date,
  unscored?: StoredScaffold,
): CriticRecord {
  return {
    problem_id: problem.id,
    problem_text: problem.text,
    ground_truth: problem.answer,
    generator_id: `generator_${generator}`,
    source_rollouts: [],
    fused_scaffold: null,
    answer: null,
    is_correct: false,
    ...FAILED_REWARDS,
    r_fusion: 0,
    error,
    error_kind: kind,
    ...(unscored !== undefined ? { unscored_fusion: unscored } : {}),
    timestamp: now.toISOString(),
  };
}

/** A fusion that cannot be asked for: the generator's record holds no scaffold to fuse. */
class FusionInputError extends Error {}

interface FusionInput {
  sources: number[];
  text: string;
  count: number;
}

/** A record's input is asked for by the fusion, its reward and its result line: parsed once. */
const fusionInputs = new WeakMap<ProblemRecord, FusionInput>();

/** The parseable scaffolds of a generator's record, the fusion's input, with their rollout ids. */
function fusionInput(record: ProblemRecord): FusionInput {
  const known = fusionInputs.get(record);
  if (known) return known;
  const sources: number[] = [];
  const scaffolds: Scaffold[] = [];
  for (const r of record.rollouts) {
    const parsed = scaffoldOf(r);
    if (parsed.ok) {
      scaffolds.push(parsed.scaffold);
      sources.push(r.rollout_id);
    }
  }
  const text = scaffolds.map((s, i) => `Scaffold ${i + 1}:\n${JSON.stringify(s)}`).join("\n\n");
  const input = { sources, text, count: scaffolds.length };
  fusionInputs.set(record, input);
  return input;
}

/**
 * For each problem and each generator separately, fuse that generator's rollouts into one
 * scaffold, as a client of TrainingFreeGRPO: a group is one problem's fusions (one attempt per
 * generator that has a record of it), a fusion's reward the judge, the answer check and the
 * fusion judge. Results are appended per (problem, generator), which is also the resume key. The
 * critic learns from the group once all of its fusions succeeded; a generator record with failed
 * rollouts is waited for, not fused.
 */
export async function runCritic(opts: CriticOptions): Promise<CriticSummary> {
  const generators = opts.generators ?? GENERATOR_IDS;
  const dir = opts.cacheDir ?? cacheDir(opts.workdir);
  const caches = loadGeneratorCaches(dir, generators);
  const resultsPath = criticResultsPath(dir);
  const learningPath = criticLearningPath(dir);
  repairJsonlTail(resultsPath);
  repairJsonlTail(learningPath);
  const existing = new Map(
    readCriticResults(resultsPath).map((r) => [criticKey(r.problem_id, r.generator_id), r]),
  );
  const learning = readCriticLearning(learningPath);
  const extraction = opts.extraction ?? DEFAULT_EXTRACTION;
  const weights = opts.weights ?? DEFAULT_CRITIC_WEIGHTS;
  const learn = opts.learn ?? true;
  const library = opts.experiences.library("critic");
  const now = () => (opts.now ? opts.now() : new Date());

  let ids: string[];
  if (opts.problemIds) ids = [...new Set(opts.problemIds)];
  else {
    const seen = new Set<string>();
    ids = [];
    for (const g of generators)
      for (const id of caches.get(g)!.keys()) {
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
      }
  }
  if (opts.maxProblems !== undefined) ids = ids.slice(0, opts.maxProblems);

  const progress = opts.progress?.(ids.length);
  const guard = opts.guard ?? new RunGuard({ log: (l) => progress?.log(l) });
  const summary: CriticSummary = {
    resultsPath,
    requested: ids.length,
    completed: 0,
    alreadyComplete: 0,
    failed: 0,
    skipped: 0,
    fused: 0,
    failedFusions: 0,
    waitingForGenerators: 0,
    failures: {},
    extractions: 0,
    warnings: [],
    records: [],
  };
  const warn = (line: string) => {
    summary.warnings.push(line);
    progress?.log(`warning: ${line}`);
  };
  let ticked = 0;
  const tick = (fields: Record<string, string | number>) => {
    ticked++;
    progress?.tick(1, fields);
  };

  /** Per problem to fuse: the generators with a record of it, and those whose record is incomplete. */
  const plans = new Map<string, { available: GeneratorId[]; waiting: GeneratorId[] }>();
  const todo: ProblemRef[] = [];
  for (const id of ids) {
    const available = generators.filter((g) => caches.get(g)!.has(id));
    if (available.length === 0) {
      warn(`critic: no generator has a record of problem ${id}; it is skipped`);
      tick({ skipped: id });
      continue;
    }
    const waiting = available.filter((g) => !isCompleteRecord(caches.get(g)!.get(id)!, { learn: false }));
    for (const g of waiting) {
      const n = caches.get(g)!.get(id)!.rollouts.filter(isFailedRollout).length;
      warn(
        `critic: generator_${g}'s record of ${id} is incomplete (${n} failed rollouts); its fusion waits — rerun grpo generator --id ${g} first`,
      );
    }
    summary.waitingForGenerators += waiting.length;
    const done = (g: GeneratorId) => {
      const r = existing.get(criticKey(id, `generator_${g}`));
      return r !== undefined && !isFailedFusion(r);
    };
    const state = learning.get(id)?.status;
    const learningOpen = learn && (state === "pending" || state === "failed");
    if (waiting.length === 0 && available.every(done) && !learningOpen) {
      summary.alreadyComplete++;
      tick({ done: id });
      continue;
    }
    const first = caches.get(available[0]!)!.get(id)!;
    todo.push({ id, text: first.problem_text, answer: first.ground_truth });
    plans.set(id, { available, waiting });
  }

  const generatorOf = (id: string, index: number) => plans.get(id)!.available[index]!;
  const recordOf = (id: string, index: number) => caches.get(generatorOf(id, index))!.get(id)!;
  const kinds = new Map<string, { kind: string; stage: string }>();
  const previous = (id: string, g: GeneratorId) => existing.get(criticKey(id, `generator_${g}`));
  const stamp = () => now().toISOString();
  /** The fusions this run completed or saw fail, in the seed's layout; kept ones are not written again. */
  const fresh = (g: {
    task: ProblemRef;
    taskId: string;
    attempts: readonly (AttemptRecord<StoredScaffold> | undefined)[];
  }) =>
    g.attempts.flatMap((a, i): CriticRecord[] => {
      const generator = generatorOf(g.taskId, i);
      const before = previous(g.taskId, generator);
      if (a === undefined || (a.status === "ok" && before && !isFailedFusion(before))) return [];
      if (a.status === "failed") {
        const k = kinds.get(`${g.taskId}/${i}`);
        const stage = a.stage === "reward" ? "scoring failed" : (k?.stage ?? "fusion failed");
        const unscored = a.stage === "reward" ? a.output : undefined;
        return [
          failedFusion(
            g.task,
            generator,
            `${stage}: ${a.error}`,
            k?.kind ?? a.cause ?? "error",
            now(),
            unscored,
          ),
        ];
      }
      const d = a.details as ScaffoldDetails;
      const parts = { r_ans: d.r_ans, r_logic: d.r_logic, r_graph: d.r_graph, r_fusion: d.r_fusion! };
      return [
        {
          problem_id: g.taskId,
          problem_text: g.task.text,
          ground_truth: g.task.answer,
          generator_id: `generator_${generator}`,
          source_rollouts: fusionInput(recordOf(g.taskId, i)).sources,
          fused_scaffold: a.output!,
          answer: d.answer,
          is_correct: a.correct!,
          ...parts,
          r_total: a.score!,
          ...(d.notes.length > 0 ? { error: d.notes.join("; ") } : {}),
          timestamp: stamp(),
        },
      ];
    });
  const writeFusions = (records: CriticRecord[]) => {
    for (const rec of records) {
      appendCriticRecord(resultsPath, rec);
      summary.records.push(rec);
    }
    summary.fused += records.filter((r) => !isFailedFusion(r)).length;
    summary.failedFusions += records.filter(isFailedFusion).length;
  };
  const stats = (g: ScoredGroupEnd<ProblemRef, StoredScaffold>) => ({ μ: g.summary.mean, σ: g.summary.std });

  const trainer = agentTrainer({
    client: opts.client,
    prompts: opts.prompts,
    extraction,
    library,
    shared: opts.experiences.library("shared"),
    useExperiences: true,
    now,
    async rollout(problem, ctx) {
      const input = fusionInput(recordOf(problem.id, ctx.index));
      if (input.count === 0)
        throw new FusionInputError("no parseable scaffold among the generator's rollouts");
      const prompt = opts.prompts.render("fusion", {
        count: input.count,
        problem: problem.text,
        experiences: ctx.experiences.text,
        scaffolds: input.text,
      });
      const fused = await requestScaffold(opts.client, prompt, {
        what: "fused scaffold",
        temperature: opts.temperature,
        signal: ctx.signal,
      });
      return { output: fused };
    },
    async reward(problem, attempt, ctx) {
      const fused = attempt.output as Scaffold;
      const judgePrompt = opts.prompts.render("fusion_judge", {
        problem: problem.text,
        scaffolds: fusionInput(recordOf(problem.id, ctx.index)).text,
        fused: JSON.stringify(fused),
      });
      const [judged, r_fusion] = await Promise.all([
        judgeScaffold(opts.client, opts.prompts, problem, fused, {
          llmEquivalence: opts.llmEquivalence,
          signal: ctx.signal,
        }),
        askJudge(opts.client, judgePrompt, {
          what: "fusion judge",
          parse: parseFusionJudge,
          json: FUSION_JUDGE_JSON,
          signal: ctx.signal,
        }),
      ]);
      const parts = { r_ans: judged.r_ans, r_logic: judged.r_logic, r_graph: judged.r_graph, r_fusion };
      const details: ScaffoldDetails = {
        id: generatorOf(problem.id, ctx.index),
        answer: judged.answer,
        ...parts,
        notes: judged.notes,
      };
      return { score: totalReward(parts, weights), correct: judged.r_ans === 1, details };
    },
  });

  if (todo.length > 0)
    await trainer.fit(
      todo,
      agentFitOptions({
        agent: "critic",
        guard,
        problemsInFlight: opts.problemConcurrency ?? 1,
        maxGroupSize: generators.length,
        groupSize: (p) => plans.get(p.id)!.available.length,
        learn,
        where: (f) =>
          f.stage === "learner"
            ? `problem ${f.task}, learning step`
            : `problem ${f.task}, fusion of generator_${generatorOf(f.task, f.index!)}`,
        counted: (f, kind, err) => {
          summary.failures[kind] = (summary.failures[kind] ?? 0) + 1;
          const stage = err instanceof FusionInputError ? "fusion input" : "fusion failed";
          if (f.index !== undefined) kinds.set(`${f.task}/${f.index}`, { kind, stage });
        },
        warn,
        store: {
          recall(problem) {
            const { available, waiting } = plans.get(problem.id)!;
            return {
              attempts: available.map((g) => {
                const r = previous(problem.id, g);
                if (!r || waiting.includes(g)) return undefined;
                return recalledScaffold({ ...r, scaffold: r.fused_scaffold, unscored: r.unscored_fusion }, g);
              }),
              waiting: waiting.map((g) => available.indexOf(g)),
            };
          },
          incomplete(g) {
            const records = fresh(g);
            writeFusions(records);
            const failed = records.some(isFailedFusion);
            if (failed) summary.failed++;
            tick(failed ? { failed: records.filter(isFailedFusion).length } : { skipped: g.taskId });
          },
          scored(g) {
            const state = learning.get(g.taskId)?.status;
            const { learn: learns, reason } = g.summary;
            // "pending" goes before the fusions that complete the group, so a crash in between
            // leaves the learning step outstanding rather than forgotten.
            if (learns && state !== "pending")
              appendCriticLearning(learningPath, {
                problem_id: g.taskId,
                status: "pending",
                reason,
                timestamp: stamp(),
              });
            writeFusions(fresh(g));
            if (learns) return;
            if (learn && (state === "pending" || state === "failed"))
              // an outstanding step whose group no longer teaches (e.g. another τ): settled without learning
              appendCriticLearning(learningPath, {
                problem_id: g.taskId,
                status: "done",
                reason,
                timestamp: stamp(),
              });
            summary.completed++;
            tick({ ...stats(g), learn: "no" });
          },
          learningFailed(g, failure) {
            appendCriticLearning(learningPath, {
              problem_id: g.taskId,
              status: "failed",
              reason: g.summary.reason,
              error: learningError(failure),
              timestamp: stamp(),
            });
            summary.failed++;
            tick({ ...stats(g), learn: "failed" });
          },
          learnt(g, change) {
            summary.extractions++;
            appendCriticLearning(learningPath, {
              problem_id: g.taskId,
              status: "done",
              reason: g.summary.reason,
              added: change.added,
              modified: change.modified,
              deleted: change.deleted,
              merged: change.merged,
              timestamp: stamp(),
            });
            summary.completed++;
            tick({ ...stats(g), learn: "yes" });
          },
        },
      }),
    );
  summary.skipped = summary.requested - summary.alreadyComplete - summary.completed - summary.failed;
  const notReached = ids.length - ticked;
  if (notReached > 0) progress?.tick(notReached, { skipped: notReached });
  progress?.stop();
  return summary;
}
