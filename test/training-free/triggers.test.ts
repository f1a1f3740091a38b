import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideExtraction } from "../../src/training-free/triggers.ts";

describe("extraction decision", () => {
  test("variance mode: σ > τ strictly", () => {
    // [0, 0.2]: σ = 0.1
    assert.equal(decideExtraction([0, 0.2], [false, false], { mode: "variance", tau: 0.05 }).extract, true);
    assert.equal(
      decideExtraction([0.5, 0.5, 0.5], [true, false, true], { mode: "variance", tau: 0.05 }).extract,
      false,
    );
    assert.equal(decideExtraction([0, 0.2], [false, false], { mode: "variance", tau: 0.1 }).extract, false);
    assert.match(
      decideExtraction([0, 0.2], [false, false], { mode: "variance", tau: 0.05 }).reason,
      /σ=0\.1000 > τ=0\.05/,
    );
  });

  test("mixed mode: only groups with both correct and wrong answers", () => {
    const mixed = { mode: "mixed" as const, tau: 0.05 };
    assert.deepEqual(decideExtraction([1, 0], [true, false], mixed), {
      extract: true,
      reason: "mixed 1/2 correct",
    });
    assert.deepEqual(decideExtraction([1, 0.2], [true, true], mixed), {
      extract: false,
      reason: "all correct",
    });
    assert.deepEqual(decideExtraction([0.3, 0], [false, false], mixed), {
      extract: false,
      reason: "all wrong",
    });
    assert.equal(decideExtraction([], [], mixed).extract, false);
  });
});

describe("extraction decision at τ = 0", () => {
  test("equal rewards never learn, whatever rounding leaves of σ; a negative τ learns from every group", () => {
    const v = { mode: "variance" as const, tau: 0 };
    assert.equal(decideExtraction([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [], v).extract, false);
    assert.equal(decideExtraction([0, 1], [false, true], v).extract, true);
    assert.equal(decideExtraction([0.5, 0.5], [], { mode: "variance", tau: -1 }).extract, true);
    assert.deepEqual(decideExtraction([1, 1], [true, true], { mode: "all", tau: 0 }), {
      extract: true,
      reason: "every group",
    });
  });
});
