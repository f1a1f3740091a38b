import assert from "node:assert/strict";
import { test } from "node:test";
import { formatValue } from "../../../src/recipes/causal-scaffold/solve.ts";

test("formatValue: near-integers become integers", () => {
  assert.equal(formatValue(33.0000000000001), "33");
  assert.equal(formatValue(-4), "-4");
  assert.equal(formatValue(0.1 + 0.2), "0.3");
  assert.equal(formatValue(2.5), "2.5");
});
