import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import {
  type AnomalyCoefficients,
  anomalyCoefficients,
  PERTURBATIVE_ANOMALIES,
} from "../../../src/recipes/theory/anomalies.ts";
import {
  type Field,
  parseTheory,
  STANDARD_MODEL_GENERATION,
  type Theory,
} from "../../../src/recipes/theory/fields.ts";
import { anomalyScore, coefficientScore, theoryReward } from "../../../src/recipes/theory/reward.ts";
import {
  chiralRemainder,
  hasFractionalCharge,
  isVectorLike,
  lightChargedExotics,
} from "../../../src/recipes/theory/spectrum.ts";
import { randomTheory } from "./random-theory.ts";

const SM = STANDARD_MODEL_GENERATION;
const f = (text: string): Field => parseTheory(text)[0]!;

describe("spectrum", () => {
  it("pairs fields with their conjugates", () => {
    assert.deepEqual(chiralRemainder(parseTheory("(3,2,+1) (3b,2,-1) (3,2,+1)")), [f("(3,2,+1)")]);
    assert.equal(isVectorLike(parseTheory("(3,1,+2) (1,1,-6) (3b,1,-2) (1,1,+6)")), true);
    // Same representation twice is not a vector-like pair.
    assert.equal(isVectorLike(parseTheory("(3,1,+2) (3,1,+2)")), false);
  });

  it("lets neutral singlets go alone but needs two copies of the pseudo-real (1,2,0)", () => {
    assert.deepEqual(chiralRemainder(parseTheory("(1,1,0)")), []);
    assert.deepEqual(chiralRemainder(parseTheory("(1,2,0)")), [f("(1,2,0)")]);
    assert.deepEqual(chiralRemainder(parseTheory("(1,2,0) (1,2,0)")), []);
    assert.deepEqual(chiralRemainder(parseTheory("(1,2,0) (1,2,0) (1,2,0)")), [f("(1,2,0)")]);
  });

  it("flags colour singlets with non-integer electric charge", () => {
    // 6Q = Y6 for a singlet, Y6 ± 3 for a doublet.
    assert.equal(hasFractionalCharge(f("(1,1,+6)")), false); // Q = 1
    assert.equal(hasFractionalCharge(f("(1,1,-12)")), false); // Q = −2
    assert.equal(hasFractionalCharge(f("(1,1,0)")), false);
    assert.equal(hasFractionalCharge(f("(1,1,+3)")), true); // Q = 1/2
    assert.equal(hasFractionalCharge(f("(1,1,-2)")), true); // Q = −1/3
    assert.equal(hasFractionalCharge(f("(1,2,-3)")), false); // Q = 0, −1
    assert.equal(hasFractionalCharge(f("(1,2,+9)")), false); // Q = 2, 1
    assert.equal(hasFractionalCharge(f("(1,2,0)")), true); // Q = ±1/2
    assert.equal(hasFractionalCharge(f("(1,2,+1)")), true);
    // Confined coloured fields are not penalised.
    assert.equal(hasFractionalCharge(f("(3,1,+1)")), false);
  });

  it("finds unpaired charged fields outside the Standard Model as exotics", () => {
    assert.deepEqual(lightChargedExotics(SM), []);
    assert.deepEqual(lightChargedExotics(parseTheory("(1,1,+12) (3,2,+1) (1,1,0)")), [f("(1,1,+12)")]);
    assert.deepEqual(lightChargedExotics(parseTheory("(1,1,+12) (1,1,-12)")), []);
    // The conjugate of an SM field is not SM-like on its own.
    assert.deepEqual(lightChargedExotics(parseTheory("(1,2,+3)")), [f("(1,2,+3)")]);
  });
});

