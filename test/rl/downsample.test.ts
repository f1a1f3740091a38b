import assert from "node:assert/strict";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { maxVarianceSubset } from "../../src/rl/downsample.ts";
import { GrpoTrainer, type TrainerConfig } from "../../src/rl/trainer.ts";
import { TOY_TRAINER_CONFIG, tinyGpt, toyTask } from "./toy.ts";

await tf.setBackend("cpu");

function variance(xs: number[]): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
}

/** Largest variance over every subset of size m, by enumeration. */
function bruteForceMaxVariance(rewards: number[], m: number): number {
  let best = -1;
  for (let bits = 0; bits < 1 << rewards.length; bits++) {
    const picked = rewards.filter((_, i) => bits & (1 << i));
    if (picked.length === m) best = Math.max(best, variance(picked));
  }
  return best;
}

describe("max-variance down-sampling", () => {
  it("finds a subset as varied as the best of all subsets", () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 40; trial++) {
      const n = 4 + rng.int(6);
      const m = 2 + rng.int(n - 2);
      // Few distinct values, so ties are common.
      const rewards = Array.from({ length: n }, () => rng.int(4) / 4 - (rng.next() < 0.2 ? 1 : 0));
      const kept = maxVarianceSubset(rewards, m);
      assert.equal(new Set(kept).size, m);
      assert.deepEqual(
        kept,
        [...kept].sort((a, b) => a - b),
      );
      const got = variance(kept.map((i) => rewards[i]!));
      assert.ok(Math.abs(got - bruteForceMaxVariance(rewards, m)) < 1e-12, `${rewards} keep ${m}: ${kept}`);
    }
  });

  it("keeps a rare success and the worst of the rest", () => {
    const rewards = [0.05, 0.06, 0.04, 1, 0.05, -0.3, 0.07, 0.05];
    assert.deepEqual(maxVarianceSubset(rewards, 3), [2, 3, 5]);
  });

  it("keeps everything when asked for the whole group, and rejects a size below 1", () => {
    assert.deepEqual(maxVarianceSubset([3, 1, 2], 5), [0, 1, 2]);
    assert.throws(() => maxVarianceSubset([1, 2], 0), /keep must be an integer ≥ 1, got 0/);
  });
});

describe("trainer with down-sampling", () => {
  const config = TOY_TRAINER_CONFIG;

  function weightsAfter(cfg: TrainerConfig, steps: number): number[] {
    const t = new GrpoTrainer(tinyGpt(4), { task: toyTask(), config: cfg });
    for (let i = 0; i < steps; i++) t.trainStep();
    const w = Object.values(t.policy.namedWeights()).flatMap((v) => Array.from(v.dataSync()));
    t.policy.dispose();
    t.dispose();
    return w;
  }

  it("updates on the kept completions only, with advantages relative to them", () => {
    const t = new GrpoTrainer(tinyGpt(4), {
      task: toyTask(),
      config: { ...config, downsample: 4, replay: { capacity: 8, perStep: 0 } },
    });
    const r = t.trainStep();
    const stored = t.replay!.getState();
    assert.ok(stored.length > 0);
    for (const g of stored) {
      assert.equal(g.completions.length, 4);
      assert.ok(Math.abs(g.advantages.reduce((a, b) => a + b, 0)) < 1e-9);
    }
    // The logged reward and success rate still describe everything that was sampled.
    assert.equal(typeof r.reward, "number");
    t.policy.dispose();
    t.dispose();
  });

  it("keeping the whole group is the plain update, keeping fewer is not", () => {
    const plain = weightsAfter(config, 2);
    assert.deepEqual(weightsAfter({ ...config, downsample: 16 }, 2), plain);
    assert.notDeepEqual(weightsAfter({ ...config, downsample: 4 }, 2), plain);
  });

  it("rejects a size outside 2..numGenerations, naming the field", () => {
    for (const downsample of [1, 17, 2.5]) {
      assert.throws(
        () => new GrpoTrainer(tinyGpt(), { task: toyTask(), config: { ...config, downsample } }),
        /downsample must be an integer in 2\.\.numGenerations \(16\)/,
      );
    }
  });
});
