import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computeAdvantages, dynamicSamplingFilter, groupStats } from "../../src/core/advantages.ts";
import { Rng } from "../../src/core/rng.ts";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (tol ${tol})`);

describe("groupStats", () => {
  it("uses the population std", () => {
    // [0, 1, 2]: μ = 1, σ² = (1 + 0 + 1) / 3 = 2/3 (not 2/2 = 1 as the sample variance would give)
    const s = groupStats([0, 1, 2]);
    close(s.mean, 1);
    close(s.std, Math.sqrt(2 / 3));
  });
  it("handles one and zero rewards", () => {
    assert.deepEqual(groupStats([5]), { mean: 5, std: 0 });
    assert.deepEqual(groupStats([]), { mean: 0, std: 0 });
  });
});

describe("computeAdvantages", () => {
  it("group scaling: (r − μ) / (σ + 1e-4)", () => {
    // [1, 0, 0, 1]: μ = 0.5, σ = sqrt(4·0.25 / 4) = 0.5, A = ±0.5 / 0.5001 = ±0.99980004
    // [0, 1, 2]: μ = 1, σ = sqrt(2/3) = 0.81649658, A = ∓1 / 0.81659658 = ∓1.22459489, 0
    const r = computeAdvantages([
      [1, 0, 0, 1],
      [0, 1, 2],
    ]);
    const a = 0.9998000399920016;
    for (const [i, v] of r.advantages[0]!.entries()) close(v, [a, -a, -a, a][i]!);
    for (const [i, v] of r.advantages[1]!.entries())
      close(v, [-1.2245948897605123, 0, 1.2245948897605123][i]!);
    assert.deepEqual(r.groupMean, [0.5, 1]);
    close(r.groupStd[0]!, 0.5);
    close(r.groupStd[1]!, Math.sqrt(2 / 3));
    assert.equal(r.zeroStdGroups, 0);
    assert.equal(r.fracRewardZeroStd, 0);
  });

  it("batch scaling divides by the std of all rewards, keeps the group mean", () => {
    // all rewards [0, 1, 2, 2]: mean 1.25, σ² = (1.5625 + 0.0625 + 0.5625 + 0.5625) / 4 = 0.6875,
    // σ = 0.82915620; group 0: μ = 0.5, A = ∓0.5 / 0.82925620 = ∓0.60294997; group 1 is constant → 0
    const r = computeAdvantages(
      [
        [0, 1],
        [2, 2],
      ],
      { scaleRewards: "batch" },
    );
    close(r.advantages[0]![0]!, -0.6029499706529814);
    close(r.advantages[0]![1]!, 0.6029499706529814);
    assert.deepEqual(r.advantages[1], [0, 0]);
    assert.equal(r.zeroStdGroups, 1);
    assert.equal(r.fracRewardZeroStd, 0.5);
    // the reported std is still the group's own
    close(r.groupStd[0]!, 0.5);
  });

  it("no scaling (Dr. GRPO): r − μ", () => {
    // [1, 3]: μ = 2 → [−1, 1]; [10, 10, 13]: μ = 11 → [−1, −1, 2]
    const r = computeAdvantages(
      [
        [1, 3],
        [10, 10, 13],
      ],
      { scaleRewards: "none" },
    );
    assert.deepEqual(r.advantages, [
      [-1, 1],
      [-1, -1, 2],
    ]);
  });

  it("G = 1 and σ = 0 give zero advantages and count as zero-std groups", () => {
    const r = computeAdvantages([[5], [0.1 + 0.2, 0.3, 0.3], [1, 2]]);
    assert.deepEqual(r.advantages[0], [0]);
    // 0.1 + 0.2 = 0.30000000000000004: rounding noise must not become a ±1 advantage
    assert.deepEqual(r.advantages[1], [0, 0, 0]);
    assert.equal(r.zeroStdGroups, 2);
    close(r.fracRewardZeroStd, 2 / 3);
  });

  it("empty batch", () => {
    const r = computeAdvantages([]);
    assert.deepEqual(r.advantages, []);
    assert.equal(r.fracRewardZeroStd, 0);
  });

  it("rejects empty groups, non-finite rewards and unknown options, naming the place", () => {
    assert.throws(() => computeAdvantages([[1], []]), /rewardsByGroup\[1\]/);
    assert.throws(() => computeAdvantages([[1, Number.NaN]]), /rewardsByGroup\[0\]\[1\]/);
    assert.throws(() => computeAdvantages([[1]], { scaleRewards: "foo" as "group" }), /scaleRewards/);
  });

  it("property: advantages sum to zero within each group (group and none)", () => {
    const rng = new Rng(123);
    for (let c = 0; c < 300; c++) {
      const groups = Array.from({ length: 1 + rng.int(4) }, () =>
        Array.from({ length: 1 + rng.int(9) }, () => (rng.next() < 0.5 ? rng.int(3) : rng.normal() * 10)),
      );
      for (const scaleRewards of ["group", "none"] as const) {
        const r = computeAdvantages(groups, { scaleRewards });
        r.advantages.forEach((a, g) => {
          const sum = a.reduce((s, x) => s + x, 0);
          assert.ok(Math.abs(sum) < 1e-9 * (1 + Math.max(...groups[g]!.map(Math.abs))), `sum ${sum}`);
        });
      }
      // group scaling gives (almost) unit population std when σ ≫ eps
      const r = computeAdvantages(groups);
      r.advantages.forEach((a, g) => {
        if (r.groupStd[g]! > 0.1) close(groupStats(a).std, r.groupStd[g]! / (r.groupStd[g]! + 1e-4), 1e-9);
      });
    }
  });
});

describe("dynamicSamplingFilter", () => {
  it("drops groups whose rewards are all equal", () => {
    const r = dynamicSamplingFilter(["a", "b", "c", "d"], [[1, 1], [0, 1], [2], [0, 0.5, 0]]);
    assert.deepEqual(r, { kept: ["b", "d"], keptIndex: [1, 3], dropped: 2 });
  });
  it("uses the tolerance", () => {
    // [0, 0.01]: σ = 0.005, kept at tol 0.001, dropped at tol 0.01
    assert.equal(dynamicSamplingFilter([0], [[0, 0.01]], 0.001).dropped, 0);
    assert.equal(dynamicSamplingFilter([0], [[0, 0.01]], 0.01).dropped, 1);
  });
  it("rejects mismatched lengths", () => {
    assert.throws(() => dynamicSamplingFilter([1, 2], [[1]]), /rewardsByGroup/);
  });
});