describe("theoryReward", () => {
  it("gives one Standard Model generation the maximum", () => {
    const r = theoryReward(SM);
    assert.equal(r.anomalyFree, true);
    assert.equal(r.nonTrivial, true);
    assert.equal(r.total, 1);
    for (const k of PERTURBATIVE_ANOMALIES) assert.equal(r.coefficients[k], 0);
    assert.equal(r.coefficients.witten, 0);
    assert.equal(r.terms.anomaly, 1);
    assert.equal(r.terms.exotics, 0);
    assert.equal(r.terms.fractional_charge, 0);
  });

  it("gives three generations the maximum too", () => {
    const r = theoryReward([...SM, ...SM, ...SM]);
    assert.equal(r.anomalyFree, true);
    assert.equal(r.nonTrivial, true);
    assert.equal(r.total, 1);
  });

  it("drops below the maximum and loses anomalyFree when any field is removed", () => {
    for (let i = 0; i < SM.length; i++) {
      const r = theoryReward(SM.filter((_, j) => j !== i));
      assert.equal(r.anomalyFree, false, `without field ${i + 1}`);
      assert.ok(r.total < 0.9, `without field ${i + 1}: ${r.total}`);
      assert.ok(r.total > 0, "partial progress still earns something");
    }
  });

  it("gives a vector-like theory little although it is anomaly-free", () => {
    const vl = parseTheory("(3,2,+1) (3b,2,-1) (1,1,+6) (1,1,-6) (3,1,+2) (3b,1,-2)");
    const r = theoryReward(vl);
    assert.equal(r.anomalyFree, true);
    assert.equal(r.nonTrivial, false);
    assert.equal(r.terms.chirality, 0);
    // Only the length term survives: 1 / (1 + 1 + 4).
    assert.ok(Math.abs(r.total - 1 / 6) < 1e-12);
  });

  it("treats tiny or singlet-only theories as trivial", () => {
    assert.equal(theoryReward(parseTheory("(3,2,+1) (3b,1,-4)")).nonTrivial, false);
    const singlets = theoryReward(parseTheory("(1,1,+6) (1,1,+6) (1,1,-12) (1,1,+12) (1,1,-6)"));
    assert.equal(singlets.nonTrivial, false);
    assert.ok(singlets.total < 0.5);
  });

  it("scores an unparseable theory −1", () => {
    const r = theoryReward(null);
    assert.equal(r.total, -1);
    assert.equal(r.anomalyFree, false);
    assert.equal(r.nonTrivial, false);
  });

  it("switches terms on by curriculum phase", () => {
    // (1,1,+3) is both fractionally charged and an unpaired exotic.
    const exotic = parseTheory("(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+3)");
    assert.equal(theoryReward(exotic, { phase: 1 }).total, 1); // five fields: full length credit
    // Phase 2: 1 − 0.5·1/5 (exotics) − 0.5·1/5 (fractional charge).
    assert.ok(Math.abs(theoryReward(exotic, { phase: 2 }).total - 0.8) < 1e-12);
    assert.equal(theoryReward(SM, { phase: 2 }).total, 1);
    assert.ok(theoryReward(exotic, { phase: 3 }).total < theoryReward(exotic, { phase: 2 }).total);
    // Phase 1 is length only: two fields of a target of five.
    assert.ok(Math.abs(theoryReward(parseTheory("(1,1,+3) (1,1,+3)"), { phase: 1 }).total - 0.4) < 1e-12);
  });

  it("reports success against the goal of each phase", () => {
    const four = SM.slice(0, 4);
    const exotic = [...four, f("(1,1,+3)")];
    const vectorLike = parseTheory("(3,2,+1) (3b,2,-1) (1,1,+6) (1,1,-6) (3,1,+2) (3b,1,-2)");
    const success = (t: Theory, phase: 1 | 2 | 3) => theoryReward(t, { phase }).success;
    assert.deepEqual([success(four, 1), success(exotic, 1), success(SM, 1)], [false, true, true]);
    assert.deepEqual([success(exotic, 2), success(SM, 2), success(vectorLike, 2)], [false, true, true]);
    assert.deepEqual([success(four, 3), success(vectorLike, 3), success(SM, 3)], [false, false, true]);
    assert.equal(theoryReward(null, { phase: 1 }).success, false);
  });

  it("honours weights and validates the configuration", () => {
    const lessAnomaly = theoryReward(SM.slice(0, 4), { weights: { anomaly: 0 } });
    // Without the anomaly weight: (length 0.8 + chirality 1) / 2.
    assert.ok(Math.abs(lessAnomaly.total - 0.9) < 1e-12);
    assert.throws(() => theoryReward(SM, { weights: { exotics: -1 } }), /weights\.exotics/);
    assert.throws(() => theoryReward(SM, { phase: 4 as 1 }), /phase/);
    assert.throws(() => theoryReward(SM, { targetFields: 0 }), /targetFields/);
  });

  it("partialCredit scales only the positive phase-3 total of a theory that is not a success", () => {
    const four = SM.slice(0, 4);
    const full = theoryReward(four).total;
    assert.ok(Math.abs(theoryReward(four, { partialCredit: 0.25 }).total - 0.25 * full) < 1e-12);
    assert.equal(theoryReward(four, { partialCredit: 0 }).total, 0);
    // A success keeps its full reward, so exact cancellation now dominates any near miss.
    assert.equal(theoryReward(SM, { partialCredit: 0 }).total, 1);
    // A negative total is not scaled (that would soften the penalty), nor is any earlier phase.
    const fractional = parseTheory("(1,1,+3)");
    const penalised = theoryReward(fractional).total;
    assert.ok(penalised < 0, `${penalised}`);
    assert.equal(theoryReward(fractional, { partialCredit: 0.1 }).total, penalised);
    assert.equal(
      theoryReward(four, { phase: 2, partialCredit: 0 }).total,
      theoryReward(four, { phase: 2 }).total,
    );
    assert.throws(() => theoryReward(SM, { partialCredit: 1.5 }), /partialCredit/);
    assert.throws(() => theoryReward(SM, { partialCredit: Number.NaN }), /partialCredit/);
  });

  it("stays within [−1, 1] for random theories in every phase", () => {
    const rng = new Rng(11);
    for (let i = 0; i < 500; i++) {
      const t = randomTheory(rng, 1 + rng.int(16));
      for (const phase of [1, 2, 3] as const) {
        const { total } = theoryReward(t, { phase });
        assert.ok(total >= -1 && total <= 1, `${total}`);
      }
    }
  });
});

