import { join } from "node:path";
import type { UsageSummary } from "../../llm/usage.ts";
import { type AccuracyAtK, accuracyAtK } from "../../training-free/evaluate.ts";
import type { CausalScaffoldEngine } from "./engine.ts";
import type { GeneratorSummary } from "./generator.ts";
import type { ExperienceManager } from "./libraries.ts";
import type { GeneratorId } from "./rewards.ts";
import type { ProblemRef } from "./solve.ts";
import { learningCost } from "./usage-log.ts";

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
