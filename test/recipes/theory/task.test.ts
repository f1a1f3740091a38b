import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { anomalyCoefficients, isAnomalyFree } from "../../../src/recipes/theory/anomalies.ts";
import { STANDARD_MODEL_GENERATION } from "../../../src/recipes/theory/fields.ts";
import { createTheoryTask } from "../../../src/recipes/theory/task.ts";

describe("createTheoryTask", () => {
  it("prompts with <bos> and rewards decoded completions", () => {
    const task = createTheoryTask();
    assert.deepEqual(task.promptTokens(), [task.grammar.bosId]);
    const sm = task.grammar.encode(STANDARD_MODEL_GENERATION);
    assert.equal(task.reward(sm).total, 1);
    assert.equal(task.reward([task.grammar.bosId, ...sm]).total, 1);
    assert.equal(task.reward(sm.slice(0, -1)).total, -1, "no <eos> is unparseable");
    // Phase override: a four-field theory gets 4/5 in phase 1, whatever its anomalies.
    const four = task.grammar.encode(STANDARD_MODEL_GENERATION.slice(0, 4));
    assert.ok(Math.abs(task.reward(four, 1).total - 0.8) < 1e-12);
    assert.ok(task.reward(four, 3).total < 0.8);
    assert.equal(task.phases, 3);
    assert.throws(() => task.reward(four, 4), /phase must be 1, 2 or 3/);
  });

  it("passes the reward configuration through", () => {
    const task = createTheoryTask({ reward: { phase: 1, targetFields: 10 } });
    const sm = task.grammar.encode(STANDARD_MODEL_GENERATION);
    assert.ok(Math.abs(task.reward(sm).total - 0.5) < 1e-12);
    // Phase 3 with the same target: (length 0.5 + chirality 1 + 4·anomaly 1) / 6.
    assert.ok(Math.abs(task.reward(sm, 3).total - 5.5 / 6) < 1e-12);
  });

  it("demonstrations are grammatical, seeded, and mostly anomalous with the stated share valid", () => {
    const task = createTheoryTask();
    const demos = task.demonstrations(new Rng(9), 200);
    assert.deepEqual(task.demonstrations(new Rng(9), 200), demos, "same seed, same demonstrations");
    assert.equal(demos.length, 200);
    let valid = 0;
    const lengths = new Set<number>();
    for (const tokens of demos) {
      // Replaying through the automaton proves that the sampler could have produced it.
      assert.equal(tokens[0], task.grammar.bosId, "prompt included");
      let s = task.grammar.initial();
      for (const tok of tokens.slice(1)) s = task.grammar.advance(s, tok);
      assert.equal(task.grammar.isDone(s), true);
      const t = task.grammar.decode(tokens)!;
      lengths.add(t.length);
      if (isAnomalyFree(anomalyCoefficients(t))) {
        valid++;
        assert.equal(task.reward(tokens).nonTrivial, true);
      }
    }
    assert.equal(valid, 20, "10% anomaly-free");
    assert.ok(lengths.size > 5, "a spread of lengths");
  });

  it("honours validShare and grammars too small for a generation", () => {
    const all = createTheoryTask({ validShare: 1, minFields: 7, maxFields: 16 });
    for (const tokens of all.demonstrations(new Rng(1), 50)) {
      const t = all.grammar.decode(tokens)!;
      assert.ok(t.length >= 7 && t.length <= 16);
      assert.equal(isAnomalyFree(anomalyCoefficients(t)), true);
    }
    const tiny = createTheoryTask({ maxFields: 4 });
    for (const tokens of tiny.demonstrations(new Rng(1), 50)) {
      const t = tiny.grammar.decode(tokens)!;
      assert.ok(t.length <= 4);
      assert.equal(isAnomalyFree(anomalyCoefficients(t)), false);
    }
    assert.throws(() => createTheoryTask({ validShare: 2 }), /validShare/);
    assert.throws(() => createTheoryTask().demonstrations(new Rng(1), -1), /n ≥ 0/);
  });
});
