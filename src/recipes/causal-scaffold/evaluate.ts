import { join } from "node:path";
import type { UsageSummary } from "../../llm/usage.ts";
import { type AccuracyAtK, accuracyAtK } from "../../training-free/evaluate.ts";
import type { CausalScaffoldEngine } from "./engine.ts";
import type { GeneratorSummary } from "./generator.ts";
import type { ExperienceManager } from "./libraries.ts";
import type { GeneratorId } from "./rewards.ts";
import { isCompleteRecord } from "./rollout-cache.ts";
import type { ProblemRef } from "./solve.ts";
import { learningCost } from "./usage-log.ts";

export interface EvalArm {
  perGenerator: Record<string, AccuracyAtK>;
  overall: AccuracyAtK;
}

export interface EvalResult {
  k: number;
  /** The problems compared: complete for every generator in both arms. */
  problems: string[];
  /** Requested problems left out because a rollout of some arm failed (or the run stopped). */
  failed_problems: string[];
  generators: GeneratorId[];
  with_experiences: EvalArm;
  without_experiences: EvalArm;
  /** with − without, on the pooled rollouts of all evaluated generators. */
  delta: { meanAtK: number; passAtK: number };
  /** Usage of every recorded run except evaluations (grpo_training/usage/). */
  learning_cost: UsageSummary;
  outDir: string;
}

/** Latest complete record per problem of one generator's pass. */
function completeRecords(s: GeneratorSummary) {
  const out = new Map<string, GeneratorSummary["records"][number]>();
  for (const r of s.records) if (isCompleteRecord(r, { learn: false })) out.set(r.problem_id, r);
  return out;
}

function armOf(summaries: readonly GeneratorSummary[], k: number, ids: readonly string[]): EvalArm {
  const perGenerator: Record<string, AccuracyAtK> = {};
  const all: GeneratorSummary["records"] = [];
  for (const s of summaries) {
    const byId = completeRecords(s);
    const records = ids.map((id) => byId.get(id)!);
    perGenerator[`generator_${s.generator}`] = accuracyAtK(records, k);
    all.push(...records);
  }
  return { perGenerator, overall: accuracyAtK(all, k) };
}

/**
 * A/B on the same problems: every generator solves each problem k times with its learned
 * library in the prompt and k times without it. Nothing is learned during evaluation. Only
 * problems complete in both arms are compared; the others are listed as failed. The learning
 * cost counts every recorded run except evaluations.
 */
export async function evaluate(opts: {
  engine: CausalScaffoldEngine;
  experiences: ExperienceManager;
  problems: readonly ProblemRef[];
  k: number;
  generators: readonly GeneratorId[];
  outDir: string;
}): Promise<EvalResult> {
  const cost = learningCost(opts.engine.workdir);
  const arm = async (useExperiences: boolean) =>
    Promise.all(
      opts.generators.map((id) =>
        opts.engine.runGenerator(id, {
          problems: opts.problems,
          rollouts: opts.k,
          experiences: opts.experiences,
          learn: false,
          useExperiences,
          cacheDir: join(opts.outDir, useExperiences ? "with_experiences" : "without_experiences"),
        }),
      ),
    );
  const [withExp, withoutExp] = await Promise.all([arm(true), arm(false)]);
  // A failed rollout is no result: both arms are compared on the problems both completed.
  const passes = [...withExp, ...withoutExp].map(completeRecords);
  const requested = [...new Set(opts.problems.map((p) => p.id))];
  const ids = requested.filter((id) => passes.every((m) => m.has(id)));
  const w = armOf(withExp, opts.k, ids);
  const wo = armOf(withoutExp, opts.k, ids);
  return {
    k: opts.k,
    problems: ids,
    failed_problems: requested.filter((id) => !ids.includes(id)),
    generators: [...opts.generators],
    with_experiences: w,
    without_experiences: wo,
    delta: {
      meanAtK: w.overall.meanAtK - wo.overall.meanAtK,
      passAtK: w.overall.passAtK - wo.overall.passAtK,
    },
    learning_cost: cost,
    outDir: opts.outDir,
  };
}
