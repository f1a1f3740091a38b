import { existsSync } from "node:fs";
import { groupStats } from "../../core/advantages.ts";
import { repairJsonlTail } from "../../io/files.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient } from "../../llm/port.ts";
import { mapPool } from "../../training-free/pool.ts";
import { decideExtraction } from "../../training-free/triggers.ts";
import { DEFAULT_EXTRACTION, type ExtractionSettings, extractExperiences } from "./extraction.ts";
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
import { parseScaffold } from "./scaffold-parse.ts";
import { judgeScaffold, type ProblemRef, type ScoreOptions, scaffoldReplyParser } from "./solve.ts";

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
  unscored?: Scaffold | string,
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

/**
 * Fuse one generator's rollouts for one problem and score the fusion. A call that fails after
 * its retries fails the fusion (recorded with its cause); when only the scoring failed, the
 * fused scaffold is kept so that a rerun scores it without asking for it again.
 */
export async function fuseAndScore(
  opts: Pick<CriticOptions, "client" | "prompts" | "temperature" | "llmEquivalence" | "weights">,
  problem: ProblemRef,
  generator: GeneratorId,
  record: ProblemRecord,
  experiencesText: string,
  now: Date,
  ctx: { guard: RunGuard; unscored?: Scaffold | string } = { guard: new RunGuard() },
): Promise<CriticRecord> {
  const { guard } = ctx;
  const signal = guard.signal;
  const where = `problem ${problem.id}, fusion of generator_${generator}`;
  const fail = (err: unknown, stage: string, unscored?: Scaffold) =>
    failedFusion(
      problem,
      generator,
      `${stage}: ${errorText(err)}`,
      guard.failure("critic", where, err),
      now,
      unscored,
    );
  const sources: number[] = [];
  const scaffolds: Scaffold[] = [];
  for (const r of record.rollouts) {
    const parsed = scaffoldOf(r);
    if (parsed.ok) {
      scaffolds.push(parsed.scaffold);
      sources.push(r.rollout_id);
    }
  }
  if (scaffolds.length === 0)
    return fail(new Error("no parseable scaffold among the generator's rollouts"), "fusion input");
  const scaffoldsText = scaffolds.map((s, i) => `Scaffold ${i + 1}:\n${JSON.stringify(s)}`).join("\n\n");
  let fused: Scaffold | undefined;
  if (ctx.unscored !== undefined) {
    const again = parseScaffold(ctx.unscored);
    if (again.ok) fused = again.scaffold;
  }
  if (!fused) {
    const prompt = opts.prompts.render("fusion", {
      count: scaffolds.length,
      problem: problem.text,
      experiences: experiencesText,
      scaffolds: scaffoldsText,
    });
    try {
      const r = await opts.client.chat(userMessage(prompt), {
        temperature: opts.temperature,
        parse: scaffoldReplyParser("fused scaffold"),
        signal,
      });
      fused = r.value;
    } catch (err) {
      return fail(err, "fusion failed");
    }
  }
  const judgePrompt = opts.prompts.render("fusion_judge", {
    problem: problem.text,
    scaffolds: scaffoldsText,
    fused: JSON.stringify(fused),
  });
  let judged: Awaited<ReturnType<typeof judgeScaffold>>;
  let r_fusion: number;
  try {
    [judged, r_fusion] = await Promise.all([
      judgeScaffold(opts.client, opts.prompts, problem, fused, {
        llmEquivalence: opts.llmEquivalence,
        signal,
      }),
      opts.client
        .chat(userMessage(judgePrompt), {
          temperature: 0,
          parse: parseFusionJudge,
          json: FUSION_JUDGE_JSON,
          signal,
        })
        .then((r) => r.value)
        .catch((err: unknown) => {
          throw new Error(`fusion judge failed: ${errorText(err)}`, { cause: err });
        }),
    ]);
  } catch (err) {
    return fail(err, "scoring failed", fused);
  }
  guard.success("critic");
  const parts = { r_ans: judged.r_ans, r_logic: judged.r_logic, r_graph: judged.r_graph, r_fusion };
  return {
    problem_id: problem.id,
    problem_text: problem.text,
    ground_truth: problem.answer,
    generator_id: `generator_${generator}`,
    source_rollouts: sources,
    fused_scaffold: fused,
    answer: judged.answer,
    is_correct: judged.r_ans === 1,
    ...parts,
    r_total: totalReward(parts, opts.weights ?? DEFAULT_CRITIC_WEIGHTS),
    ...(judged.notes.length > 0 ? { error: judged.notes.join("; ") } : {}),
    timestamp: now.toISOString(),
  };
}

