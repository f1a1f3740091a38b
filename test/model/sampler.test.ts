import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { GPT } from "../../src/model/gpt.ts";
import { chooseToken, sample, type TokenConstraint } from "../../src/model/sampler.ts";
import { randomizeWeights, TINY } from "./helpers.ts";

let model: GPT;
before(async () => {
  // The default backend: sampling uses gather, which must work there.
  await initBackend("wasm");
  model = new GPT(TINY, new Rng(1));
  randomizeWeights(model, 2, 0.6);
});
after(() => model.dispose());

function fullForwardLogprobs(m: GPT, seq: number[]): number[] {
  return tf.tidy(() =>
    Array.from(m.tokenLogprobs(tf.tensor2d([seq], undefined, "int32")).logprobs.dataSync()),
  );
}

/** Tokens 1–3 are "A", 4–6 are "B"; 0 is eos. Rows must alternate A, B, A, … and stop after 5 tokens or at eos (only allowed after a B). */
const alternating: TokenConstraint<{ n: number; last: "A" | "B" | null; done: boolean }> = {
  initial: () => ({ n: 0, last: null, done: false }),
  allowed(s) {
    const m = new Uint8Array(7);
    const wantA = s.last !== "A";
    for (let t = 1; t <= 6; t++) m[t] = t <= 3 === wantA ? 1 : 0;
    if (s.last === "B") m[0] = 1;
    return m;
  },
  advance: (s, t) => ({
    n: s.n + 1,
    last: t === 0 ? s.last : t <= 3 ? "A" : "B",
    done: t === 0 || s.n + 1 >= 5,
  }),
  isDone: (s) => s.done,
};

describe("chooseToken", () => {
  const logits = Float32Array.from([0, Math.log(2), Math.log(3), Math.log(4)]); // p = 1,2,3,4 / 10
  it("returns the untruncated masked log-probability", () => {
    const r = chooseToken(logits, null, 1, 1, undefined, 0.99);
    assert.equal(r.token, 3);
    assert.ok(Math.abs(r.logprob - Math.log(0.4)) < 1e-6);
    const masked = chooseToken(logits, Uint8Array.from([1, 1, 0, 0]), 1, undefined, undefined, 0.5);
    // Among tokens 0 and 1 (p = 1/3, 2/3), u = 0.5 falls in token 1.
    assert.equal(masked.token, 1);
    assert.ok(Math.abs(masked.logprob - Math.log(2 / 3)) < 1e-6);
  });
  it("inverts the CDF in id order and honours top-p", () => {
    assert.equal(chooseToken(logits, null, 1, undefined, undefined, 0.05).token, 0);
    assert.equal(chooseToken(logits, null, 1, undefined, undefined, 0.25).token, 1);
    // top-p 0.7 keeps {3, 2} (0.4 + 0.3); u = 0.6 → 0.6·0.7 = 0.42 > 0.4 → token 2.
    assert.equal(chooseToken(logits, null, 1, undefined, 0.7, 0.6).token, 2);
    assert.equal(chooseToken(logits, null, 1, undefined, 0.7, 0.5).token, 3);
  });
  it("applies temperature and greedy selection", () => {
    const r = chooseToken(logits, null, 0.5, undefined, undefined, 0);
    // p ∝ (1,4,9,16)/30 at T = 0.5; u = 0 gives token 0.
    assert.equal(r.token, 0);
    assert.ok(Math.abs(r.logprob - Math.log(1 / 30)) < 1e-6);
    const g = chooseToken(logits, Uint8Array.from([1, 1, 1, 0]), 0, undefined, undefined, 0.9);
    assert.equal(g.token, 2);
    assert.ok(Math.abs(g.logprob - Math.log(3 / 6)) < 1e-6);
  });
  it("throws when nothing is allowed", () => {
    assert.throws(
      () => chooseToken(logits, new Uint8Array(4), 1, undefined, undefined, 0.5),
      /allows no token/,
    );
  });
});

