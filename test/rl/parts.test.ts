import assert from "node:assert/strict";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { completionMetrics } from "../../src/core/metrics.ts";
import { Rng } from "../../src/core/rng.ts";
import { Curriculum } from "../../src/rl/curriculum.ts";
import { clipByGlobalNorm, grpoUpdate } from "../../src/rl/grpo-step.ts";
import { resolveLossConfig } from "../../src/rl/loss.ts";
import { ReplayBuffer, type ReplayGroup } from "../../src/rl/replay.ts";
import { buildBatch, rolloutMask, rolloutTokens } from "../../src/rl/rollout.ts";
import { sftTrain } from "../../src/rl/sft.ts";
import type { Rollout } from "../../src/rl/types.ts";
import { EOS, tinyGpt, toyTask } from "./toy.ts";

await tf.setBackend("cpu");

function rollout(tokens: number[], extra: Partial<Rollout> = {}): Rollout {
  return { group: 0, prompt: [0], tokens, finished: true, reward: 0, success: false, ...extra };
}

describe("rollout masks", () => {
  it("counts tokens up to and including the first eos", () => {
    assert.deepEqual(
      rolloutMask(rollout([3, 4, EOS, 5, 5]), { eosId: EOS, maskTruncatedCompletions: false }),
      [1, 1, 1, 0, 0],
    );
  });

  it("drops a truncated completion only when asked", () => {
    const r = rollout([3, 4, 5], { finished: false });
    assert.deepEqual(rolloutMask(r, { eosId: EOS, maskTruncatedCompletions: true }), [0, 0, 0]);
    assert.deepEqual(rolloutMask(r, { eosId: EOS, maskTruncatedCompletions: false }), [1, 1, 1]);
  });

  it("never trains tool-output tokens", () => {
    const r = rollout([3, 4, 5, 2, EOS], { toolMask: [1, 0, 0, 1, 1] });
    assert.deepEqual(rolloutMask(r, { eosId: EOS, maskTruncatedCompletions: false }), [1, 0, 0, 1, 1]);
    assert.throws(
      () => rolloutMask(rollout([3, 4], { toolMask: [1] }), { eosId: EOS, maskTruncatedCompletions: false }),
      /toolMask/,
    );
  });

  it("pads a batch and reports length statistics", () => {
    const rs = [rollout([3, EOS]), rollout([3, 4, 5, 2], { finished: false })];
    const b = buildBatch(rs, [1, -1], { eosId: EOS, maskTruncatedCompletions: true, padId: EOS });
    assert.deepEqual(b.ids, [
      [0, 3, EOS, EOS, EOS],
      [0, 3, 4, 5, 2],
    ]);
    assert.deepEqual(b.mask, [
      [1, 1, 0, 0],
      [0, 0, 0, 0],
    ]);
    const s = completionMetrics(
      rs.map((r) => rolloutTokens(r, { eosId: EOS, maskTruncatedCompletions: true })),
    );
    assert.equal(s["completions/mean_length"], 3);
    assert.equal(s["completions/clipped_ratio"], 0.5);
    // 2 of the 6 completion tokens carry loss (the truncated row is masked out); padding is no token.
    assert.equal(s.trainable_tokens, 2);
    assert.equal(s.completion_tokens, 6);
    assert.equal(s.trainable_tokens_ratio, 2 / 6);
  });

  it("batches prompts of different lengths: right padding, mask 0 inside a longer prompt", () => {
    const rs = [
      rollout([3, EOS], { prompt: [0] }),
      rollout([4, 5], { prompt: [0, 2, 2], toolMask: [1, 0] }),
      rollout([5, 5, EOS], { prompt: [0, 2] }),
    ];
    const b = buildBatch(rs, [1, -1, 0.5], { eosId: EOS, maskTruncatedCompletions: false, padId: 9 });
    assert.equal(b.promptLength, 1);
    assert.deepEqual(b.ids, [
      [0, 3, EOS, 9, 9],
      [0, 2, 2, 4, 5],
      [0, 2, 5, 5, EOS],
    ]);
    // Mask column j scores ids[promptLength + j]: only each row's own completion is trained.
    assert.deepEqual(b.mask, [
      [1, 1, 0, 0],
      [0, 0, 1, 0],
      [0, 1, 1, 1],
    ]);
    assert.deepEqual(b.advantages, [1, -1, 0.5]);
    // With equal prompts the layout is the one-prompt-length layout.
    const same = buildBatch([rollout([3]), rollout([3, 4])], [0, 0], {
      eosId: EOS,
      maskTruncatedCompletions: false,
      padId: 9,
    });
    assert.deepEqual(same.ids, [
      [0, 3, 9],
      [0, 3, 4],
    ]);
    assert.equal(same.promptLength, 1);
    assert.throws(
      () =>
        buildBatch([rollout([3], { prompt: [] })], [0], {
          eosId: EOS,
          maskTruncatedCompletions: false,
          padId: 0,
        }),
      /empty prompt/,
    );
  });

  it("gives a row the same logprobs whether its batch-mates have longer prompts or not", () => {
    const model = tinyGpt(4);
    const rs = [rollout([3, 4], { prompt: [0] }), rollout([2, 5, 3], { prompt: [0, 2, 4] })];
    const b = buildBatch(rs, [0, 0], { eosId: EOS, maskTruncatedCompletions: false, padId: EOS });
    const alone = buildBatch([rs[0]!], [0], { eosId: EOS, maskTruncatedCompletions: false, padId: EOS });
    const lp = (ids: number[][]) =>
      tf.tidy(() =>
        Array.from(
          model.tokenLogprobs(tf.tensor2d(ids, [ids.length, ids[0]!.length], "int32")).logprobs.dataSync(),
        ),
      );
    const T = b.ids[0]!.length - 1;
    const together = lp(b.ids).slice(0, 2);
    const single = lp(alone.ids).slice(0, 2);
    assert.equal(together.length, 2);
    assert.ok(T > 2);
    for (const [i, v] of together.entries())
      assert.ok(Math.abs(v - single[i]!) < 1e-5, `position ${i}: ${v} vs ${single[i]}`);
    model.dispose();
  });
});