/**
 * For each problem and each generator separately, fuse that generator's rollouts into one
 * scaffold. Results are appended per (problem, generator), which is also the resume key. The
 * critic learns from the group of its fusions of one problem (one per generator), once all of
 * them succeeded; a generator record with failed rollouts is waited for, not fused.
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
  const count = (kind: string) => {
    if (kind !== "stopped") summary.failures[kind] = (summary.failures[kind] ?? 0) + 1;
  };
  const warn = (line: string) => {
    summary.warnings.push(line);
    progress?.log(`warning: ${line}`);
  };

  await mapPool(ids, opts.problemConcurrency ?? 1, async (id) => {
    const available = generators.filter((g) => caches.get(g)!.has(id));
    const waiting = available.filter((g) => !isCompleteRecord(caches.get(g)!.get(id)!, { learn: false }));
    const ready = available.filter((g) => !waiting.includes(g));
    const done = (g: GeneratorId) => {
      const r = existing.get(criticKey(id, `generator_${g}`));
      return r !== undefined && !isFailedFusion(r);
    };
    const pending = ready.filter((g) => !done(g));
    const state = learning.get(id);
    const learningOpen = learn && (state?.status === "pending" || state?.status === "failed");
    if (available.length === 0) {
      warn(`critic: no generator has a record of problem ${id}; it is skipped`);
      summary.skipped++;
      progress?.tick(1, { skipped: id });
      return;
    }
    for (const g of waiting) {
      const n = caches.get(g)!.get(id)!.rollouts.filter(isFailedRollout).length;
      warn(
        `critic: generator_${g}'s record of ${id} is incomplete (${n} failed rollouts); its fusion waits — rerun grpo generator --id ${g} first`,
      );
    }
    summary.waitingForGenerators += waiting.length;
    if (waiting.length === 0 && pending.length === 0 && !learningOpen) {
      summary.alreadyComplete++;
      progress?.tick(1, { done: id });
      return;
    }
    if (guard.stopped) {
      summary.skipped++;
      progress?.tick(1, { skipped: id });
      return;
    }
    const first = caches.get(available[0]!)!.get(id)!;
    const problem: ProblemRef = { id, text: first.problem_text, answer: first.ground_truth };
    const experiencesText = library.formatForPrompt(opts.experiences.library("shared").entries());
    const fresh = await Promise.all(
      pending.map((g) => {
        const prev = existing.get(criticKey(id, `generator_${g}`));
        return fuseAndScore(opts, problem, g, caches.get(g)!.get(id)!, experiencesText, now(), {
          guard,
          ...(prev?.unscored_fusion !== undefined ? { unscored: prev.unscored_fusion } : {}),
        });
      }),
    );
    const realFailures = fresh.filter((r) => isFailedFusion(r) && r.error_kind !== "stopped");
    const toWrite = fresh.filter((r) => !(isFailedFusion(r) && r.error_kind === "stopped"));
    for (const r of realFailures) count(r.error_kind ?? "error");
    summary.fused += fresh.filter((r) => !isFailedFusion(r)).length;
    summary.failedFusions += realFailures.length;
    // The group: every generator's fusion of this problem, earlier ones included.
    const group = ready.map(
      (g) =>
        fresh.find((r) => r.generator_id === `generator_${g}`) ??
        existing.get(criticKey(id, `generator_${g}`))!,
    );
    const complete = waiting.length === 0 && group.every((r) => !isFailedFusion(r));
    const totals = group.map((r) => r.r_total);
    const decision = decideExtraction(
      totals,
      group.map((r) => r.is_correct),
      extraction,
    );
    const learns = learn && complete && group.length >= 2 && decision.extract;
    const stamp = () => now().toISOString();
    // "pending" goes before the fusions that complete the group, so a crash in between leaves
    // the learning step outstanding rather than forgotten.
    if (learns && state?.status !== "pending")
      appendCriticLearning(learningPath, {
        problem_id: id,
        status: "pending",
        reason: decision.reason,
        timestamp: stamp(),
      });
    for (const rec of toWrite) {
      appendCriticRecord(resultsPath, rec);
      summary.records.push(rec);
    }
    let learnFailed = false;
    if (learns) {
      const outcome = await extractExperiences({
        client: opts.client,
        prompts: opts.prompts,
        library,
        problem,
        attempts: group.map((rec, i) => ({
          id: ready[i]!,
          scaffoldText: JSON.stringify(rec.fused_scaffold),
          answer: rec.answer === null ? null : String(rec.answer),
          isCorrect: rec.is_correct,
          reward: rec.r_total,
        })),
        temperature: extraction.temperature,
        now,
        signal: guard.signal,
      });
      for (const w of outcome.warnings) warn(w);
      if (outcome.error) {
        const kind = guard.failure(
          "critic",
          `problem ${id}, learning step`,
          outcome.cause ?? new Error(outcome.error),
        );
        if (kind === "stopped") {
          // the "pending" line already says the step is outstanding
          summary.skipped++;
          progress?.tick(1, { skipped: id });
          return;
        }
        count(kind);
        learnFailed = true;
        appendCriticLearning(learningPath, {
          problem_id: id,
          status: "failed",
          reason: decision.reason,
          error: outcome.error,
          timestamp: stamp(),
        });
      } else {
        await library.saveAsync();
        summary.extractions++;
        appendCriticLearning(learningPath, {
          problem_id: id,
          status: "done",
          reason: decision.reason,
          added: outcome.added,
          modified: outcome.modified,
          deleted: outcome.deleted,
          merged: outcome.merged,
          timestamp: stamp(),
        });
      }
    } else if (learningOpen && complete) {
      // an outstanding step whose group no longer teaches (e.g. another τ): settled without learning
      appendCriticLearning(learningPath, {
        problem_id: id,
        status: "done",
        reason: decision.reason,
        timestamp: stamp(),
      });
    }
    if (realFailures.length > 0 || learnFailed) summary.failed++;
    else if (!complete) summary.skipped++;
    else summary.completed++;
    const { mean, std } = groupStats(totals);
    progress?.tick(1, {
      μ: mean,
      σ: std,
      learn: learns ? (learnFailed ? "failed" : "yes") : "no",
    });
  });
  progress?.stop();
  return summary;
}
