/**
 * What every recipe does before its first step: resume the run in the output directory, or
 * check that the directory holds no earlier run and build a trainer around a new model.
 */
import { join } from "node:path";
import { assertWritableDir } from "../io/writable.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import type { GPT } from "../model/gpt.ts";
import { loadPolicy } from "./checkpoint.ts";
import {
  assertFreshOutputDir,
  type EvalResult,
  GrpoTrainer,
  type StepRecord,
  type TrainerConfig,
} from "./trainer.ts";
import type { RlTask } from "./types.ts";

export interface RecipeHooks {
  log(line: string): void;
  onStep?(r: StepRecord, e: EvalResult | null): void;
}

export interface RecipeRun {
  task: RlTask;
  config: TrainerConfig;
  outputDir: string;
  resume: boolean;
  /** recorded in every checkpoint's metadata: what a later command needs to rebuild the run. */
  runInfo: Record<string, unknown>;
  /** where the frozen base of a LoRA run is saved (its checkpoints hold only the adapter). */
  baseModelDir?: string;
}

/**
 * Resumes `run`, or — for a fresh run, after checking the output directory first so that no
 * warm start is wasted on a run that cannot be written — trains on the model `build` returns.
 * Either way the output directory must be a directory that takes files (checkpoints go there).
 */
export async function resumeOrStartTrainer<P extends CausalLM = GPT>(
  run: RecipeRun,
  hooks: RecipeHooks,
  // NoInfer: a build that only throws (a run that must resume) leaves P at its default.
  build: () => NoInfer<P> | Promise<NoInfer<P>>,
): Promise<GrpoTrainer<P>> {
  const opts = {
    task: run.task,
    config: run.config,
    outputDir: run.outputDir,
    log: hooks.log,
    runInfo: run.runInfo,
    ...(run.baseModelDir === undefined ? {} : { baseModelDir: run.baseModelDir }),
  };
  assertWritableDir(run.outputDir, "--output-dir");
  if (run.resume) {
    const trainer = await GrpoTrainer.resume<P>(opts);
    hooks.log(`resumed at step ${trainer.step} from ${run.outputDir}`);
    return trainer;
  }
  assertFreshOutputDir(run.outputDir);
  return new GrpoTrainer<P>(await build(), opts);
}

/**
 * A saved model to start from, over the recipe's vocabulary; another recipe's model (or one
 * from before a vocabulary change) fails naming the file, before any training. A recipe that
 * puts its own adapter on top (`fullModel`) also refuses a model that already carries one.
 */
export function loadStartingModel(
  dir: string,
  seed: number,
  recipe: { name: string; vocabSize: number; fullModel?: boolean },
): GPT {
  const model = loadPolicy(dir, seed);
  const problem =
    model.config.vocabSize !== recipe.vocabSize
      ? `vocab_size ${model.config.vocabSize} does not match the ${recipe.name} recipe's (${recipe.vocabSize})`
      : recipe.fullModel && model.loraConfig
        ? "holds a LoRA adapter; give the full model it was trained from (its base_model/)"
        : null;
  if (problem === null) return model;
  model.dispose();
  throw new Error(`${join(dir, "config.json")}: ${problem}`);
}
