import assert from "node:assert/strict";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { type KlEstimator, type LossType, type PolicyLossConfig, policyLoss } from "../../src/core/loss.ts";
import { Rng } from "../../src/core/rng.ts";
import { grpoLossTensors, resolveLossConfig } from "../../src/rl/loss.ts";

await tf.setBackend("cpu");

interface Fixture {
  logp: number[][];
  oldLogp: number[][];
  refLogp: number[][];
  entropy: number[][];
  advantages: number[];
  mask: number[][];
}

/** Ratios spread over [e^-0.5, e^0.5] so that both clip sides bind on some tokens. */
function fixture(seed: number, B = 4, T = 6): Fixture {
  const rng = new Rng(seed);
  const rows = (f: () => number) => Array.from({ length: B }, () => Array.from({ length: T }, f));
  const logp = rows(() => -0.2 - 2 * rng.next());
  const oldLogp = logp.map((r) => r.map((v) => v + (rng.next() - 0.5)));
  const refLogp = logp.map((r) => r.map((v) => v + 0.6 * (rng.next() - 0.5)));
  const entropy = rows(() => 2 * rng.next());
  const advantages = Array.from({ length: B }, () => 2 * rng.normal());
  // Ragged completions, one fully masked row, and a hole in the middle of a row.
  const lengths = [T, T - 2, 0, 3].slice(0, B);
  const mask = lengths.map((n) => Array.from({ length: T }, (_, t) => (t < n ? 1 : 0)));
  mask[0]![2] = 0;
  return { logp, oldLogp, refLogp, entropy, advantages, mask };
}

function tensorLoss(f: Fixture, cfg: PolicyLossConfig) {
  return tf.tidy(() => {
    const r = grpoLossTensors(
      {
        logp: tf.tensor2d(f.logp),
        oldLogp: tf.tensor2d(f.oldLogp),
        refLogp: tf.tensor2d(f.refLogp),
        entropy: tf.tensor2d(f.entropy),
        advantages: tf.tensor1d(f.advantages),
        mask: tf.tensor2d(f.mask),
        activeTokensInBatch: cfg.activeTokensInAccumulatedBatch,
      },
      resolveLossConfig(cfg),
    );
    return {
      loss: r.loss.dataSync()[0]!,
      policyLoss: r.policyLoss.dataSync()[0]!,
      kl: r.kl.dataSync()[0]!,
      entropy: r.entropy.dataSync()[0]!,
      clipRatioLow: r.clipRatioLow.dataSync()[0]!,
      clipRatioHigh: r.clipRatioHigh.dataSync()[0]!,
    };
  });
}

function tensorGrad(f: Fixture, cfg: PolicyLossConfig): number[][] {
  return tf.tidy(() => {
    const g = tf.grad(
      (logp: tf.Tensor) =>
        grpoLossTensors(
          {
            logp: logp as tf.Tensor2D,
            oldLogp: tf.tensor2d(f.oldLogp),
            refLogp: tf.tensor2d(f.refLogp),
            entropy: tf.tensor2d(f.entropy),
            advantages: tf.tensor1d(f.advantages),
            mask: tf.tensor2d(f.mask),
          },
          resolveLossConfig(cfg),
        ).loss,
    )(tf.tensor2d(f.logp));
    return g.arraySync() as number[][];
  });
}

function close(actual: number, expected: number, what: string, tol = 2e-5): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * (1 + Math.abs(expected)),
    `${what}: ${actual} vs ${expected}`,
  );
}

const lossTypes: LossType[] = ["grpo", "bnpo", "dr_grpo", "dapo", "cispo"];
const estimators: KlEstimator[] = ["k1", "k2", "k3"];

