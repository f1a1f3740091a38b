import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { anomalyCoefficients, isAnomalyFree } from "../../../src/recipes/theory/anomalies.ts";
import {
  type Field,
  formatTheory,
  parseTheory,
  STANDARD_MODEL_GENERATION,
} from "../../../src/recipes/theory/fields.ts";
import { randomTheory } from "./random-theory.ts";

const SM = STANDARD_MODEL_GENERATION;

describe("fields", () => {
  it("formats and parses the Standard Model generation", () => {
    const text = formatTheory(SM);
    assert.equal(text, "(3,2,+1) (3b,1,-4) (3b,1,+2) (1,2,-3) (1,1,+6)");
    assert.deepEqual(parseTheory(text), SM);
    assert.deepEqual(parseTheory("(1,1,0)"), [{ su3: "1", su2: "1", y6: 0 }]);
  });

  it("names the bad field when parsing fails", () => {
    assert.throws(() => parseTheory("(3,2,+1) (4,1,0)"), /field 2 "\(4,1,0\)"/);
  });
});

describe("anomalyCoefficients", () => {
  it("vanish for one Standard Model generation", () => {
    assert.deepEqual(anomalyCoefficients(SM), {
      su3Cubed: 0,
      su3SqU1: 0,
      su2SqU1: 0,
      u1Cubed: 0,
      gravU1: 0,
      witten: 0,
    });
    assert.equal(isAnomalyFree(anomalyCoefficients(SM)), true);
  });

  it("vanish for three generations", () => {
    const three = [...SM, ...SM, ...SM];
    assert.equal(isAnomalyFree(anomalyCoefficients(three)), true);
  });

  it("break when any one field is removed, in the expected coefficients", () => {
    // Expected values: the SM sums with the removed field's contribution subtracted.
    // Contributions per field (su3Cubed, su3SqU1, su2SqU1, u1Cubed, gravU1, doublets):
    //   Q  (3,2,+1):  2,  2,  3,    6,  6, 3
    //   uc (3b,1,-4): -1, -4, 0, -192, -12, 0
    //   dc (3b,1,+2): -1,  2, 0,   24,  6, 0
    //   L  (1,2,-3):  0,  0, -3,  -54, -6, 1
    //   ec (1,1,+6):  0,  0, 0,   216,  6, 0
    const expected = [
      { su3Cubed: -2, su3SqU1: -2, su2SqU1: -3, u1Cubed: -6, gravU1: -6, witten: 1 },
      { su3Cubed: 1, su3SqU1: 4, su2SqU1: 0, u1Cubed: 192, gravU1: 12, witten: 0 },
      { su3Cubed: 1, su3SqU1: -2, su2SqU1: 0, u1Cubed: -24, gravU1: -6, witten: 0 },
      { su3Cubed: 0, su3SqU1: 0, su2SqU1: 3, u1Cubed: 54, gravU1: 6, witten: 1 },
      { su3Cubed: 0, su3SqU1: 0, su2SqU1: 0, u1Cubed: -216, gravU1: -6, witten: 0 },
    ];
    for (let i = 0; i < SM.length; i++) {
      const without = SM.filter((_, j) => j !== i);
      const c = anomalyCoefficients(without);
      assert.deepEqual(c, expected[i], `without field ${i + 1}`);
      assert.equal(isAnomalyFree(c), false);
    }
  });

  it("match hand-computed values for a small theory", () => {
    // (3,2,+1) (1,2,-3) (1,1,+12):
    //   su3Cubed = A(3)·2                      = 2
    //   su3SqU1  = 2·1 (only Q is coloured)    = 2
    //   su2SqU1  = 3·1 + 1·(−3)                = 0
    //   u1Cubed  = 6·1³ + 2·(−3)³ + 1·12³ = 6 − 54 + 1728 = 1680
    //   gravU1   = 6·1 + 2·(−3) + 1·12         = 12
    //   doublets = 3 + 1 = 4 → witten 0
    assert.deepEqual(anomalyCoefficients(parseTheory("(3,2,+1) (1,2,-3) (1,1,+12)")), {
      su3Cubed: 2,
      su3SqU1: 2,
      su2SqU1: 0,
      u1Cubed: 1680,
      gravU1: 12,
      witten: 0,
    });
    // (3b,2,-2) (1,1,+3): su3Cubed = −1·2 = −2; su3SqU1 = 2·(−2) = −4; su2SqU1 = 3·(−2) = −6;
    // u1Cubed = 6·(−8) + 27 = −21; gravU1 = 6·(−2) + 3 = −9; doublets = 3 → witten 1.
    assert.deepEqual(anomalyCoefficients(parseTheory("(3b,2,-2) (1,1,+3)")), {
      su3Cubed: -2,
      su3SqU1: -4,
      su2SqU1: -6,
      u1Cubed: -21,
      gravU1: -9,
      witten: 1,
    });
  });

  it("equal the physical coefficients times the documented unit factors", () => {
    // Physical formulas with fractional Y and Dynkin indices ½, computed in floating point.
    const rng = new Rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const t = randomTheory(rng, 1 + rng.int(12));
      let a3 = 0;
      let a32 = 0;
      let a22 = 0;
      let a111 = 0;
      let grav = 0;
      for (const f of t as Field[]) {
        const d3 = f.su3 === "1" ? 1 : 3;
        const d2 = f.su2 === "1" ? 1 : 2;
        const y = f.y6 / 6;
        a3 += (f.su3 === "3" ? 1 : f.su3 === "3b" ? -1 : 0) * d2;
        a32 += (f.su3 === "1" ? 0 : 0.5) * d2 * y;
        a22 += (f.su2 === "1" ? 0 : 0.5) * d3 * y;
        a111 += d3 * d2 * y ** 3;
        grav += d3 * d2 * y;
      }
      const c = anomalyCoefficients(t);
      assert.equal(c.su3Cubed, a3);
      assert.ok(Math.abs(c.su3SqU1 - 12 * a32) < 1e-9);
      assert.ok(Math.abs(c.su2SqU1 - 12 * a22) < 1e-9);
      assert.ok(Math.abs(c.u1Cubed - 216 * a111) < 1e-6);
      assert.ok(Math.abs(c.gravU1 - 6 * grav) < 1e-9);
      for (const v of Object.values(c)) assert.ok(Number.isInteger(v));
    }
  });

  it("cancel for a field together with its conjugate", () => {
    const c = anomalyCoefficients(parseTheory("(3,2,+5) (3b,2,-5) (1,2,+9) (1,2,-9)"));
    assert.equal(isAnomalyFree(c), true);
  });

  it("keep Witten's condition: (1,2,0) alone cancels every perturbative anomaly and is still anomalous", () => {
    const c = anomalyCoefficients(parseTheory("(1,2,0)"));
    assert.deepEqual(c, { su3Cubed: 0, su3SqU1: 0, su2SqU1: 0, u1Cubed: 0, gravU1: 0, witten: 1 });
    assert.equal(isAnomalyFree(c), false, "an odd number of SU(2) doublets is inconsistent");
    assert.equal(isAnomalyFree(anomalyCoefficients(parseTheory("(1,2,0) (1,2,0)"))), true);
  });

  it("catch a theory anomalous only in U(1)³", () => {
    // Y6 = 1, 1, −2: Σ Y6 = 0 (gravitational), no coloured fields or doublets, but Σ Y6³ = 1 + 1 − 8.
    const c = anomalyCoefficients(parseTheory("(1,1,+1) (1,1,+1) (1,1,-2)"));
    assert.deepEqual(c, { su3Cubed: 0, su3SqU1: 0, su2SqU1: 0, u1Cubed: -6, gravU1: 0, witten: 0 });
    assert.equal(isAnomalyFree(c), false);
  });

  it("count a single colour-triplet doublet as three Witten doublets", () => {
    assert.equal(anomalyCoefficients(parseTheory("(3,2,0)")).witten, 1);
    assert.equal(anomalyCoefficients(parseTheory("(3,2,0) (1,2,0)")).witten, 0);
  });
});
