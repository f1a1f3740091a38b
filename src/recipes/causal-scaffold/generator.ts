import { groupStats } from "../../core/advantages.ts";
import { repairJsonlTail } from "../../io/files.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient } from "../../llm/port.ts";
import { mapPool } from "../../training-free/pool.ts";
import { decideExtraction } from "../../training-free/triggers.ts";
import { DEFAULT_EXTRACTION, type ExtractionSettings, extractExperiences } from "./extraction.ts";
import type { ExperienceManager, LibraryOwner } from "./libraries.ts";
import { cacheDir, generatorCachePath } from "./paths.ts";
import type { Progress } from "./progress.ts";
import type { PromptSet } from "./prompts.ts";
import type { GeneratorId, RewardWeights } from "./rewards.ts";
import { DEFAULT_GENERATOR_WEIGHTS, totalReward } from "./rewards.ts";
import {
  appendProblemRecord,
  completedProblemIds,
  type ProblemRecord,
  type RolloutRecord,
} from "./rollout-cache.ts";
import type { Scaffold } from "./scaffold.ts";
import { parseScaffold } from "./scaffold-parse.ts";
import type { ProblemRef, ScoreOptions } from "./solve.ts";
import { judgeScaffold } from "./solve.ts";

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
  progress?: Progress;
  now?: () => Date;
}

export interface GeneratorSummary {
  generator: GeneratorId;
  cachePath: string;
  processed: number;
  skipped: number;
  failedRollouts: number;
  extractions: number;
  warnings: string[];
  records: ProblemRecord[];
}

/** A rollout whose scaffold could not be produced or parsed: kept, with zero rewards. */
function failedRollout(rolloutId: number, error: string): RolloutRecord {
  return {
    rollout_id: rolloutId,
    scaffold: null,
    answer: null,
    is_correct: false,
    r_ans: 0,
    r_logic: 0,
    r_graph: 0,
    r_total: 0,
    error,
  };
}

export async function runRollout(
  opts: Pick<GeneratorOptions, "client" | "prompts" | "temperature" | "llmEquivalence">,
  problem: ProblemRef,
  rolloutId: number,
  experiencesText: string,
  weights: RewardWeights,
): Promise<RolloutRecord> {
  const prompt = opts.prompts.render("generator_scaffold", {
    problem: problem.text,
    experiences: experiencesText,
  });
  let text: string;
  try {
    text = (await opts.client.chat(userMessage(prompt), { temperature: opts.temperature })).text;
  } catch (err) {
    return failedRollout(rolloutId, `scaffold request failed: ${errorText(err)}`);
  }
  const parsed = parseScaffold(text);
  if (!parsed.ok)
    return failedRollout(
      rolloutId,
      `unparseable scaffold: ${parsed.error}; reply began: ${text.slice(0, 200)}`,
    );
  const scaffold: Scaffold = parsed.scaffold;
  const judged = await judgeScaffold(opts.client, opts.prompts, problem, scaffold, {
    llmEquivalence: opts.llmEquivalence,
  });
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

/**
 * One generator over a list of problems: N rollouts per problem, group statistics, experience
 * update when the group disagrees, one complete JSONL line per problem. Problems already in the
 * cache are skipped, so a rerun after a crash finishes the job without repeating or losing any.
 */
export async function runGenerator(opts: GeneratorOptions): Promise<GeneratorSummary> {
  const agent = generatorAgent(opts.id);
  const cachePath = generatorCachePath(opts.cacheDir ?? cacheDir(opts.workdir), opts.id);
  const weights = opts.weights ?? DEFAULT_GENERATOR_WEIGHTS[opts.id];
  const extraction = opts.extraction ?? DEFAULT_EXTRACTION;
  const learn = opts.learn ?? true;
  const useExperiences = opts.useExperiences ?? true;
  // A line torn by a killed run would glue onto the next append; cut it first.
  repairJsonlTail(cachePath);
  const done = completedProblemIds(cachePath);
  // a problem listed twice (two data sets sharing ids) must still be solved and written once
  const todo: ProblemRef[] = [];
  for (const p of opts.problems) {
    if (done.has(p.id)) continue;
    done.add(p.id);
    todo.push(p);
  }
  const library = opts.experiences.library(agent);
  const shared = opts.experiences.library("shared");
  const summary: GeneratorSummary = {
    generator: opts.id,
    cachePath,
    processed: 0,
    skipped: opts.problems.length - todo.length,
    failedRollouts: 0,
    extractions: 0,
    warnings: [],
    records: [],
  };
  if (summary.skipped > 0) opts.progress?.tick(summary.skipped, { skipped: summary.skipped });
  const now = () => (opts.now ? opts.now() : new Date());
  await mapPool(todo, opts.problemConcurrency ?? 1, async (problem) => {
    const experiencesText = useExperiences ? library.formatForPrompt(shared.entries()) : "(none)";
    if (useExperiences && learn) library.markUsed();
    const rollouts = await Promise.all(
      Array.from({ length: opts.rollouts }, (_, i) =>
        runRollout(opts, problem, i + 1, experiencesText, weights),
      ),
    );
    const totals = rollouts.map((r) => r.r_total);
    const decision = decideExtraction(
      totals,
      rollouts.map((r) => r.is_correct),
      extraction,
    );
    const { mean, std } = groupStats(totals);
    let extractionNote: ProblemRecord["extraction"] = {
      triggered: decision.extract && learn,
      reason: decision.reason,
    };
    if (decision.extract && learn) {
      const outcome = await extractExperiences({
        client: opts.client,
        prompts: opts.prompts,
        library,
        problem,
        attempts: rollouts.map((r) => ({
          id: r.rollout_id,
          scaffoldText:
            r.scaffold === null
              ? `(no scaffold: ${r.error ?? "unknown"})`
              : typeof r.scaffold === "string"
                ? r.scaffold
                : JSON.stringify(r.scaffold),
          answer: r.answer === null ? null : String(r.answer),
          isCorrect: r.is_correct,
          reward: r.r_total,
        })),
        temperature: extraction.temperature,
        now,
      });
      for (const w of outcome.warnings) {
        summary.warnings.push(w);
        opts.progress?.log(`warning: ${w}`);
      }
      if (outcome.error)
        opts.progress?.log(`experience extraction failed on ${problem.id}: ${outcome.error}`);
      // The library is saved before the cache line: a crash in between re-runs this problem,
      // which at worst learns twice, instead of losing what was learned.
      await library.saveAsync();
      summary.extractions++;
      extractionNote = {
        triggered: true,
        reason: decision.reason,
        added: outcome.added,
        modified: outcome.modified,
        deleted: outcome.deleted,
        merged: outcome.merged,
        ...(outcome.error ? { error: outcome.error } : {}),
      };
    }
    const record: ProblemRecord = {
      problem_id: problem.id,
      problem_text: problem.text,
      ground_truth: problem.answer,
      rollouts,
      timestamp: now().toISOString(),
      mean,
      std,
      extraction: extractionNote,
    };
    appendProblemRecord(cachePath, record);
    summary.processed++;
    summary.failedRollouts += rollouts.filter((r) => r.scaffold === null).length;
    summary.records.push(record);
    opts.progress?.tick(1, {
      μ: mean,
      σ: std,
      learn: decision.extract && learn ? "yes" : "no",
    });
  });
  // usage counts move on every problem, not only on those that taught the library
  if (learn && useExperiences && todo.length > 0) await library.saveAsync();
  opts.progress?.stop();
  return summary;
}
