import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  DEFAULT_CRITIC_WEIGHTS,
  DEFAULT_GENERATOR_WEIGHTS,
  loadRewardWeights,
  parseEquivalence,
  parseFusionJudge,
  parseLogicJudge,
  totalReward,
} from "../../../src/recipes/causal-scaffold/rewards.ts";
import { tempDirs } from "../../helpers/tmp.ts";

describe("reward totals", () => {
  test("generator weights: hand-computed totals", () => {
    const parts = { r_ans: 1, r_logic: 0.6, r_graph: 0.8 };
    // 0.5 + 0.25·0.6 + 0.25·0.8, 0.6 + 0.2·0.6 + 0.2·0.8, 0.7 + 0.15·0.6 + 0.15·0.8
    assert.equal(totalReward(parts, DEFAULT_GENERATOR_WEIGHTS[1]), 0.85);
    assert.equal(totalReward(parts, DEFAULT_GENERATOR_WEIGHTS[2]), 0.88);
    assert.equal(totalReward(parts, DEFAULT_GENERATOR_WEIGHTS[3]), 0.91);
    for (const w of Object.values(DEFAULT_GENERATOR_WEIGHTS))
      assert.ok(Math.abs(w.ans + w.logic + w.graph - 1) < 1e-12);
  });

  test("critic total includes r_fusion", () => {
    const t = totalReward({ r_ans: 0, r_logic: 0.5, r_graph: 1, r_fusion: 0.5 }, DEFAULT_CRITIC_WEIGHTS);
    // 0.3·0 + 0.2·0.5 + 0.2·1 + 0.3·0.5
    assert.equal(t, 0.45);
  });
});

describe("judge replies", () => {
  test("logic judge: overall wins, else the mean of the given scores", () => {
    assert.equal(parseLogicJudge('{"validity": 0.2, "overall": 0.9}'), 0.9);
    assert.equal(parseLogicJudge('Sure. {"validity": 0.2, "completeness": 0.4, "rigor": 0.9}'), 0.5);
    assert.throws(() => parseLogicJudge('{"overall": 1.5}'), /field overall/);
    assert.throws(() => parseLogicJudge('{"comment": "fine"}'), /no score/);
    assert.throws(() => parseLogicJudge("looks good"), /no JSON object/);
  });

  test("fusion judge and equivalence", () => {
    assert.equal(parseFusionJudge('```json\n{"score": 0.75, "comment": "ok"}\n```'), 0.75);
    assert.throws(() => parseFusionJudge('{"score": -0.1}'), /fusion judge/);
    assert.throws(() => parseFusionJudge('{"rating": 1}'), /fusion judge/);
    assert.equal(parseEquivalence('{"equivalent": true}'), true);
    assert.throws(() => parseEquivalence('{"equivalent": "yes"}'), /equivalent/);
  });
});

describe("reward weights file", () => {
  const dir = tempDirs("causal-scaffold-weights-")();
  const write = (v: unknown) => {
    const p = join(dir, `w${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify(v));
    return p;
  };

  test("given agents override, the others keep their defaults", () => {
    const w = loadRewardWeights(write({ generator_2: { ans: 0.8, logic: 0.1, graph: 0.1 } }));
    assert.deepEqual(w.generators[2], { ans: 0.8, logic: 0.1, graph: 0.1 });
    assert.deepEqual(w.generators[1], DEFAULT_GENERATOR_WEIGHTS[1]);
    assert.deepEqual(w.critic, DEFAULT_CRITIC_WEIGHTS);
  });

  test("errors name the file and the field", () => {
    assert.throws(
      () => loadRewardWeights(write({ generator_1: { ans: -1, logic: 0, graph: 0 } })),
      /\(field generator_1\.ans\)/,
    );
    assert.throws(
      () => loadRewardWeights(write({ generator_4: {} })),
      /\(field generator_4\): unknown field/,
    );
    assert.throws(
      () => loadRewardWeights(write({ critic: { ans: 1, logic: 0, graph: 0 } })),
      /\(field critic\.fusion\)/,
    );
    assert.throws(() => loadRewardWeights(join(dir, "missing.json")), /reward weights file not found/);
  });
});
