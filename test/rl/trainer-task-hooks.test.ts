import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { readJsonl } from "../../src/io/files.ts";
import { sample } from "../../src/model/sampler.ts";
import { GrpoTrainer } from "../../src/rl/trainer.ts";
import type { BatchContext, RlTask } from "../../src/rl/types.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { BOS, EOS, TOY_TRAINER_CONFIG, tinyGpt, toyTask } from "./toy.ts";

await tf.setBackend("cpu");
const tmp = tempDirs("grpo-rl-hooks-");

interface Memory {
  batches: number;
  completions: number;
  evals: number;
}

/**
 * The toy task with every run-level hook: a batch reward that pays 1 for the first completion
 * the run ever wrote of its kind (the memory counts them), evaluation figures, and a memory
 * that must survive a resume.
 */
function hookedTask() {
  const base = toyTask();
  const calls: BatchContext[] = [];
  let memory: Memory & { seen: string[] } = { batches: 0, completions: 0, evals: 0, seen: [] };
  const task: RlTask = {
    ...base,
    rewardBatch(completions, ctx) {
      calls.push({ ...ctx, groups: [...ctx.groups] });
      memory.batches++;
      memory.completions += completions.length;
      return completions.map((c) => {
        const r = base.reward(c, ctx.phase);
        const key = c.join(",");
        const first = !memory.seen.includes(key);
        if (first) memory.seen.push(key);
        return {
          ...r,
          total: r.total + (first ? 1 : 0),
          components: { hits: r.total, first: first ? 1 : 0 },
        };
      });
    },
    evalMetrics(completions) {
      memory.evals++;
      return { distinct: new Set(completions.map((c) => c.join(","))).size };
    },
    memory: {
      file: "memory.json",
      save: () => structuredClone(memory),
      load: (state) => {
        memory = structuredClone(state) as typeof memory;
      },
    },
  };
  return { task, calls, memory: () => memory };
}

const config = { ...TOY_TRAINER_CONFIG, evalEvery: 2, saveEvery: 2, evalOnStart: true };

/** Share of `token` among 256 tokens the policy samples. */
function sampleShare(t: GrpoTrainer, token: number): number {
  const res = sample(
    t.policy,
    Array.from({ length: 64 }, () => [BOS]),
    {
      maxNewTokens: 4,
      eosId: EOS,
      rng: new Rng(99),
    },
  );
  const all = res.tokens.flat();
  return all.filter((x) => x === token).length / Math.max(1, all.length);
}

