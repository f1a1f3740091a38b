import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../core/rng.ts";
import type { BackendName } from "../../model/backend.ts";
import { GPT } from "../../model/gpt.ts";
import { sample } from "../../model/sampler.ts";
import { loadPolicy } from "../checkpoint.ts";
import { sftTrain } from "../sft.ts";
import {
  DEFAULT_TRAINER_CONFIG,
  type EvalResult,
  GrpoTrainer,
  type StepRecord,
  type TrainerConfig,
} from "../trainer.ts";
import {
  MODEL_SIZES,
  type ModelSize,
  QUICK_GRAMMAR,
  type TheoryRlTask,
  theoryRlTask,
  validShare,
} from "./theory.ts";

/** Everything `grpo train theory` can set; the CLI flags map one to one. */
export interface TheoryRunOptions {
  /** GRPO steps; each samples `groupSize` theories from the current policy. */
  numEpisodes: number;
  groupSize: number;
  learningRate: number;
  temperature: number;
  klCoef: number;
  clipRange: number;
  entropyCoef: number;
  useCurriculum: boolean;
  logInterval: number;
  saveInterval: number;
  evalInterval: number;
  evalSamples: number;
  checkpoint?: string;
  resume: boolean;
  outputDir: string;
  seed: number;
  backend?: BackendName;
  sftSteps: number;
  modelSize: ModelSize;
  /** Scales the positive reward of theories that are not anomaly-free and non-trivial (1: full partial credit). */
  partialCredit: number;
  /** Stored groups replayed per step from a prioritised buffer (0: none). */
  replay: number;
  /** Update on this many of the group's completions, those whose rewards vary most (0: all). */
  downsample: number;
}

/**
 * The quick default: a tiny model, a warm start and a short GRPO run whose reward visibly rises
 * within a few minutes on two cores (the README's first command).
 */
export const QUICK_THEORY_RUN: TheoryRunOptions = {
  numEpisodes: 100,
  groupSize: 64,
  learningRate: 1e-4,
  temperature: 1,
  klCoef: 0.05,
  clipRange: 0.2,
  entropyCoef: 0.01,
  useCurriculum: false,
  logInterval: 1,
  saveInterval: 50,
  evalInterval: 25,
  evalSamples: 128,
  resume: false,
  outputDir: "outputs/grpo_theory",
  seed: 42,
  sftSteps: 150,
  modelSize: "tiny",
  partialCredit: 1,
  replay: 0,
  downsample: 0,
};

/**
 * The configuration that bench/theory-learning measured (anomaly-free share from < 1 % to
 * > 90 % within 5 minutes of GRPO on 2 cores, on every seed tried): sample 256, update on the
 * 64 most varied, a weak KL, prioritised replay, the curriculum, and no positive reward for
 * near misses in the final phase — with it the policy settles on anomalous theories that
 * collect partial credit, and an anomaly-free sample no longer stands out in its group.
 */
export const LEARNING_THEORY_RUN: TheoryRunOptions = {
  ...QUICK_THEORY_RUN,
  numEpisodes: 1000,
  groupSize: 256,
  downsample: 64,
  learningRate: 5e-4,
  klCoef: 0.01,
  replay: 2,
  useCurriculum: true,
  partialCredit: 0,
  sftSteps: 400,
  evalInterval: 100,
  evalSamples: 256,
  saveInterval: 250,
  outputDir: "outputs/grpo_theory_learning",
};

/** The task with the run's reward shaping. */
export function theoryTaskFor(o: Pick<TheoryRunOptions, "partialCredit">): TheoryRlTask {
  return theoryRlTask({ ...QUICK_GRAMMAR, reward: { partialCredit: o.partialCredit } });
}