describe("curriculum", () => {
  it("raises the phase once the windowed success rate passes the threshold, and stops at the last", () => {
    const c = new Curriculum({ phases: 3, threshold: 0.5, window: 2 });
    assert.equal(c.update(0.9), false); // window not full yet
    assert.equal(c.update(0.0), false); // mean 0.45
    assert.equal(c.update(0.6), false); // mean 0.3
    assert.equal(c.update(0.6), true); // mean 0.6
    assert.equal(c.phase, 2);
    assert.equal(c.update(1), false); // window restarted
    assert.equal(c.update(1), true);
    assert.equal(c.phase, 3);
    assert.equal(c.update(1), false);
    assert.equal(c.update(1), false);
    assert.equal(c.phase, 3);
    const d = new Curriculum({ phases: 3, threshold: 0.5, window: 2 });
    d.setState(c.getState());
    assert.equal(d.phase, 3);
    assert.throws(() => d.setState({ phase: 4, recent: [] }), /phase 4/);
  });
});

describe("prioritised replay", () => {
  const group = (a: number): ReplayGroup => ({
    prompt: [0],
    completions: [{ tokens: [1], finished: true }],
    rewards: [a],
    advantages: [a, -a],
    successes: [false],
  });

  it("skips groups without signal and evicts the lowest priority", () => {
    const b = new ReplayBuffer(2);
    assert.equal(b.add(group(0)), false);
    b.add(group(1));
    b.add(group(3));
    b.add(group(2));
    assert.deepEqual(
      b.getState().map((g) => g.rewards[0]),
      [3, 2],
    );
  });

  it("samples in proportion to |advantage| with a seeded generator", () => {
    const b = new ReplayBuffer(10);
    b.add(group(1));
    b.add(group(3));
    const rng = new Rng(5);
    let high = 0;
    for (let i = 0; i < 4000; i++) if (b.sample(rng, 1)[0]!.rewards[0] === 3) high++;
    assert.ok(Math.abs(high / 4000 - 0.75) < 0.03, `share of the priority-3 group: ${high / 4000}`);
    const again = b.sample(new Rng(9), 2).map((g) => g.rewards[0]);
    assert.deepEqual(
      b.sample(new Rng(9), 2).map((g) => g.rewards[0]),
      again,
    );
    assert.equal(new Set(again).size, 2);
  });
});