describe("partial progress", () => {
  it("each coefficient score is 1 at zero and strictly decreasing in |c|", () => {
    assert.equal(coefficientScore(0, 6), 1);
    assert.ok(Math.abs(coefficientScore(6, 6) - 0.25) < 1e-12);
    assert.equal(coefficientScore(-6, 6), coefficientScore(6, 6));
    let prev = coefficientScore(0, 216);
    for (const c of [1, 2, 5, 50, 500, 5000, 50000, 5e6]) {
      const s = coefficientScore(c, 216);
      assert.ok(s < prev && s > 0, `at ${c}`);
      prev = s;
    }
  });

  it("a coefficient vector dominated in |c| scores higher (random vectors)", () => {
    const rng = new Rng(3);
    const keys = [...PERTURBATIVE_ANOMALIES];
    for (let i = 0; i < 1000; i++) {
      const big = {} as AnomalyCoefficients;
      const small = {} as AnomalyCoefficients;
      for (const k of keys) {
        const c = rng.int(2000) - 1000;
        big[k] = c;
        small[k] = rng.next() < 0.5 ? c : Math.trunc(c * rng.next());
      }
      big.witten = rng.int(2);
      small.witten = big.witten === 1 ? rng.int(2) : 0;
      const strictly = keys.some((k) => Math.abs(small[k]) < Math.abs(big[k])) || small.witten < big.witten;
      const a = anomalyScore(small).score;
      const b = anomalyScore(big).score;
      if (strictly) assert.ok(a > b, `small ${JSON.stringify(small)} vs big ${JSON.stringify(big)}`);
      else assert.equal(a, b);
    }
  });

  it("among theories of Standard Model fields, smaller |coefficients| earn a higher total", () => {
    // Such theories have no exotics or fractional charges, so only the anomaly term differs.
    const rng = new Rng(5);
    const sample = (): Theory => {
      const t = Array.from({ length: 5 + rng.int(8) }, () => ({ ...rng.pick(SM) }));
      return t;
    };
    let compared = 0;
    for (let i = 0; i < 3000; i++) {
      const a = sample();
      const b = sample();
      const ra = theoryReward(a);
      const rb = theoryReward(b);
      if (!ra.nonTrivial || !rb.nonTrivial) continue;
      const ca = anomalyCoefficients(a);
      const cb = anomalyCoefficients(b);
      const keys = PERTURBATIVE_ANOMALIES;
      const dominated = keys.every((k) => Math.abs(ca[k]) <= Math.abs(cb[k])) && ca.witten <= cb.witten;
      const strictly = keys.some((k) => Math.abs(ca[k]) < Math.abs(cb[k])) || ca.witten < cb.witten;
      if (dominated && strictly) {
        assert.ok(ra.total > rb.total, `${JSON.stringify(ca)} should beat ${JSON.stringify(cb)}`);
        compared++;
      }
    }
    assert.ok(compared > 20, `only ${compared} comparable pairs`);
  });

  it("an exotic closer to cancelling the anomalies earns more than an equally exotic one", () => {
    // Four SM fields leave u1Cubed = −216, gravU1 = −6. Adding (1,1,+12): u1Cubed = −216 + 1728 = 1512,
    // gravU1 = 6; adding (1,1,−12): u1Cubed = −1944, gravU1 = −18. Both are one unpaired exotic.
    const plus = theoryReward([...SM.slice(0, 4), f("(1,1,+12)")]);
    const minus = theoryReward([...SM.slice(0, 4), f("(1,1,-12)")]);
    assert.equal(plus.coefficients.u1Cubed, 1512);
    assert.equal(minus.coefficients.u1Cubed, -1944);
    assert.equal(plus.terms.exotics, minus.terms.exotics);
    assert.ok(plus.total > minus.total);
    assert.ok(theoryReward(SM).total > plus.total);
  });
});
