import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { accuracyAtK } from "../../src/tfgrpo/evaluate.ts";
import { mapPool } from "../../src/tfgrpo/pool.ts";
import { PROMPT_NAMES, PromptSet, renderTemplate } from "../../src/tfgrpo/prompts.ts";
import {
  DEFAULT_CRITIC_WEIGHTS,
  DEFAULT_GENERATOR_WEIGHTS,
  decideExtraction,
  loadRewardWeights,
  parseEquivalence,
  parseFusionJudge,
  parseLogicJudge,
  totalReward,
} from "../../src/tfgrpo/rewards.ts";
import type { ProblemRecord } from "../../src/tfgrpo/rollout-cache.ts";
import { formatValue } from "../../src/tfgrpo/solve.ts";
import { tempDirs } from "../helpers/tmp.ts";

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

describe("small pieces", () => {
  test("templates: placeholders filled, a missing value is an error, every built-in prompt loads", () => {
    assert.equal(renderTemplate("a {{x}} b {{ y }}", { x: 1, y: "two" }), "a 1 b two");
    assert.throws(
      () => renderTemplate("{{missing}}", {}, "judge"),
      /prompt judge: no value for placeholder \{\{missing\}\}/,
    );
    const prompts = new PromptSet();
    for (const name of PROMPT_NAMES) assert.match(prompts.template(name), /^TASK: [A-Z ]+\n/);
  });

  test("formatValue: near-integers become integers", () => {
    assert.equal(formatValue(33.0000000000001), "33");
    assert.equal(formatValue(-4), "-4");
    assert.equal(formatValue(0.1 + 0.2), "0.3");
    assert.equal(formatValue(2.5), "2.5");
  });

  test("mapPool keeps order and never exceeds its limit", async () => {
    let active = 0;
    let peak = 0;
    const out = await mapPool([5, 1, 4, 2, 3], 2, async (x) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, x));
      active--;
      return x * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30]);
    assert.equal(peak, 2);
    await assert.rejects(
      mapPool([1], 0, async (x) => x),
      /limit must be an integer ≥ 1/,
    );
  });

  test("Mean@k and Pass@k", () => {
    const rec = (correct: boolean[]): ProblemRecord => ({
      problem_id: "p",
      problem_text: "",
      ground_truth: "1",
      timestamp: "",
      rollouts: correct.map((c, i) => ({
        rollout_id: i + 1,
        scaffold: null,
        answer: null,
        is_correct: c,
        r_ans: c ? 1 : 0,
        r_logic: 0,
        r_graph: 0,
        r_total: 0,
      })),
    });
    const r = accuracyAtK(
      [rec([true, false, false]), rec([false, false, false]), rec([true, true, true])],
      3,
    );
    assert.equal(r.meanAtK, (1 / 3 + 0 + 1) / 3);
    assert.equal(r.passAtK, 2 / 3);
    assert.deepEqual(accuracyAtK([], 3), { k: 3, problems: 0, meanAtK: 0, passAtK: 0 });
  });
});

describe("reward weights file", () => {
  const dir = tempDirs("tfgrpo-w-")();
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
