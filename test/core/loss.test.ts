import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { aggregate, buildMask, klEstimate, policyLoss, type SequenceBatch } from "../../src/core/loss.ts";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} ≠ ${b} (tol ${tol})`);
const closeRows = (a: number[][], b: number[][], tol = 1e-9) => {
  assert.equal(a.length, b.length);
  a.forEach((row, i) => {
    assert.equal(row.length, b[i]!.length, `row ${i}`);
    for (const [t, v] of row.entries()) close(v, b[i]![t]!, tol);
  });
};

describe("klEstimate", () => {
  it("k1, k2, k3 by hand", () => {
    // logp = −1, ref = −2: logp − ref = 1; k1 = 1, k2 = ½·1² = 0.5, k3 = e^(−1) − (−1) − 1 = 0.36787944
    assert.equal(klEstimate(-1, -2, "k1"), 1);
    assert.equal(klEstimate(-1, -2, "k2"), 0.5);
    close(klEstimate(-1, -2, "k3"), 0.36787944117144233);
    // logp = −2, ref = −1: k1 = −1, k2 = 0.5, k3 = e − 1 − 1 = 0.71828183
    assert.equal(klEstimate(-2, -1, "k1"), -1);
    assert.equal(klEstimate(-2, -1, "k2"), 0.5);
    close(klEstimate(-2, -1, "k3"), 0.7182818284590451);
    assert.equal(klEstimate(-3, -3, "k3"), 0);
    assert.throws(() => klEstimate(0, 0, "k4" as "k1"), /klEstimator/);
  });
});

describe("buildMask", () => {
  it("multiplies completion, tool and truncation masks", () => {
    const completion = [
      [1, 1, 1, 0],
      [1, 1, 0, 0],
    ];
    const tool = [
      [1, 0, 1, 1],
      [1, 1, 1, 1],
    ];
    assert.deepEqual(buildMask(completion, tool), [
      [1, 0, 1, 0],
      [1, 1, 0, 0],
    ]);
    // per-sequence truncation: the second completion was cut off and is dropped whole
    assert.deepEqual(buildMask(completion, tool, [1, 0]), [
      [1, 0, 1, 0],
      [0, 0, 0, 0],
    ]);
    // per-token truncation
    assert.deepEqual(
      buildMask(completion, undefined, [
        [1, 1, 0, 0],
        [0, 1, 1, 1],
      ]),
      [
        [1, 1, 0, 0],
        [0, 1, 0, 0],
      ],
    );
    assert.deepEqual(buildMask([[]]), [[]]);
  });
  it("names the mask, row and column on bad input", () => {
    assert.throws(() => buildMask([[1, 1]], [[1]]), /toolMask\[0\]: length 1, expected 2/);
    assert.throws(() => buildMask([[1, 2]]), /completionMask\[0\]\[1\]: expected 0 or 1/);
    assert.throws(() => buildMask([[1], [1]], undefined, [1]), /truncationMask: 1 rows, expected 2/);
    assert.throws(() => buildMask([[1], [1]], undefined, [1, 0.5]), /truncationMask\[1\]/);
  });
});

describe("aggregate", () => {
  // sequence 0 has 3 active tokens summing to 6; sequence 1 has 1 active token (4); Σ = 10
  const values = [
    [1, 2, 3],
    [4, 99, Number.NaN],
  ];
  const mask = [
    [1, 1, 1],
    [1, 0, 0],
  ];
  it("grpo: mean over sequences of per-sequence token means", () => {
    // (6/3 + 4/1) / 2 = (2 + 4) / 2 = 3
    assert.equal(aggregate(values, mask, "grpo"), 3);
  });
  it("bnpo: Σ / active tokens in the batch", () => {
    // 10 / 4 = 2.5
    assert.equal(aggregate(values, mask, "bnpo"), 2.5);
  });
  it("dr_grpo: Σ / (G · maxCompletionLength)", () => {
    // 10 / (2·5) = 1; without the option L is the widest row, 3: 10 / 6
    assert.equal(aggregate(values, mask, "dr_grpo", { maxCompletionLength: 5 }), 1);
    close(aggregate(values, mask, "dr_grpo"), 10 / 6);
  });
  it("dapo: Σ / active tokens in the accumulated batch", () => {
    // 10 / 20 = 0.5; default is this batch's 4 tokens: 2.5
    assert.equal(aggregate(values, mask, "dapo", { activeTokensInAccumulatedBatch: 20 }), 0.5);
    assert.equal(aggregate(values, mask, "dapo"), 2.5);
  });
  it("an empty completion contributes 0 to grpo but still counts as a sequence", () => {
    // (2/2 + 0) / 2 = 0.5
    assert.equal(aggregate([[1, 1], []], [[1, 1], []], "grpo"), 0.5);
    assert.equal(aggregate([[1, 1], []], [[1, 1], []], "bnpo"), 1);
  });
  it("all masked gives 0 for every loss type, never NaN", () => {
    for (const t of ["grpo", "bnpo", "dr_grpo", "dapo", "cispo"] as const) {
      assert.equal(aggregate([[Number.NaN, 5]], [[0, 0]], t), 0, t);
      assert.equal(aggregate([], [], t), 0, t);
      assert.equal(aggregate([[]], [[]], t), 0, t);
    }
    assert.equal(aggregate([[1]], [[0]], "dapo", { activeTokensInAccumulatedBatch: 0 }), 0);
  });
  it("rejects shape mismatches and unknown types", () => {
    assert.throws(() => aggregate([[1]], [[1, 1]], "grpo"), /values\[0\]: length 1, expected 2/);
    assert.throws(() => aggregate([[1]], [[1]], "ppo" as "grpo"), /lossType/);
  });
});

function batch(logRatio: number[], advantage: number, extra: Partial<SequenceBatch> = {}): SequenceBatch {
  return {
    logp: [logRatio.map((r) => r - 1)],
    oldLogp: [logRatio.map(() => -1)],
    advantages: [advantage],
    mask: [logRatio.map(() => 1)],
    ...extra,
  };
}

describe("policyLoss, token-level", () => {
  // ratios ρ = [1.5, 0.5, 1.0]; ε = 0.2 so clip(ρ) = [1.2, 0.8, 1.0]
  const lr = [Math.log(1.5), Math.log(0.5), 0];

  it("A = +1: the high side clips", () => {
    // surrogate = −min(ρA, clip(ρ)A): t0 −min(1.5, 1.2) = −1.2 (clipped, flat: grad 0)
    // t1 −min(0.5, 0.8) = −0.5 (grad −ρA = −0.5), t2 −1 (grad −1)
    // grpo: (−1.2 − 0.5 − 1) / 3 = −0.9; grads divided by the 3 tokens
    const r = policyLoss(batch(lr, 1));
    close(r.loss, -0.9);
    close(r.policyLoss, -0.9);
    closeRows(r.gradLogp, [[0, -0.5 / 3, -1 / 3]]);
    // high: ρ > 1.2 with A > 0 on 1 of 3 tokens; ρ = 0.5 is not "low clipped" since A > 0
    close(r.clipRatioHigh, 1 / 3);
    assert.equal(r.clipRatioLow, 0);
    assert.equal(r.kl, 0);
  });

  it("A = −1: the low side clips", () => {
    // t0: ρA = −1.5, clip·A = −1.2, min −1.5 → 1.5 (grad −ρA = 1.5); t1: ρA = −0.5, clip·A = −0.8
    // → 0.8 (clipped, grad 0); t2: 1 (grad 1). grpo: (1.5 + 0.8 + 1) / 3 = 1.1
    const r = policyLoss(batch(lr, -1));
    close(r.loss, 1.1);
    closeRows(r.gradLogp, [[0.5, 0, 1 / 3]]);
    close(r.clipRatioLow, 1 / 3);
    assert.equal(r.clipRatioHigh, 0);
  });

  it("asymmetric clip range (clip-higher)", () => {
    // epsilonHigh = 0.6: ρ = 1.5 < 1.6 is no longer clipped: (−1.5 − 0.5 − 1) / 3 = −1
    const r = policyLoss(batch(lr, 1), { epsilonHigh: 0.6 });
    close(r.loss, -1);
    assert.equal(r.clipRatioHigh, 0);
    closeRows(r.gradLogp, [[-0.5, -0.5 / 3, -1 / 3]]);
  });

  it("ratio far outside the clip range stays finite", () => {
    // log ρ = 50, A = 1: clipped at 1.2 → loss −1.2, no gradient
    let r = policyLoss(batch([50], 1));
    close(r.loss, -1.2);
    assert.deepEqual(r.gradLogp, [[0]]);
    // log ρ = −50, A = −1: −min(−ρ, −0.8) = 0.8, no gradient
    r = policyLoss(batch([-50], -1));
    close(r.loss, 0.8);
    assert.deepEqual(r.gradLogp, [[0]]);
    assert.equal(r.clipRatioLow, 1);
    // log ρ = −50, A = +1: unclipped branch, ρ ≈ 2e−22, gradient −ρ
    r = policyLoss(batch([-50], 1));
    close(r.loss, -Math.exp(-50), 1e-30);
    close(r.gradLogp[0]![0]!, -Math.exp(-50), 1e-30);
  });

  it("zero advantage gives zero surrogate and gradient", () => {
    const r = policyLoss(batch(lr, 0));
    assert.equal(r.loss, 0);
    closeRows(r.gradLogp, [[0, 0, 0]]);
  });

  it("KL term with k3, weight β", () => {
    // ρ = 1, A = 0 so only KL remains. logp = [−1, −1], ref = [−2, −1]:
    // k3 = [e^(−1) − (−1) − 1, 0] = [0.36787944, 0]; loss = 0.1 · (0.36787944 + 0) / 2 = 0.01839397
    // kl metric = mean over active tokens = 0.18393972
    // d k3 / d logp = 1 − e^(ref − logp) = 1 − e^(−1) = 0.63212056 → grad = 0.1 · 0.63212056 / 2
    const r = policyLoss(batch([0, 0], 0, { refLogp: [[-2, -1]] }), { beta: 0.1 });
    close(r.loss, 0.018393972058572117);
    close(r.kl, 0.18393972058572117);
    closeRows(r.gradLogp, [[0.03160602794142788, 0]]);
    // k1: loss = 0.1 · (1 + 0) / 2 = 0.05, grad = 0.1 · 1 / 2 on both tokens
    const k1 = policyLoss(batch([0, 0], 0, { refLogp: [[-2, -1]] }), { beta: 0.1, klEstimator: "k1" });
    close(k1.loss, 0.05);
    closeRows(k1.gradLogp, [[0.05, 0.05]]);
    // k2: loss = 0.1 · (0.5 + 0) / 2 = 0.025, grad = 0.1 · (logp − ref) / 2 = [0.05, 0]
    const k2 = policyLoss(batch([0, 0], 0, { refLogp: [[-2, -1]] }), { beta: 0.1, klEstimator: "k2" });
    close(k2.loss, 0.025);
    closeRows(k2.gradLogp, [[0.05, 0]]);
  });

  it("KL is reported but not added when β = 0", () => {
    const r = policyLoss(batch([0, 0], 0, { refLogp: [[-2, -1]] }));
    assert.equal(r.loss, 0);
    close(r.kl, 0.18393972058572117);
  });

  it("entropy bonus −α·H, with no gradient through logp", () => {
    // H = [2, 4], α = 0.5: per-token −1, −2, mean −1.5; entropy metric = 3
    const r = policyLoss(batch([0, 0], 0, { entropy: [[2, 4]] }), { entropyCoef: 0.5 });
    close(r.loss, -1.5);
    assert.equal(r.policyLoss, 0);
    assert.equal(r.entropy, 3);
    closeRows(r.gradLogp, [[0, 0]]);
  });

  it("dr_grpo normalises by G · L across sequences", () => {
    // two sequences, A = [1, −1], ρ = 1 on all tokens: per-token surrogate −1 (2 tokens) and +1 (1 token)
    // dr_grpo, L = 4: (−2 + 1) / (2·4) = −0.125; grads ∓1/8; grpo: (−1 + 1)/2 = 0
    const b: SequenceBatch = {
      logp: [
        [-1, -2, 0],
        [-1, 0, 0],
      ],
      oldLogp: [
        [-1, -2, 0],
        [-1, 0, 0],
      ],
      advantages: [1, -1],
      mask: [
        [1, 1, 0],
        [1, 0, 0],
      ],
    };
    const r = policyLoss(b, { lossType: "dr_grpo", maxCompletionLength: 4 });
    close(r.loss, -0.125);
    closeRows(r.gradLogp, [
      [-0.125, -0.125, 0],
      [0.125, 0, 0],
    ]);
    close(policyLoss(b).loss, 0);
    // bnpo: (−2 + 1) / 3
    close(policyLoss(b, { lossType: "bnpo" }).loss, -1 / 3);
    // dapo with 10 tokens over the accumulated batch: −1/10
    close(policyLoss(b, { lossType: "dapo", activeTokensInAccumulatedBatch: 10 }).loss, -0.1);
  });

  it("all tokens masked: loss 0 and metrics 0, never NaN, padding never read", () => {
    const b: SequenceBatch = {
      logp: [[Number.NaN, Number.NEGATIVE_INFINITY]],
      oldLogp: [[0, 0]],
      refLogp: [[0, Number.NaN]],
      entropy: [[Number.NaN, 1]],
      advantages: [1],
      mask: [[0, 0]],
    };
    for (const lossType of ["grpo", "bnpo", "dr_grpo", "dapo"] as const) {
      for (const importanceSamplingLevel of ["token", "sequence"] as const) {
        const r = policyLoss(b, { lossType, importanceSamplingLevel, beta: 0.1, entropyCoef: 0.1 });
        assert.deepEqual(r, {
          loss: 0,
          policyLoss: 0,
          kl: 0,
          entropy: 0,
          clipRatioLow: 0,
          clipRatioHigh: 0,
          gradLogp: [[0, 0]],
        });
      }
    }
    assert.equal(policyLoss({ logp: [], oldLogp: [], advantages: [], mask: [] }).loss, 0);
  });

  it("empty completion next to a normal one (grpo)", () => {
    // sequence 0: one token, ρ = 1, A = 2 → −2; sequence 1 empty → 0; grpo (−2 + 0) / 2 = −1
    const r = policyLoss({ logp: [[-1], []], oldLogp: [[-1], []], advantages: [2, -2], mask: [[1], []] });
    close(r.loss, -1);
    closeRows(r.gradLogp, [[-1], []]);
  });

  it("names the field, row and column on bad input", () => {
    const ok = batch([0, 0], 1);
    assert.throws(() => policyLoss({ ...ok, oldLogp: [[0]] }), /batch\.oldLogp\[0\]: length 1, expected 2/);
    assert.throws(
      () => policyLoss({ ...ok, logp: [[0, Number.NaN]] }),
      /batch\.logp\[0\]\[1\]: must be finite/,
    );
    assert.throws(() => policyLoss({ ...ok, advantages: [] }), /batch\.advantages: 0 values, expected 1/);
    assert.throws(() => policyLoss({ ...ok, mask: [[1, 3]] }), /batch\.mask\[0\]\[1\]/);
    assert.throws(() => policyLoss(ok, { beta: 0.1 }), /batch\.refLogp: required/);
    assert.throws(() => policyLoss(ok, { entropyCoef: 0.1 }), /batch\.entropy: required/);
    assert.throws(() => policyLoss(ok, { klEstimator: "k9" as "k1" }), /klEstimator/);
    assert.throws(
      () => policyLoss(ok, { importanceSamplingLevel: "x" as "token" }),
      /importanceSamplingLevel/,
    );
  });
});

describe("policyLoss, sequence-level (GSPO)", () => {
  it("one ratio per sequence: exp of the mean token log-ratio", () => {
    // log-ratios [ln 2, 0] → mean ln2 / 2 → ρ = √2 = 1.41421356 on both tokens. A = 1, ε = 0.2:
    // clipped at 1.2 → loss −1.2, both tokens counted as high-clipped, no gradient
    const lr = [Math.log(2), 0];
    let r = policyLoss(batch(lr, 1), { importanceSamplingLevel: "sequence" });
    close(r.loss, -1.2);
    assert.equal(r.clipRatioHigh, 1);
    closeRows(r.gradLogp, [[0, 0]]);
    // epsilonHigh = 0.5: √2 < 1.5, loss = −√2. d loss / d logp_t = (Σ_t w_t = 1) · (−A) · ρ · (1/n = 1/2)
    // = −√2 / 2 = −0.70710678 on each token, even the one whose own ratio is 1
    r = policyLoss(batch(lr, 1), { importanceSamplingLevel: "sequence", epsilonHigh: 0.5 });
    close(r.loss, -Math.SQRT2);
    closeRows(r.gradLogp, [[-Math.SQRT1_2, -Math.SQRT1_2]]);
  });

  it("masked tokens do not enter the sequence ratio", () => {
    // active log-ratios [ln 1.1, ln 1.1] (the masked one is ln 100) → ρ = 1.1, A = −1 → loss 1.1
    const b = batch([Math.log(1.1), Math.log(100), Math.log(1.1)], -1);
    b.mask = [[1, 0, 1]];
    const r = policyLoss(b, { importanceSamplingLevel: "sequence" });
    close(r.loss, 1.1);
    // grad = 1 · (−A = 1) · 1.1 / 2 on active tokens
    closeRows(r.gradLogp, [[0.55, 0, 0.55]]);
  });
});

describe("policyLoss, cispo (MiniMax-M1's clipped importance weight)", () => {
  // ratios ρ = [1.5, 0.5, 1.0], logp = log-ratio − 1 = [ln 1.5 − 1, ln 0.5 − 1, −1]
  //        = [−0.59453489, −1.69314718, −1]; ε_high = 0.2 caps the weight at 1.2
  const lr = [Math.log(1.5), Math.log(0.5), 0];

  it("A = +1: the weight is capped above, every token keeps a gradient", () => {
    // weights ŵ = min(ρ, 1.2) = [1.2, 0.5, 1]; per token −ŵ·A·logp = [0.71344187, 0.84657359, 1]
    // Σ = 2.56001546, over the 3 active tokens (dapo's normaliser) = 0.85333849
    const r = policyLoss(batch(lr, 1), { lossType: "cispo" });
    close(r.loss, 0.8533384869);
    close(r.policyLoss, 0.8533384869);
    // d/d logp = −ŵ·A / 3: the capped token still learns, with weight 1.2 (the surrogate gives it 0)
    closeRows(r.gradLogp, [[-0.4, -0.5 / 3, -1 / 3]]);
    close(r.clipRatioHigh, 1 / 3);
    assert.equal(r.clipRatioLow, 0);
  });

  it("A = −1: no lower clip, the small ratio weighs 0.5", () => {
    const r = policyLoss(batch(lr, -1), { lossType: "cispo" });
    close(r.loss, -0.8533384869);
    closeRows(r.gradLogp, [[0.4, 0.5 / 3, 1 / 3]]);
    assert.equal(r.clipRatioLow, 0);
    assert.equal(r.clipRatioHigh, 0);
  });

  it("sequence-level weight: one capped ratio for every token of the completion", () => {
    // log-ratios [ln 2, 0] → ρ = √2 = 1.41421356 → ŵ = 1.2; logp = [ln 2 − 1, −1] = [−0.30685282, −1]
    // loss (1.2·0.30685282 + 1.2) / 2 = 0.78411169; grad −1.2 / 2 = −0.6 on both
    const r = policyLoss(batch([Math.log(2), 0], 1), {
      lossType: "cispo",
      importanceSamplingLevel: "sequence",
    });
    close(r.loss, 0.7841116917);
    closeRows(r.gradLogp, [[-0.6, -0.6]]);
    assert.equal(r.clipRatioHigh, 1);
  });

  it("on-policy (ρ = 1) its gradient is dapo's, with KL and entropy added the same way", () => {
    const b: SequenceBatch = {
      logp: [
        [-0.3, -1.2, -2],
        [-0.7, -0.1, Number.NaN],
      ],
      oldLogp: [
        [-0.3, -1.2, -2],
        [-0.7, -0.1, 0],
      ],
      refLogp: [
        [-0.5, -1, -1.5],
        [-0.6, -0.4, 0],
      ],
      entropy: [
        [1, 2, 0.5],
        [0.3, 0.2, 0],
      ],
      advantages: [1.5, -0.5],
      mask: [
        [1, 1, 1],
        [1, 1, 0],
      ],
    };
    const cfg = { beta: 0.1, entropyCoef: 0.02 };
    const dapo = policyLoss(b, { ...cfg, lossType: "dapo" });
    const cispo = policyLoss(b, { ...cfg, lossType: "cispo" });
    closeRows(cispo.gradLogp, dapo.gradLogp, 1e-12);
    close(cispo.kl, dapo.kl);
    close(cispo.entropy, dapo.entropy);
    // the values differ (A·log π against A·ρ), the gradients do not
    assert.notEqual(cispo.policyLoss, dapo.policyLoss);
  });
});
