import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { trainDemo } from "../../../src/recipes/demo/run.ts";
import { DEMO_TARGETS, demoReward } from "../../../src/recipes/demo/task.ts";

describe("grpo demo", () => {
  it("partial credit by distance to the target", () => {
    // sums: 6 → exact; 6 vs 12 → 1 − 6/24 = 0.75; 54 vs 6 → distance 48 ≥ 24 → 0
    assert.equal(demoReward([1, 1, 1, 1, 1, 1], 6), 1);
    assert.equal(demoReward([1, 1, 1, 1, 1, 1], 12), 0.75);
    assert.equal(demoReward([9, 9, 9, 9, 9, 9], 6), 0);
  });

  it("reward rises with training (a wrong gradient sign would push it down)", () => {
    for (const seed of [1, 2]) {
      const r = trainDemo({ maxSteps: 30, seed });
      // a uniform policy scores about 0.3 on these targets
      assert.ok(r.initialReward < 0.55, `seed ${seed}: initial ${r.initialReward}`);
      assert.ok(r.finalReward > 0.85, `seed ${seed}: final ${r.finalReward}`);
      assert.ok(
        r.finalReward - r.initialReward > 0.3,
        `seed ${seed}: ${r.initialReward} -> ${r.finalReward}`,
      );
      assert.equal(r.history.length, 30);
      assert.equal(r.greedy.length, DEMO_TARGETS.length);
    }
  });

  it("every loss type and reward scaling learns", () => {
    for (const lossType of ["bnpo", "dr_grpo", "dapo"] as const) {
      const r = trainDemo({ maxSteps: 30, seed: 3, lossType, scaleRewards: "none" });
      assert.ok(r.finalReward - r.initialReward > 0.3, `${lossType}: ${r.initialReward} -> ${r.finalReward}`);
    }
    let r = trainDemo({ maxSteps: 30, seed: 3, scaleRewards: "batch" });
    assert.ok(r.finalReward - r.initialReward > 0.3, `batch: ${r.initialReward} -> ${r.finalReward}`);
    r = trainDemo({ maxSteps: 30, seed: 3, importanceSamplingLevel: "sequence" });
    assert.ok(r.finalReward - r.initialReward > 0.3, `sequence: ${r.initialReward} -> ${r.finalReward}`);
  });

  it("is deterministic from the seed and reports clipping and KL", () => {
    const a = trainDemo({ maxSteps: 10, seed: 42 });
    const b = trainDemo({ maxSteps: 10, seed: 42 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.history, trainDemo({ maxSteps: 10, seed: 43 }).history);
    // inner steps move ratios off 1, so the clip range is hit; KL to the start grows from 0
    assert.ok(a.history.some((s) => s.clipRatioLow > 0 || s.clipRatioHigh > 0));
    assert.ok(a.history[9]!.kl > a.history[0]!.kl);
  });

  it("rejects bad options, naming the flag", () => {
    assert.throws(() => trainDemo({ maxSteps: 0 }), /--max-steps/);
    assert.throws(() => trainDemo({ lossType: "x" as "grpo" }), /--loss-type/);
    assert.throws(() => trainDemo({ learningRate: -1 }), /--learning-rate/);
  });
});
