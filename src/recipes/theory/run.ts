import { pickGrpo } from "../../core/config.ts";
import { Rng } from "../../core/rng.ts";
import { GPT } from "../../model/gpt.ts";
import { sample } from "../../model/sampler.ts";
import { loadStartingModel, type RecipeHooks, resumeOrStartTrainer } from "../../rl/prepare.ts";
import { sftTrain } from "../../rl/sft.ts";
import { DEFAULT_TRAINER_CONFIG, type GrpoTrainer, type TrainerConfig } from "../../rl/trainer.ts";
import {
  DEMONSTRATIONS,
  MODEL_SIZES,
  type ModelSize,
  QUICK_GRAMMAR,
  QUICK_GRAMMAR_VALID_THEORIES,
  THEORY_GRPO_KEYS,
  type TheoryRunOptions,
} from "./presets.ts";
import { type TheoryRlTask, theoryRlTask, validShare } from "./rl-task.ts";

export { LEARNING_THEORY_RUN, QUICK_THEORY_RUN, type TheoryRunOptions } from "./presets.ts";

/** The task with the run's reward shaping and demonstrations. */
export function theoryTaskFor(
  o: Pick<
    TheoryRunOptions,
    | "partialCredit"
    | "noveltyWeight"
    | "coreNoveltyWeight"
    | "contentDiversityWeight"
    | "contentNoveltyWeight"
    | "diversityWeight"
    | "archiveReplay"
    | "demoValidShare"
  >,
): TheoryRlTask {
  return theoryRlTask({
    ...QUICK_GRAMMAR,
    reward: { partialCredit: o.partialCredit },
    noveltyWeight: o.noveltyWeight,
    coreNoveltyWeight: o.coreNoveltyWeight,
    contentDiversityWeight: o.contentDiversityWeight,
    contentNoveltyWeight: o.contentNoveltyWeight,
    diversityWeight: o.diversityWeight,
    archiveReplay: o.archiveReplay,
    validShare: o.demoValidShare,
    validTheories: QUICK_GRAMMAR_VALID_THEORIES,
  });
}

export function trainerConfigFor(o: TheoryRunOptions, task: TheoryRlTask): TrainerConfig {
  return {
    ...DEFAULT_TRAINER_CONFIG,
    ...pickGrpo(o, THEORY_GRPO_KEYS),
    promptsPerStep: 1,
    // The grammar bounds a theory; the limit is the room it leaves after the prompt.
    maxCompletionLength: task.contextLength - 1,
    evalEvery: o.evalInterval,
    // The success rate and theories before any GRPO step: training_stats.json's `initial`.
    evalOnStart: true,
    evalSamples: o.evalSamples,
    // The success share and the theories found are the policy's own, whatever the exploration.
    evalTemperature: 1,
    saveEvery: o.saveInterval,
    curriculum: o.useCurriculum ? { phases: 3, threshold: 0.5, window: 3 } : undefined,
    // Prioritised replay brings back the rare groups with a clear winner (an anomaly-free theory).
    replay: o.replay > 0 ? { capacity: 64, perStep: o.replay } : undefined,
    // Sampling is cheap next to the update: sample the group, update on its most varied part
    // (a group no larger than that part is updated on whole).
    downsample: o.downsample > 0 && o.downsample < o.numGenerations ? o.downsample : undefined,
  };
}

export function newTheoryModel(task: TheoryRlTask, size: ModelSize, rng: Rng): GPT {
  return new GPT({ vocabSize: task.vocabSize, contextLength: task.contextLength, ...MODEL_SIZES[size] }, rng);
}

/**
 * The demonstrations of a run's warm start (mostly anomalous theories), from their own stream
 * so that a run started from a checkpoint knows them too; their valid theories go into the
 * task's archive, where they count as seen and not as discoveries.
 */
