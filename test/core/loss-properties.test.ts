/** Seeded random cases: the analytic gradient against finite differences, and invariants. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type KlEstimator,
  klEstimate,
  type LossType,
  type PolicyLossConfig,
  policyLoss,
  type SequenceBatch,
} from "../../src/core/loss.ts";
import { Rng } from "../../src/core/rng.ts";

const LOSS_TYPES: LossType[] = ["grpo", "bnpo", "dr_grpo", "dapo"];
const KL: KlEstimator[] = ["k1", "k2", "k3"];

function randomBatch(rng: Rng, spread: number): SequenceBatch {
  const B = 1 + rng.int(4);
  const rows = Array.from({ length: B }, () => 1 + rng.int(6));
  const mk = (f: () => number) => rows.map((T) => Array.from({ length: T }, f));
  const oldLogp = mk(() => -0.1 - 3 * rng.next());
  return {
    oldLogp,
    logp: oldLogp.map((row) => row.map((o) => o + spread * rng.normal())),
    refLogp: mk(() => -0.1 - 3 * rng.next()),
    entropy: mk(() => 2 * rng.next()),
    advantages: rows.map(() => rng.normal()),
    mask: rows.map((T) => Array.from({ length: T }, () => (rng.next() < 0.8 ? 1 : 0))),
  };
}

function randomConfig(rng: Rng): PolicyLossConfig {
  return {
    epsilon: 0.1 + 0.2 * rng.next(),
    epsilonHigh: 0.1 + 0.3 * rng.next(),
    beta: rng.next() < 0.3 ? 0 : rng.next(),
    klEstimator: rng.pick(KL),
    entropyCoef: rng.next() * 0.1,
    lossType: rng.pick(LOSS_TYPES),
    importanceSamplingLevel: rng.next() < 0.5 ? "token" : "sequence",
    maxCompletionLength: 8,
    activeTokensInAccumulatedBatch: rng.next() < 0.5 ? undefined : 30,
  };
}

/** Ratios within `margin` of a clip boundary sit on a kink where the derivative is one-sided. */
function nearKink(b: SequenceBatch, cfg: PolicyLossConfig, margin: number): boolean {
  const lo = 1 - cfg.epsilon!;
  const hi = 1 + cfg.epsilonHigh!;
  return b.mask.some((row, i) => {
    const active = row
      .map((m, t) => (m ? b.logp[i]![t]! - b.oldLogp[i]![t]! : Number.NaN))
      .filter((x) => !Number.isNaN(x));
    const ratios =
      cfg.importanceSamplingLevel === "sequence"
        ? [Math.exp(active.reduce((s, x) => s + x, 0) / Math.max(1, active.length))]
        : active.map(Math.exp);
    return ratios.some((r) => Math.abs(r - lo) < margin || Math.abs(r - hi) < margin);
  });
}

describe("policyLoss properties", () => {
  it("gradLogp matches central finite differences of loss", () => {
    const rng = new Rng(2024);
    const h = 1e-6;
    let checked = 0;
    let clippedSeen = 0;
    for (let c = 0; c < 400; c++) {
      const b = randomBatch(rng, 0.3);
      const cfg = randomConfig(rng);
      if (nearKink(b, cfg, 1e-4)) continue;
      const r = policyLoss(b, cfg);
      if (r.clipRatioHigh + r.clipRatioLow > 0) clippedSeen++;
      b.logp.forEach((row, i) => {
        row.forEach((v, t) => {
          const plus = b.logp.map((x) => [...x]);
          const minus = b.logp.map((x) => [...x]);
          plus[i]![t] = v + h;
          minus[i]![t] = v - h;
          const fd =
            (policyLoss({ ...b, logp: plus }, cfg).loss - policyLoss({ ...b, logp: minus }, cfg).loss) /
            (2 * h);
          const g = r.gradLogp[i]![t]!;
          assert.ok(
            Math.abs(fd - g) <= 1e-6 * (1 + Math.abs(g)),
            `case ${c} [${i}][${t}]: analytic ${g}, fd ${fd}`,
          );
        });
      });
      checked++;
    }
    // the random cases must actually exercise both regimes
    assert.ok(checked > 300, `only ${checked} cases away from kinks`);
    assert.ok(clippedSeen > 50, `only ${clippedSeen} cases with clipping`);
  });

  it("clipping never makes a gradient larger than the unclipped one", () => {
    const rng = new Rng(7);
    for (let c = 0; c < 400; c++) {
      const b = randomBatch(rng, 0.5);
      const cfg = { ...randomConfig(rng), beta: 0 };
      const clipped = policyLoss(b, cfg).gradLogp;
      const unclipped = policyLoss(b, { ...cfg, epsilon: 1e9, epsilonHigh: 1e9 }).gradLogp;
      for (const [i, row] of clipped.entries()) {
        for (const [t, g] of row.entries()) {
          const u = unclipped[i]![t]!;
          assert.ok(Math.abs(g) <= Math.abs(u) + 1e-12, `case ${c} [${i}][${t}]: |${g}| > |${u}|`);
          // a clipped gradient is either the unclipped one or zero
          assert.ok(g === 0 || Math.abs(g - u) <= 1e-12 * (1 + Math.abs(u)), `case ${c}: ${g} vs ${u}`);
        }
      }
    }
  });

  it("k3 ≥ 0 and k2 ≥ 0 everywhere, and k3 ≈ k2 when the policies are close", () => {
    const rng = new Rng(99);
    for (let c = 0; c < 5000; c++) {
      const logp = -20 * rng.next();
      const ref = -20 * rng.next();
      assert.ok(klEstimate(logp, ref, "k3") >= 0, `k3(${logp}, ${ref}) < 0`);
      assert.ok(klEstimate(logp, ref, "k2") >= 0);
      // k3 = d²/2 + d³/6 + …, so its relative distance to k2 = d²/2 is about |d|/3
      const d = 1e-3 * rng.normal();
      const k2 = klEstimate(logp, logp + d, "k2");
      const k3 = klEstimate(logp, logp + d, "k3");
      assert.ok(Math.abs(k3 - k2) <= Math.abs(d) * k2 + 1e-15, `k3 ${k3} vs k2 ${k2} at d = ${d}`);
    }
  });

  it("loss is finite for every random case, including ratios far outside the clip range", () => {
    const rng = new Rng(5);
    for (let c = 0; c < 300; c++) {
      const b = randomBatch(rng, 5);
      const r = policyLoss(b, randomConfig(rng));
      for (const v of [r.loss, r.policyLoss, r.kl, r.entropy, r.clipRatioHigh, r.clipRatioLow]) {
        assert.ok(Number.isFinite(v), `case ${c}: ${v}`);
      }
      assert.ok(r.clipRatioLow + r.clipRatioHigh <= 1);
    }
  });
});