export function trainerConfigFor(o: TheoryRunOptions, task: TheoryRlTask): TrainerConfig {
  return {
    ...DEFAULT_TRAINER_CONFIG,
    groupSize: o.groupSize,
    promptsPerStep: 1,
    maxNewTokens: task.contextLength - 1,
    temperature: o.temperature,
    learningRate: o.learningRate,
    loss: {
      ...DEFAULT_TRAINER_CONFIG.loss,
      beta: o.klCoef,
      epsLow: o.clipRange,
      epsHigh: o.clipRange,
      entropyCoef: o.entropyCoef,
    },
    evalEvery: o.evalInterval,
    evalSamples: o.evalSamples,
    saveEvery: o.saveInterval,
    curriculum: o.useCurriculum ? { phases: 3, threshold: 0.5, window: 3 } : undefined,
    // Prioritised replay brings back the rare groups with a clear winner (an anomaly-free theory).
    replay: o.replay > 0 ? { capacity: 64, perStep: o.replay } : undefined,
    // Sampling is cheap next to the update: sample the group, update on its most varied part.
    downsample: o.downsample > 0 ? o.downsample : undefined,
    seed: o.seed,
  };
}

export function newTheoryModel(task: TheoryRlTask, size: ModelSize, rng: Rng): GPT {
  return new GPT({ vocabSize: task.vocabSize, contextLength: task.contextLength, ...MODEL_SIZES[size] }, rng);
}

/** Supervised warm start on the environment's demonstrations (mostly anomalous theories). */
export function warmStart(
  model: GPT,
  task: TheoryRlTask,
  steps: number,
  rng: Rng,
  onStep?: (step: number, loss: number) => void,
): number[] {
  if (steps <= 0) return [];
  const demos = task.demonstrations!(rng, 4096);
  return sftTrain(model, demos, { steps, batchSize: 32, learningRate: 3e-3, eosId: task.eosId, rng, onStep });
}

/** Share of anomaly-free, non-trivial theories and mean phase-3 reward over `n` samples. */
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
  return {
    validShare: validShare(task, res.tokens),
    reward: rewards.reduce((a, b) => a + b, 0) / Math.max(1, n),
    examples: res.tokens.slice(0, 3).map((t) => task.theory.grammar.tokensToString(t)),
  };
}

export interface TheoryRunHooks {
  log(line: string): void;
  onStep?(r: StepRecord, e: EvalResult | null): void;
}

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
  };
  if (o.resume) {
    const trainer = await GrpoTrainer.resume({
      task,
      config,
      outputDir: o.outputDir,
      log: hooks.log,
      runInfo,
    });
    hooks.log(`resumed at step ${trainer.step} from ${o.outputDir}`);
    return { trainer, task };
  }
  const rng = new Rng(o.seed ^ 0x5f7);
  let model: GPT;
  if (o.checkpoint) {
    model = loadPolicy(o.checkpoint, o.seed);
    if (model.config.vocabSize !== task.vocabSize) {
      model.dispose();
      throw new Error(
        `${join(o.checkpoint, "config.json")}: vocab_size ${model.config.vocabSize} does not match the theory grammar (${task.vocabSize})`,
      );
    }
    hooks.log(`starting from ${o.checkpoint}`);
  } else {
    model = newTheoryModel(task, o.modelSize, rng);
    if (o.sftSteps > 0) {
      hooks.log(`warm start: ${o.sftSteps} supervised steps on demonstrations`);
      const losses = warmStart(model, task, o.sftSteps, rng);
      hooks.log(`warm start: cross-entropy ${losses[0]?.toFixed(3)} → ${losses.at(-1)?.toFixed(3)}`);
    }
  }
  if (existsSync(join(o.outputDir, "history.jsonl"))) {
    throw new Error(
      `${join(o.outputDir, "history.jsonl")} exists: pass --resume to continue that run, or choose another --output-dir`,
    );
  }
  const trainer = new GrpoTrainer(model, { task, config, outputDir: o.outputDir, log: hooks.log, runInfo });
  return { trainer, task };
}