describe("tensor GRPO loss equals the core reference", () => {
  for (const lossType of lossTypes) {
    for (const importanceSamplingLevel of ["token", "sequence"] as const) {
      for (const klEstimator of estimators) {
        it(`${lossType}, ${importanceSamplingLevel} ratio, ${klEstimator}`, () => {
          const f = fixture(lossTypes.indexOf(lossType) * 7 + estimators.indexOf(klEstimator) + 1);
          const cfg: PolicyLossConfig = {
            lossType,
            importanceSamplingLevel,
            klEstimator,
            beta: 0.07,
            entropyCoef: 0.013,
            epsilon: 0.2,
            epsilonHigh: 0.28,
            maxCompletionLength: lossType === "dr_grpo" ? 9 : undefined,
            activeTokensInAccumulatedBatch: lossType === "dapo" || lossType === "cispo" ? 31 : undefined,
          };
          const ref = policyLoss(f, cfg);
          const got = tensorLoss(f, cfg);
          for (const k of ["loss", "policyLoss", "kl", "entropy", "clipRatioLow", "clipRatioHigh"] as const) {
            close(got[k], ref[k], k);
          }
          const g = tensorGrad(f, { ...cfg, activeTokensInAccumulatedBatch: undefined });
          const refG = policyLoss(f, { ...cfg, activeTokensInAccumulatedBatch: undefined }).gradLogp;
          g.forEach((row, i) => {
            row.forEach((v, t) => {
              close(v, refG[i]![t]!, `grad[${i}][${t}]`, 1e-4);
            });
          });
        });
      }
    }
  }

  it("with default settings it is the core loss with default settings (one home for the defaults)", () => {
    const f = fixture(3);
    // No options at all on either side: whatever the defaults are, both must read the same ones.
    const ref = policyLoss(f);
    const got = tensorLoss(f, {});
    // Both clip sides bind at the default ε, so a different default clip range changes the loss.
    assert.ok(ref.clipRatioLow > 0 && ref.clipRatioHigh > 0, JSON.stringify(ref));
    for (const k of ["loss", "policyLoss", "kl", "entropy", "clipRatioLow", "clipRatioHigh"] as const) {
      close(got[k], ref[k], k);
    }
    const g = tensorGrad(f, {});
    g.forEach((row, i) => {
      row.forEach((v, t) => {
        close(v, ref.gradLogp[i]![t]!, `grad[${i}][${t}]`, 1e-4);
      });
    });
    // And the default clip range binds where 0.28 would not: the defaults are really exercised.
    assert.notEqual(policyLoss(f, { epsilonHigh: 0.28 }).loss, ref.loss);
  });

  it("the fixture makes both clip sides bind (so the test above can see a wrong clip)", () => {
    const f = fixture(1);
    const ref = policyLoss(f, { epsilon: 0.1, epsilonHigh: 0.1 });
    assert.ok(ref.clipRatioLow > 0 && ref.clipRatioHigh > 0, JSON.stringify(ref));
    const got = tensorLoss(f, { epsilon: 0.1, epsilonHigh: 0.1 });
    close(got.clipRatioLow, ref.clipRatioLow, "low");
    close(got.clipRatioHigh, ref.clipRatioHigh, "high");
  });

  it("cispo, hand-computed: the weight min(ρ, 1+ε_high) is held constant", () => {
    // ρ = [1.5, 0.5], logp = [−0.5, −2], A = 1, ε_high = 0.2 → ŵ = [1.2, 0.5]
    // loss = (1.2·0.5 + 0.5·2) / 2 = 0.8; d/d logp = −ŵ / 2 = [−0.6, −0.25]
    const f = {
      logp: [[-0.5, -2]],
      oldLogp: [[-0.5 - Math.log(1.5), -2 - Math.log(0.5)]],
      refLogp: [[-0.5, -2]],
      entropy: [[0, 0]],
      advantages: [1],
      mask: [[1, 1]],
    };
    close(tensorLoss(f, { lossType: "cispo" }).loss, 0.8, "loss");
    const g = tensorGrad(f, { lossType: "cispo" });
    close(g[0]![0]!, -0.6, "grad 0", 1e-5);
    close(g[0]![1]!, -0.25, "grad 1", 1e-5);
  });

  it("hand-computed value: one token, ratio 1, A = 2, k3 at equal policies", () => {
    const got = tensorLoss(
      { logp: [[-1]], oldLogp: [[-1]], refLogp: [[-1]], entropy: [[0.5]], advantages: [2], mask: [[1]] },
      { beta: 0.1, entropyCoef: 0.2 },
    );
    // −min(1·2, 1·2) + 0.1·0 − 0.2·0.5
    close(got.loss, -2.1, "loss");
    close(got.policyLoss, -2, "policyLoss");
    close(got.kl, 0, "kl");
  });
});

describe("masking", () => {
  it("masked tokens get exactly zero gradient, even when they hold -Infinity or NaN", () => {
    const f = fixture(3);
    f.logp[1]![5] = Number.NEGATIVE_INFINITY;
    f.oldLogp[3]![4] = Number.NaN;
    f.refLogp[2]![0] = Number.NaN;
    for (const lossType of lossTypes) {
      for (const importanceSamplingLevel of ["token", "sequence"] as const) {
        const g = tensorGrad(f, { lossType, importanceSamplingLevel, beta: 0.05, entropyCoef: 0.01 });
        f.mask.forEach((row, i) => {
          row.forEach((m, t) => {
            if (m === 0) assert.equal(g[i]![t], 0, `${lossType}/${importanceSamplingLevel} grad[${i}][${t}]`);
            else assert.ok(Number.isFinite(g[i]![t]!), `finite grad[${i}][${t}]`);
          });
        });
        const l = tensorLoss(f, { lossType, importanceSamplingLevel, beta: 0.05, entropyCoef: 0.01 });
        assert.ok(Number.isFinite(l.loss), `${lossType}: finite loss`);
      }
    }
  });

  it("an all-masked batch has loss 0, not NaN", () => {
    const f = fixture(4);
    f.mask = f.mask.map((r) => r.map(() => 0));
    for (const lossType of lossTypes) assert.equal(tensorLoss(f, { lossType, beta: 0.1 }).loss, 0);
  });
});
