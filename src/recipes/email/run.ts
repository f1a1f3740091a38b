import { join } from "node:path";
import { pickGrpo } from "../../core/config.ts";
import { Rng } from "../../core/rng.ts";
import { writeJsonAtomic } from "../../io/files.ts";
import { GPT, LORA_TARGETS } from "../../model/gpt.ts";
import { saveModel } from "../../model/safetensors.ts";
import { METADATA_FILE } from "../../rl/checkpoint.ts";
import { loadStartingModel, type RecipeHooks, resumeOrStartTrainer } from "../../rl/prepare.ts";
import { sftTrain } from "../../rl/sft.ts";
import { DEFAULT_TRAINER_CONFIG, type GrpoTrainer, type TrainerConfig } from "../../rl/trainer.ts";
import {
  BASE_MODEL_DIR,
  EMAIL_GRPO_KEYS,
  EMAIL_INBOX,
  EMAIL_MODEL,
  type EmailRunOptions,
  RUN_INFO_INBOX,
} from "./presets.ts";
import { type EmailRlTask, emailRlTask } from "./rl-task.ts";

export function emailTask(o: EmailRunOptions): EmailRlTask {
  return emailRlTask({
    mode: o.mode,
    trainSize: o.trainDatasetSize,
    evalSize: o.evalDatasetSize,
    demoSize: o.sftDemos,
    seed: o.seed,
    maxTurns: o.maxTurns,
    maxTokens: o.maxTokens,
    maxTurnTokens: o.maxTurnTokens,
    contextLength: EMAIL_MODEL.contextLength,
    inbox: EMAIL_INBOX,
    answerPartsWeight: o.answerPartsWeight,
  });
}

export function emailTrainerConfig(o: EmailRunOptions): TrainerConfig {
  return {
    ...DEFAULT_TRAINER_CONFIG,
    ...pickGrpo(o, EMAIL_GRPO_KEYS),
    maxSteps: o.maxSteps,
    learningRate: o.learningRate,
    numGenerations: o.numGenerations,
    beta: o.beta,
    promptsPerStep: o.perDeviceTrainBatchSize,
    maxCompletionLength: o.maxTokens,
    evalTemperature: o.evalTemperature,
    evalEvery: o.evalEvery,
    evalSamples: 1,
    saveEvery: o.saveEvery,
    targetAccuracy: o.targetAccuracy,
  };
}

export function newEmailModel(task: EmailRlTask, rng: Rng): GPT {
  return new GPT({ vocabSize: task.vocabSize, ...EMAIL_MODEL }, rng);
}

export type EmailDemonstrations = ReturnType<EmailRlTask["demonstrationSet"]>;

/** One noisy demonstration per demonstration question (per training question without them), for the warm start. */
export function emailDemonstrations(task: EmailRlTask, noise: number, rng: Rng): EmailDemonstrations {
  return task.demonstrationSet(rng, task.dataset.demos.length || task.dataset.train.length, noise);
}

/**
 * Supervised warm start on demonstrations, trained on the policy's tokens only. Each call is
 * one Adam run; the bench calls it in pieces on the same demonstrations.
 */
export function emailWarmStart(
  model: GPT,
  task: EmailRlTask,
  demos: EmailDemonstrations,
  steps: number,
  rng: Rng,
  onStep?: (step: number, loss: number) => void,
): number[] {
  if (steps <= 0) return [];
  return sftTrain(model, demos.ids, {
    steps,
    batchSize: 8,
    learningRate: 3e-3,
    eosId: task.vocab.eosId!,
    targets: demos.targets,
    rng,
    onStep,
  });
}

/** A warm-started model with the metadata of a checkpoint that has had no GRPO step. */
export function saveBaseModel(dir: string, model: GPT, config: Record<string, unknown>): void {
  saveModel(dir, model);
  writeJsonAtomic(join(dir, METADATA_FILE), {
    step: 0,
    accuracy: null,
    success_rate: null,
    reward: null,
    config,
  });
}

export type EmailRunHooks = RecipeHooks;

/**
 * Builds (or resumes) the trainer: the warm-started base is saved once to
 * <output>/base_model/, then LoRA adapters are trained on top of it; checkpoints and
 * best_model/ hold only the adapter, pointing back to that base.
 */
export async function prepareEmailTrainer(
  o: EmailRunOptions,
  hooks: EmailRunHooks,
): Promise<{ trainer: GrpoTrainer; task: EmailRlTask; sftAccuracy: number | null }> {
  const task = emailTask(o);
  const config = emailTrainerConfig(o);
  const baseDir = join(o.outputDir, BASE_MODEL_DIR);
  const runInfo = {
    recipe: "email",
    mode: o.mode,
    model: EMAIL_MODEL,
    [RUN_INFO_INBOX]: EMAIL_INBOX,
    max_turns: o.maxTurns,
    max_tokens: o.maxTokens,
    max_turn_tokens: o.maxTurnTokens,
    sft_steps: o.sftSteps,
    sft_noise: o.sftNoise,
    sft_demos: o.sftDemos,
    lora_rank: o.loraRank,
    answer_parts_weight: o.answerPartsWeight,
  };
  const run = { task, config, outputDir: o.outputDir, resume: o.resume, runInfo, baseModelDir: baseDir };
  const trainer = await resumeOrStartTrainer(run, hooks, () => {
    const rng = new Rng(o.seed ^ 0xe3a1);
    let model: GPT;
    if (o.baseModel) {
      model = loadStartingModel(o.baseModel, o.seed, {
        name: "email",
        vocabSize: task.vocabSize,
        fullModel: true,
      });
      hooks.log(`starting from ${o.baseModel}`);
    } else {
      model = newEmailModel(task, rng);
      if (o.sftSteps > 0) {
        hooks.log(`warm start: ${o.sftSteps} supervised steps on demonstrations (noise ${o.sftNoise})`);
        const demos = emailDemonstrations(task, o.sftNoise, rng);
        const losses = emailWarmStart(model, task, demos, o.sftSteps, rng, (s, l) => {
          if (s % 50 === 0) hooks.log(`warm start: step ${s}/${o.sftSteps}, cross-entropy ${l.toFixed(3)}`);
        });
        hooks.log(`warm start: cross-entropy ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`);
      }
    }
    saveBaseModel(baseDir, model, { ...runInfo, base_model: o.baseModel ?? null });
    // A stream of its own, so that a run from a saved warm start (--base-model) trains exactly
    // as the run that made it did.
    const loraRng = new Rng(o.seed ^ 0x10a4);
    model.enableLoRA({ r: o.loraRank, alpha: 2 * o.loraRank, targetModules: [...LORA_TARGETS] }, loraRng);
    return model;
  });
  return { trainer, task, sftAccuracy: null };
}