export function showDemonstrations(task: TheoryRlTask, seed: number): number[][] {
  const demos = task.demonstrations!(new Rng(seed ^ 0xde705), DEMONSTRATIONS);
  task.archive.addDemonstrations(demos.map(task.validClass));
  return demos;
}

/** Supervised warm start on `demos` (showDemonstrations). */
export function warmStart(
  model: GPT,
  task: TheoryRlTask,
  demos: number[][],
  steps: number,
  rng: Rng,
  onStep?: (step: number, loss: number) => void,
): number[] {
  if (steps <= 0) return [];
  return sftTrain(model, demos, { steps, batchSize: 32, learningRate: 3e-3, eosId: task.eosId, rng, onStep });
}

/**
 * Share of anomaly-free, non-trivial theories, how many distinct ones (and how many of those the
 * task's archive does not list as demonstrated), and the mean phase-3 reward over `n` samples.
 */
export function measureTheories(model: GPT, task: TheoryRlTask, n: number, seed: number, temperature = 1) {
  const rng = new Rng(seed);
  const res = sample(
    model,
    Array.from({ length: n }, () => task.evalPrompts()[0]!),
    {
      maxNewTokens: task.contextLength - 1,
      temperature,
      eosId: task.eosId,
      constraint: task.constraint,
      rng,
    },
  );
  const rewards = res.tokens.map((t) => task.reward(t, 3).total);
  const distinct = new Set(res.tokens.map(task.validClass).filter((c) => c !== null));
  return {
    validShare: validShare(task, res.tokens),
    distinctValid: distinct.size,
    novelValid: [...distinct].filter((c) => !task.archive.inDemonstrations(c!)).length,
    reward: rewards.reduce((a, b) => a + b, 0) / Math.max(1, n),
    examples: res.tokens.slice(0, 3).map((t) => task.theory.grammar.tokensToString(t)),
  };
}

export type TheoryRunHooks = RecipeHooks;

/** Builds (or resumes) the trainer: fresh warm-started model, a pretrained checkpoint, or a resumable run. */
export async function prepareTheoryTrainer(
  o: TheoryRunOptions,
  hooks: TheoryRunHooks,
): Promise<{ trainer: GrpoTrainer; task: TheoryRlTask }> {
  const task = theoryTaskFor(o);
  const config = trainerConfigFor(o, task);
  const runInfo = {
    recipe: "theory",
    model_size: o.modelSize,
    sft_steps: o.sftSteps,
    partial_credit: o.partialCredit,
    novelty_weight: o.noveltyWeight,
    core_novelty_weight: o.coreNoveltyWeight,
    content_diversity_weight: o.contentDiversityWeight,
    content_novelty_weight: o.contentNoveltyWeight,
    diversity_weight: o.diversityWeight,
    archive_replay: o.archiveReplay,
    demo_valid_share: o.demoValidShare,
  };
  const run = { task, config, outputDir: o.outputDir, resume: o.resume, runInfo };
  const trainer = await resumeOrStartTrainer(run, hooks, () => {
    const rng = new Rng(o.seed ^ 0x5f7);
    if (o.checkpoint) {
      const model = loadStartingModel(o.checkpoint, o.seed, { name: "theory", vocabSize: task.vocabSize });
      // What the recipe's warm start shows for this seed: the checkpoint's own, if it is one of ours.
      showDemonstrations(task, o.seed);
      hooks.log(`starting from ${o.checkpoint}`);
      return model;
    }
    const model = newTheoryModel(task, o.modelSize, rng);
    if (o.sftSteps > 0) {
      const demos = showDemonstrations(task, o.seed);
      hooks.log(
        `warm start: ${o.sftSteps} supervised steps on ${demos.length} demonstrations (${task.archive.demonstrationClasses} distinct valid theories among them)`,
      );
      const losses = warmStart(model, task, demos, o.sftSteps, rng);
      hooks.log(`warm start: cross-entropy ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`);
    }
    return model;
  });
  return { trainer, task };
}