describe("trainer: the task's batch reward, evaluation figures and memory", () => {
  it("scores each step's completions in one call, logs eval_<name>, and reports initial and final figures", async () => {
    const out = tmp();
    const h = hookedTask();
    const t = new GrpoTrainer(tinyGpt(3), { task: h.task, config, outputDir: out });
    await t.train(4);
    const G = config.numGenerations;
    assert.deepEqual(
      h.calls.map((c) => c.step),
      [0, 1, 2, 3],
    );
    for (const c of h.calls) {
      assert.deepEqual(c.groups, [...Array(G).fill(0), ...Array(G).fill(1)]);
    }
    // The batch reward is what the step logged: its named parts included.
    const hist = readJsonl(join(out, "history.jsonl")).records.map((r) => r.value as Record<string, number>);
    assert.equal(typeof hist[0]!["rewards/first/mean"], "number");
    assert.ok(
      Math.abs(hist[0]!.reward! - hist[0]!["rewards/hits/mean"]! - hist[0]!["rewards/first/mean"]!) < 1e-9,
    );
    assert.deepEqual(
      hist.map((h) => typeof h.eval_distinct),
      ["undefined", "number", "undefined", "number"],
    );
    const stats = JSON.parse(readFileSync(join(out, "training_stats.json"), "utf8"));
    assert.equal(typeof stats.initial.success_rate, "number");
    assert.ok(stats.initial.distinct >= 1);
    assert.equal(stats.final.distinct, hist[3]!.eval_distinct);
    assert.equal(stats.final.success_rate, hist[3]!.eval_success_rate);
    // Evaluated before step 1, after steps 2 and 4 (the final evaluation is step 4's).
    assert.equal(h.memory().evals, 3);
    const file = JSON.parse(readFileSync(join(out, "memory.json"), "utf8")) as Memory;
    assert.equal(file.batches, 4);
    assert.equal(file.completions, 4 * 2 * G);
    t.policy.dispose();
    t.dispose();
  });

  it("saves the memory in each checkpoint, so a resumed run continues it as an uninterrupted one", async () => {
    const a = tmp();
    const full = hookedTask();
    const t = new GrpoTrainer(tinyGpt(4), { task: full.task, config, outputDir: a });
    await t.train(4);
    const state = JSON.parse(readFileSync(join(a, "checkpoint-2", "trainer_state", "state.json"), "utf8"));
    assert.equal(state.task.batches, 2);
    assert.equal(typeof state.initialEval.successRate, "number");

    const b = tmp();
    const first = new GrpoTrainer(tinyGpt(4), { task: hookedTask().task, config, outputDir: b });
    await first.train(2);
    first.trainStep(); // a step past the checkpoint, which the resumed run must forget
    const second = hookedTask();
    const resumed = await GrpoTrainer.resume({ task: second.task, config, outputDir: b });
    assert.equal(second.memory().batches, 2);
    await resumed.train(4);
    assert.deepEqual(second.memory(), full.memory());
    assert.deepEqual(resumed.initialEval, t.initialEval);
    assert.ok(existsSync(join(b, "memory.json")));
    const stats = (d: string) => {
      const { wall_seconds_this_run: _w, ...rest } = JSON.parse(
        readFileSync(join(d, "training_stats.json"), "utf8"),
      );
      return rest;
    };
    assert.deepEqual(stats(b), stats(a));
    for (const x of [t, first, resumed]) {
      x.policy.dispose();
      x.dispose();
    }
  });

  it("adds the task's archived completions to every group: learnt from, but not counted as samples", () => {
    const base = toyTask();
    const C = 4; // a symbol the task's own reward ignores
    const calls: number[] = [];
    const task: RlTask = {
      ...base,
      reward: () => ({ total: 0, success: false }),
      archiveSamples(_rng, ctx) {
        calls.push(ctx.step);
        return [{ tokens: [C, C, C, C], reward: { total: 1, success: true, components: { archived: 1 } } }];
      },
    };
    const share = (t: GrpoTrainer) => {
      const rec = t.trainStep(false);
      assert.equal(rec.reward, 0, "the step's reward is the sampled completions' only");
      assert.equal(rec.success_rate, 0);
      return rec;
    };
    const t = new GrpoTrainer(tinyGpt(6), { task, config: { ...TOY_TRAINER_CONFIG, learningRate: 5e-2 } });
    const before = sampleShare(t, C);
    for (let i = 0; i < 6; i++) share(t);
    const after = sampleShare(t, C);
    assert.deepEqual(calls, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], "once per group per step");
    assert.ok(after > before + 0.2, `share of the archived symbol ${before} → ${after}`);
    t.policy.dispose();
    t.dispose();
  });

  it("takes the evaluation before the first step as the baseline a new best must beat, unannounced", async () => {
    const lines: string[] = [];
    const t = new GrpoTrainer(tinyGpt(7), {
      task: { ...toyTask(), successLabel: "success" },
      config: { ...TOY_TRAINER_CONFIG, evalEvery: 1, evalOnStart: true },
      outputDir: tmp(),
      log: (l) => lines.push(l),
    });
    const evals = [
      { successRate: 0.25, reward: 0.1 },
      { successRate: 0.25, reward: 0.05 },
      { successRate: 0.5, reward: 0.2 },
    ];
    t.evaluate = () => evals.shift()!;
    await t.train(2);
    assert.deepEqual(t.initialEval, { successRate: 0.25, reward: 0.1 });
    const news = lines.filter((l) => /best/i.test(l));
    assert.deepEqual(news, ["New best success: 0.5000 (step 2)"]);
    t.policy.dispose();
    t.dispose();
  });

  it("refuses a batch reward of the wrong length", () => {
    const base = toyTask();
    const task: RlTask = { ...base, rewardBatch: (c) => c.slice(1).map((x) => base.reward(x, 1)) };
    const t = new GrpoTrainer(tinyGpt(5), { task, config: TOY_TRAINER_CONFIG });
    assert.throws(() => t.trainStep(false), /rewardBatch returned 31 results for 32 completions/);
    t.policy.dispose();
    t.dispose();
  });
});
