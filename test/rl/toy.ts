import type { Rng } from "../../src/core/rng.ts";
import { Rng as RngClass } from "../../src/core/rng.ts";
import { GPT } from "../../src/model/gpt.ts";
import { DEFAULT_TRAINER_CONFIG, type TrainerConfig } from "../../src/rl/trainer.ts";
import type { RlTask } from "../../src/rl/types.ts";

/** Token ids of the toy task: <bos>, <eos>, and four symbols a, b, c, d. */
export const BOS = 0;
export const EOS = 1;
export const TARGET = 2;

/**
 * Reward = share of the first four generated symbols that are `a` (eos counts as a miss), so a
 * policy can only raise it by putting more mass on one particular token: a wrong sign in the
 * update would lower it.
 */
export function toyTask(): RlTask {
  return {
    name: "toy",
    eosId: EOS,
    trainPrompts: (_rng: Rng, n: number) => Array.from({ length: n }, () => [BOS]),
    evalPrompts: () => [[BOS]],
    reward(tokens) {
      const hits = tokens.slice(0, 4).filter((t) => t === TARGET).length;
      return { total: hits / 4, success: hits === 4 };
    },
    demonstrations: (rng: Rng, n: number) =>
      Array.from({ length: n }, () => [BOS, ...Array.from({ length: 4 }, () => 2 + rng.int(4)), EOS]),
  };
}

export function tinyGpt(seed = 1): GPT {
  return new GPT({ vocabSize: 6, contextLength: 8, dModel: 16, nLayers: 1, nHeads: 2 }, new RngClass(seed));
}

/** Trainer settings under which the toy task learns in a few steps. */
export const TOY_TRAINER_CONFIG: TrainerConfig = {
  ...DEFAULT_TRAINER_CONFIG,
  numGenerations: 16,
  promptsPerStep: 2,
  maxCompletionLength: 4,
  // The KL and entropy terms on, so that the tests exercise the whole objective.
  beta: 0.05,
  entropyCoef: 0.01,
  learningRate: 3e-2,
  evalEvery: 0,
  evalSamples: 32,
  seed: 7,
};