describe("sample", () => {
  it("KV-cache logprobs equal a full forward pass, with prompts of different lengths", () => {
    const prompts = [[3], [1, 2, 3, 4], [6, 5], [2, 2, 2]];
    const r = sample(model, prompts, { maxNewTokens: 6, rng: new Rng(7) });
    prompts.forEach((p, i) => {
      assert.equal(r.tokens[i]!.length, 6);
      const full = fullForwardLogprobs(model, [...p, ...r.tokens[i]!]).slice(p.length - 1);
      for (let t = 0; t < 6; t++) {
        assert.ok(
          Math.abs(full[t]! - r.logprobs[i]![t]!) < 1e-4,
          `row ${i} step ${t}: ${full[t]} vs ${r.logprobs[i]![t]}`,
        );
      }
    });
    assert.deepEqual(r.finished, [false, false, false, false]);
  });

  it("KV-cache logprobs equal a full forward pass for a LoRA-adapted model", () => {
    const m = model.clone();
    m.enableLoRA({ r: 2, alpha: 4, targetModules: ["k_proj", "v_proj", "up_proj"] }, new Rng(21));
    randomizeWeights(m, 22, 0.5);
    const prompts = [[5, 1], [2]];
    const r = sample(m, prompts, { maxNewTokens: 5, rng: new Rng(23) });
    prompts.forEach((p, i) => {
      const full = fullForwardLogprobs(m, [...p, ...r.tokens[i]!]).slice(p.length - 1);
      for (let t = 0; t < 5; t++)
        assert.ok(Math.abs(full[t]! - r.logprobs[i]![t]!) < 1e-4, `row ${i} step ${t}`);
    });
    m.dispose();
  });

  it("the same seed gives the same samples; another seed differs", () => {
    const opts = { maxNewTokens: 8, topK: 5, topP: 0.95, temperature: 1.3 };
    const a = sample(model, [[1], [2], [3]], { ...opts, rng: new Rng(11) });
    const b = sample(model, [[1], [2], [3]], { ...opts, rng: new Rng(11) });
    const c = sample(model, [[1], [2], [3]], { ...opts, rng: new Rng(12) });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.tokens, c.tokens);
  });

  it("a constraint is never violated over thousands of sampled tokens", () => {
    const rng = new Rng(13);
    let tokens = 0;
    let eos = 0;
    for (let round = 0; round < 20; round++) {
      const prompts = Array.from({ length: 32 }, () => [rng.int(7)]);
      const r = sample(model, prompts, {
        maxNewTokens: 8,
        temperature: 2,
        constraint: alternating,
        eosId: 0,
        rng,
      });
      r.tokens.forEach((seq, i) => {
        let s = alternating.initial();
        for (const t of seq) {
          assert.equal(
            alternating.allowed(s)[t],
            1,
            `row ${i}: token ${t} not allowed in ${JSON.stringify(s)}`,
          );
          s = alternating.advance(s, t);
          tokens++;
        }
        assert.equal(r.finished[i], true);
        assert.ok(seq.length <= 5);
        if (seq.at(-1) === 0) eos++;
      });
    }
    assert.ok(tokens > 2000, `${tokens} tokens`);
    assert.ok(eos > 0, "eos was reachable");
  });

  it("stops at eos, respects the context length and validates inputs", () => {
    const r = sample(model, [[1]], { maxNewTokens: 50, rng: new Rng(3) });
    assert.equal(r.tokens[0]!.length, TINY.contextLength - 1);
    assert.equal(r.finished[0], false);
    const e = sample(model, [[1], [2]], { maxNewTokens: 40, eosId: 4, temperature: 3, rng: new Rng(5) });
    e.tokens.forEach((seq, i) => {
      if (e.finished[i]) assert.equal(seq.at(-1), 4);
      assert.equal(seq.slice(0, -1).includes(4), false);
    });
    assert.throws(() => sample(model, [[]], { maxNewTokens: 2, rng: new Rng(1) }), /prompt 0 is empty/);
    assert.throws(() => sample(model, [[9]], { maxNewTokens: 2, rng: new Rng(1) }), /token 0 = 9 is outside/);
    assert.throws(
      () => sample(model, [Array(13).fill(1)], { maxNewTokens: 2, rng: new Rng(1) }),
      /exceeds contextLength/,
    );
  });

  it("leaves no tensors behind", () => {
    const start = tf.memory().numTensors;
    sample(model, [[1, 2], [3]], { maxNewTokens: 5, rng: new Rng(1) });
    sample(model, [[1, 2], [3]], { maxNewTokens: 5, constraint: alternating, rng: new Rng(1) });
    assert.equal(tf.memory().numTensors, start);
  });
});
