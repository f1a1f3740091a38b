import assert from "node:assert/strict";
import { test } from "node:test";
import { accuracyAtK, type ScoredGroup } from "../../src/training-free/evaluate.ts";

test("Mean@k and Pass@k", () => {
  const rec = (correct: boolean[]): ScoredGroup => ({ rollouts: correct.map((c) => ({ is_correct: c })) });
  const r = accuracyAtK([rec([true, false, false]), rec([false, false, false]), rec([true, true, true])], 3);
  assert.equal(r.meanAtK, (1 / 3 + 0 + 1) / 3);
  assert.equal(r.passAtK, 2 / 3);
  assert.deepEqual(accuracyAtK([], 3), { k: 3, problems: 0, meanAtK: 0, passAtK: 0 });
});