describe("supervised warm start", () => {
  it("lowers the cross-entropy on the demonstrations without leaking tensors", () => {
    const model = tinyGpt(11);
    const rng = new Rng(2);
    const demos = toyTask().demonstrations!(rng, 64);
    // One step first: the model caches a causal mask per sequence length it has seen.
    sftTrain(model, demos, { steps: 1, batchSize: 16, learningRate: 1e-2, eosId: EOS, rng });
    const before = tf.memory().numTensors;
    const losses = sftTrain(model, demos, { steps: 30, batchSize: 16, learningRate: 1e-2, eosId: EOS, rng });
    assert.equal(tf.memory().numTensors, before);
    assert.ok(losses.at(-1)! < losses[0]! - 0.3, `loss ${losses[0]} → ${losses.at(-1)}`);
    model.dispose();
  });
});

describe("GRPO update", () => {
  it("clips gradients by their global norm", () => {
    const out = clipByGlobalNorm({ a: tf.tensor1d([3]), b: tf.tensor1d([0, 4]) }, 1);
    assert.ok(Math.abs(out.norm - 5) < 1e-6);
    assert.ok(Math.abs(out.grads.a!.dataSync()[0]! - 0.6) < 1e-5);
    assert.ok(Math.abs(out.grads.b!.dataSync()[1]! - 0.8) < 1e-5);
    tf.dispose(Object.values(out.grads));
    const under = clipByGlobalNorm({ a: tf.tensor1d([0.3]) }, 1);
    assert.equal(under.grads.a!.dataSync()[0], Math.fround(0.3));
    tf.dispose(Object.values(under.grads));
  });

  it("leaves the weights untouched when no completion carries signal (A = 0, no KL, no entropy)", () => {
    const model = tinyGpt(12);
    const before = Object.fromEntries(
      Object.entries(model.namedWeights()).map(([k, v]) => [k, Array.from(v.dataSync())]),
    );
    const opt = tf.train.adam(0.1);
    const m = grpoUpdate(
      model,
      undefined,
      opt,
      { ids: [[0, 2, 3, EOS]], promptLength: 1, mask: [[1, 1, 1]], advantages: [0] },
      { loss: resolveLossConfig({ beta: 0, entropyCoef: 0 }), iterations: 2, maxGradNorm: 1 },
    );
    assert.equal(m.gradNorm, 0);
    const after = Object.fromEntries(
      Object.entries(model.namedWeights()).map(([k, v]) => [k, Array.from(v.dataSync())]),
    );
    assert.deepEqual(after, before);
    opt.dispose();
    model.dispose();
  });

  it("rejects a mask that does not match the completion", () => {
    const model = tinyGpt(13);
    const opt = tf.train.adam(0.1);
    assert.throws(
      () =>
        grpoUpdate(
          model,
          undefined,
          opt,
          { ids: [[0, 2, 3]], promptLength: 1, mask: [[1]], advantages: [1] },
          { loss: resolveLossConfig(), iterations: 1, maxGradNorm: 1 },
        ),
      /mask row 0 has length 1, expected 2/,
    );
    opt.dispose();
    model.dispose();
  });
});
