import { join } from "node:path";
import type { UsageSummary } from "../llm/index.ts";
import type { CausalScaffoldEngine } from "./engine.ts";
import type { ExperienceManager } from "./experience.ts";
import type { GeneratorSummary } from "./generator.ts";
import type { GeneratorId } from "./rewards.ts";
import type { ProblemRecord } from "./rollout-cache.ts";
import type { ProblemRef } from "./solve.ts";
import { learningCost } from "./usage-log.ts";

export interface AccuracyAtK {
  k: number;
  problems: number;
  /** Mean over problems of the fraction of the k rollouts that are correct. */
  meanAtK: number;
  /** Fraction of problems with at least one correct rollout among k. */
  passAtK: number;
}

/** Mean@k and Pass@k of cached problem records; a failed rollout counts as wrong. */
export function accuracyAtK(records: readonly ProblemRecord[], k: number): AccuracyAtK {
  if (records.length === 0) return { k, problems: 0, meanAtK: 0, passAtK: 0 };
  let meanSum = 0;
  let passed = 0;
  for (const rec of records) {
    const first = rec.rollouts.slice(0, k);
    const correct = first.filter((r) => r.is_correct).length;
    meanSum += correct / k;
    if (correct > 0) passed++;
  }
  return { k, problems: records.length, meanAtK: meanSum / records.length, passAtK: passed / records.length };
}

export interface EvalArm {
  perGenerator: Record<string, AccuracyAtK>;
  overall: AccuracyAtK;
}

export interface EvalResult {
  k: number;
  problems: string[];
  generators: GeneratorId[];
  with_experiences: EvalArm;
  without_experiences: EvalArm;
  /** with − without, on the pooled rollouts of all evaluated generators. */
  delta: { meanAtK: number; passAtK: number };
  /** Usage of every recorded run except evaluations (grpo_training/usage/). */
  learning_cost: UsageSummary;
  outDir: string;
}

function armOf(summaries: readonly GeneratorSummary[], k: number): EvalArm {
  const perGenerator: Record<string, AccuracyAtK> = {};
  for (const s of summaries) perGenerator[`generator_${s.generator}`] = accuracyAtK(s.records, k);
  return {
    perGenerator,
    overall: accuracyAtK(
      summaries.flatMap((s) => s.records),
      k,
    ),
  };
}

/**
 * A/B on the same problems: every generator solves each problem k times with its learned
 * library in the prompt and k times without it. Nothing is learned during evaluation. The
 * learning cost counts every recorded run except evaluations.
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
  const w = armOf(withExp, opts.k);
  const wo = armOf(withoutExp, opts.k);
  return {
    k: opts.k,
    problems: opts.problems.map((p) => p.id),
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
