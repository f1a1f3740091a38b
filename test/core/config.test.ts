import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeAdvantages } from "../../src/core/advantages.ts";
import { epsilonHighOf, GRPO_DEFAULTS, learningRateAt, pickGrpo } from "../../src/core/config.ts";
import { resolveLossConfig } from "../../src/core/loss.ts";

describe("GrpoConfig", () => {
  it("has TRL's defaults where the trainer follows TRL, and says where it does not", () => {
    // TRL's GRPOConfig: num_generations 8, max_completion_length 256, temperature 1, top_p 1,
    // top_k 0, beta 0, num_iterations 1, epsilon 0.2, epsilon_high = epsilon,
    // importance_sampling_level "token", scale_rewards "group", mask_truncated_completions false;
    // TrainingArguments: max_grad_norm 1, seed 42.
    assert.deepEqual(
      pickGrpo(GRPO_DEFAULTS, [
        "numGenerations",
        "maxCompletionLength",
        "temperature",
        "topP",
        "topK",
        "beta",
        "numIterations",
        "epsilon",
        "importanceSamplingLevel",
        "scaleRewards",
        "maskTruncatedCompletions",
        "maxGradNorm",
        "seed",
      ]),
      {
        numGenerations: 8,
        maxCompletionLength: 256,
        temperature: 1,
        topP: 1,
        topK: 0,
        beta: 0,
        numIterations: 1,
        epsilon: 0.2,
        importanceSamplingLevel: "token",
        scaleRewards: "group",
        maskTruncatedCompletions: false,
        maxGradNorm: 1,
        seed: 42,
      },
    );
    assert.equal(GRPO_DEFAULTS.epsilonHigh, undefined);
    assert.equal(epsilonHighOf(GRPO_DEFAULTS), 0.2);
    assert.equal(epsilonHighOf({ epsilon: 0.1, epsilonHigh: 0.28 }), 0.28);
    // Ours, documented as differing: the aggregation the recipes were tuned with, a learning rate
    // for small models, the entropy bonus and DAPO's filter off.
    assert.equal(GRPO_DEFAULTS.lossType, "grpo");
    assert.equal(GRPO_DEFAULTS.learningRate, 1e-4);
    assert.equal(GRPO_DEFAULTS.entropyCoef, 0);
    assert.equal(GRPO_DEFAULTS.dynamicSampling, false);
    assert.equal(GRPO_DEFAULTS.lrSchedulerType, "constant");
    assert.ok(Object.isFrozen(GRPO_DEFAULTS));
  });

  it("is where the loss and the advantages take their defaults from", () => {
    assert.deepEqual(resolveLossConfig(), {
      epsilon: GRPO_DEFAULTS.epsilon,
      epsilonHigh: GRPO_DEFAULTS.epsilon,
      beta: GRPO_DEFAULTS.beta,
      klEstimator: GRPO_DEFAULTS.klEstimator,
      entropyCoef: GRPO_DEFAULTS.entropyCoef,
      lossType: GRPO_DEFAULTS.lossType,
      importanceSamplingLevel: GRPO_DEFAULTS.importanceSamplingLevel,
      maxCompletionLength: undefined,
    });
    // scaleRewards: "group" divides by the group's std.
    assert.deepEqual(
      computeAdvantages([[0, 2]]).advantages,
      computeAdvantages([[0, 2]], { scaleRewards: "group" }).advantages,
    );
  });

  it("pickGrpo keeps the named fields that have a value", () => {
    assert.deepEqual(pickGrpo({ beta: 0.1, epsilon: undefined }, ["beta", "epsilon"]), {
      beta: 0.1,
    });
  });

  it("learningRateAt follows transformers' schedules without warm-up, reaching 0 at maxSteps", () => {
    const at = (lrSchedulerType: "constant" | "linear" | "cosine", step: number) =>
      learningRateAt({ learningRate: 0.1, lrSchedulerType, maxSteps: 40 }, step);
    assert.deepEqual(
      [0, 10, 40, 50].map((s) => at("constant", s)),
      [0.1, 0.1, 0.1, 0.1],
    );
    const near = (got: number[], want: number[]) =>
      got.forEach((v, i) => {
        assert.ok(Math.abs(v - want[i]!) < 1e-12, `${v} for ${want[i]}`);
      });
    near(
      [0, 10, 20, 40, 50].map((s) => at("linear", s)),
      [0.1, 0.075, 0.05, 0, 0],
    );
    near(
      [0, 10, 20, 30, 40].map((s) => at("cosine", s)),
      [0.1, 0.05 * (1 + Math.SQRT1_2), 0.05, 0.05 * (1 - Math.SQRT1_2), 0],
    );
  });
});
