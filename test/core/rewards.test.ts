import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Adam } from "../../src/core/adam.ts";
import { completionMetrics, METRICS } from "../../src/core/metrics.ts";
import { composeRewards, type RewardFunction } from "../../src/core/rewards.ts";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (tol ${tol})`);

describe("composeRewards", () => {
  const fns: RewardFunction<string>[] = [
    { name: "length", weight: 0.5, fn: (c) => c.length },
    { name: "has_a", weight: 2, fn: (c) => (c.includes("a") ? 1 : 0) },
  ];

  it("weights and sums, keeps raw values, reports mean and population std", () => {
    const r = composeRewards(fns, ["ab", "abc", ""]);
    // length: [2, 3, 0]; has_a: [1, 1, 0]; total = 0.5·length + 2·has_a = [3, 3.5, 0]
    assert.deepEqual(r.total, [3, 3.5, 0]);
    assert.deepEqual(r.perFunction, { length: [2, 3, 0], has_a: [1, 1, 0] });
    // length: mean 5/3, σ² = ((1/3)² + (4/3)² + (5/3)²) / 3 = 42/27
    close(r.metrics["rewards/length/mean"]!, 5 / 3);
    close(r.metrics["rewards/length/std"]!, Math.sqrt(42 / 27));
    // has_a: mean 2/3, σ² = (2·(1/3)² + (2/3)²) / 3 = 6/27
    close(r.metrics["rewards/has_a/mean"]!, 2 / 3);
    close(r.metrics["rewards/has_a/std"]!, Math.sqrt(6 / 27));
  });

  it("no completions", () => {
    const r = composeRewards(fns, []);
    assert.deepEqual(r.total, []);
    assert.equal(r.metrics["rewards/length/mean"], 0);
  });

  it("names the function and completion on bad values", () => {
    assert.throws(
      () => composeRewards([{ name: "x", weight: 1, fn: () => Number.NaN }], ["a"]),
      /reward "x" on completion 0/,
    );
    assert.throws(
      () =>
        composeRewards(
          [
            {
              name: "boom",
              weight: 1,
              fn: (c: string) => {
                if (c === "b") throw new Error("bad");
                return 1;
              },
            },
          ],
          ["a", "b"],
        ),
      /reward "boom" failed on completion 1: bad/,
    );
    assert.throws(() => composeRewards([fns[0]!, fns[0]!], ["a"]), /duplicate name "length"/);
    assert.throws(() => composeRewards([{ name: "w", weight: Number.NaN, fn: () => 1 }], ["a"]), /weight/);
  });
});

describe("metrics", () => {
  it("names match the design", () => {
    assert.equal(METRICS.clipRatioLowMean, "clip_ratio/low_mean");
    assert.equal(METRICS.fracRewardZeroStd, "frac_reward_zero_std");
    assert.equal(METRICS.trainableTokens, "trainable_tokens");
    assert.equal(METRICS.completionTokens, "completion_tokens");
    assert.equal(Object.keys(METRICS).length, 13);
  });
  it("completionMetrics", () => {
    // lengths [3, 5, 5], two cut by the limit: mean 13/3, 2 of 3 clipped, 10 of 13 tokens trained
    const m = completionMetrics([
      { tokens: 3, trainable: 3, truncated: false },
      { tokens: 5, trainable: 5, truncated: true },
      { tokens: 5, trainable: 2, truncated: true },
    ]);
    close(m["completions/mean_length"]!, 13 / 3);
    close(m["completions/clipped_ratio"]!, 2 / 3);
    close(m.trainable_tokens_ratio!, 10 / 13);
    assert.equal(m.trainable_tokens, 10);
    assert.equal(m.completion_tokens, 13);
    // Clipped means cut before it ended, not "as long as the limit": an ending at the limit is not.
    assert.equal(
      completionMetrics([{ tokens: 5, trainable: 5, truncated: false }])["completions/clipped_ratio"],
      0,
    );
    assert.deepEqual(completionMetrics([]), {
      "completions/mean_length": 0,
      "completions/clipped_ratio": 0,
      trainable_tokens: 0,
      completion_tokens: 0,
      trainable_tokens_ratio: 0,
    });
    assert.throws(
      () =>
        completionMetrics([
          { tokens: 1, trainable: 1, truncated: false },
          { tokens: -1, trainable: 0, truncated: false },
        ]),
      /completions\[1\]\.tokens/,
    );
    assert.throws(
      () => completionMetrics([{ tokens: 2, trainable: 3, truncated: false }]),
      /completions\[0\]\.trainable/,
    );
  });
});

describe("Adam", () => {
  it("first step moves each parameter by about lr against the gradient sign", () => {
    // g = 2: m = 0.2, v = 0.004; bias-corrected m̂ = 0.2/0.1 = 2, v̂ = 0.004/0.001 = 4; Δ = 0.1·2/2 = 0.1
    const p = [1, 1];
    new Adam(2, { lr: 0.1 }).step(p, [2, -3]);
    close(p[0]!, 0.9, 1e-8);
    close(p[1]!, 1.1, 1e-8);
  });
  it("minimises a quadratic and restores its state", () => {
    const p = [5, -3];
    const adam = new Adam(2, { lr: 0.1 });
    for (let i = 0; i < 500; i++) adam.step(p, [2 * (p[0]! - 1), 2 * (p[1]! + 2)]);
    close(p[0]!, 1, 1e-3);
    close(p[1]!, -2, 1e-3);
    const copy = new Adam(2, { lr: 0.1 });
    copy.setState(adam.getState());
    const a = [0, 0];
    const b = [0, 0];
    adam.step(a, [1, 1]);
    copy.step(b, [1, 1]);
    assert.deepEqual(a, b);
    assert.throws(() => adam.step([1], [1]), /expected 2/);
  });
});
