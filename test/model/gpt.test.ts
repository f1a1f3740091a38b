import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { GPT } from "../../src/model/gpt.ts";
import { maxAbsDiff, randomIds, randomizeWeights, TINY } from "./helpers.ts";

// Finite differences need float32 precision that the cpu backend gives deterministically.
before(async () => {
  assert.equal(await initBackend("cpu"), "cpu");
});

function lossOf(model: GPT, ids: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  const { logprobs, entropy } = model.tokenLogprobs(ids, { withEntropy: true });
  return tf.add(tf.sum(tf.mul(logprobs, weights)), tf.mul(0.3, tf.sum(entropy!))) as tf.Scalar;
}

function checkGradients(model: GPT, vars: tf.Variable[], seed: number): number {
  const rng = new Rng(seed);
  const ids = tf.tensor2d(randomIds(rng, 2, 5, TINY.vocabSize), undefined, "int32");
  const weights = tf.tensor2d(
    Array.from({ length: 2 }, () => Array.from({ length: 4 }, () => rng.normal())),
    [2, 4],
  );
  const { grads } = tf.variableGrads(() => lossOf(model, ids, weights), vars);
  const evalLoss = () => tf.tidy(() => lossOf(model, ids, weights).dataSync()[0]!);
  const eps = 4e-3;
  let checked = 0;
  for (const v of vars) {
    const g = grads[v.name]!.dataSync();
    const base = v.dataSync().slice();
    for (let n = 0; n < 3; n++) {
      const i = rng.int(v.size);
      const at = (delta: number) => {
        const p = base.slice();
        p[i] = p[i]! + delta;
        v.assign(tf.tensor(p, v.shape));
        return evalLoss();
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(base, v.shape));
      const tol = 3e-3 + 0.02 * Math.abs(fd);
      assert.ok(Math.abs(fd - g[i]!) <= tol, `${v.name}[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
      checked++;
    }
  }
  tf.dispose([ids, weights, ...Object.values(grads)]);
  return checked;
}

describe("GPT", () => {
  it("forward has shape [B, T, V] and is causal", () => {
    const model = new GPT(TINY, new Rng(1));
    randomizeWeights(model, 2);
    const a = [[1, 2, 3, 4, 5]];
    const b = [[1, 2, 3, 6, 0]];
    const [la, lb] = tf.tidy(() => [
      model.forward(tf.tensor2d(a, undefined, "int32")).arraySync(),
      model.forward(tf.tensor2d(b, undefined, "int32")).arraySync(),
    ]) as number[][][][];
    assert.equal(la![0]!.length, 5);
    assert.equal(la![0]![0]!.length, TINY.vocabSize);
    // Positions 0..2 see identical prefixes; position 3 differs.
    for (let t = 0; t < 3; t++) assert.ok(maxAbsDiff(la![0]![t]!, lb![0]![t]!) < 1e-5, `position ${t}`);
    assert.ok(maxAbsDiff(la![0]![3]!, lb![0]![3]!) > 1e-3);
    model.dispose();
  });

  it("tokenLogprobs picks the next token's log-softmax and entropy matches its definition", () => {
    const model = new GPT(TINY, new Rng(3));
    randomizeWeights(model, 4);
    const ids = [
      [0, 3, 5, 1],
      [6, 6, 2, 4],
    ];
    const { lp, ent, logits } = tf.tidy(() => {
      const t = tf.tensor2d(ids, undefined, "int32");
      const r = model.tokenLogprobs(t, { withEntropy: true });
      return {
        lp: r.logprobs.arraySync(),
        ent: r.entropy!.arraySync(),
        logits: model.forward(t).arraySync(),
      };
    });
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 3; t++) {
        const row = logits[b]![t]!;
        const m = Math.max(...row);
        const z = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m;
        const logp = row.map((x) => x - z);
        assert.ok(Math.abs(lp[b]![t]! - logp[ids[b]![t + 1]!]!) < 1e-5);
        const h = -logp.reduce((s, l) => s + Math.exp(l) * l, 0);
        assert.ok(Math.abs(ent[b]![t]! - h) < 1e-5);
      }
    }
    model.dispose();
  });

  it("rejects sequences longer than the context and configs with bad fields", () => {
    const model = new GPT(TINY, new Rng(1));
    assert.throws(() => model.forward(tf.zeros([1, 13], "int32") as tf.Tensor2D), /exceeds contextLength 12/);
    assert.throws(() => new GPT({ ...TINY, nHeads: 3 }, new Rng(1)), /divisible by nHeads/);
    assert.throws(
      () => new GPT({ ...TINY, vocabSize: 0 }, new Rng(1)),
      /"vocabSize" must be a positive integer/,
    );
    model.dispose();
  });

  it("same seed gives the same initial weights; different seeds differ", () => {
    const a = new GPT(TINY, new Rng(9));
    const b = new GPT(TINY, new Rng(9));
    const c = new GPT(TINY, new Rng(10));
    const w = (m: GPT) => m.namedWeights()["transformer.h.1.attn.q_proj.weight"]!.dataSync();
    assert.deepEqual(w(a), w(b));
    assert.notDeepEqual(w(a), w(c));
    for (const m of [a, b, c]) m.dispose();
  });

  it("gradients of a loss on tokenLogprobs and entropy match central finite differences", () => {
    const model = new GPT(TINY, new Rng(5));
    randomizeWeights(model, 6, 0.4);
    const n = checkGradients(model, model.trainableVariables(), 7);
    assert.equal(n, 3 * model.trainableVariables().length);
    model.dispose();
  });

  it("LoRA gradients match finite differences; only A and B are trainable", () => {
    const model = new GPT(TINY, new Rng(5));
    randomizeWeights(model, 6, 0.4);
    model.enableLoRA({ r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "down_proj"] }, new Rng(8));
    const vars = model.trainableVariables();
    assert.equal(vars.length, 2 * 3 * TINY.nLayers);
    // B starts at zero, which would make A's gradient vanish; give B values first.
    tf.tidy(() => {
      const rng = new Rng(11);
      for (const v of vars)
        v.assign(
          tf.tensor(
            Array.from({ length: v.size }, () => rng.normal() * 0.3),
            v.shape,
          ),
        );
    });
    checkGradients(model, vars, 12);
    model.dispose();
  });

  it("enabling LoRA leaves outputs unchanged; training it leaves base weights untouched", () => {
    const model = new GPT(TINY, new Rng(21));
    randomizeWeights(model, 22);
    const ids = tf.tensor2d(randomIds(new Rng(23), 3, 6, TINY.vocabSize), undefined, "int32");
    const before = tf.tidy(() => model.forward(ids).dataSync());
    const baseBefore = Object.fromEntries(
      Object.entries(model.namedWeights()).map(([k, t]) => [k, t.dataSync().slice()]),
    );
    model.enableLoRA(
      { r: 4, alpha: 8, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"] },
      new Rng(24),
    );
    assert.ok(
      maxAbsDiff(
        tf.tidy(() => model.forward(ids).dataSync()),
        before,
      ) < 1e-6,
    );
    const opt = tf.train.adam(0.05);
    for (let s = 0; s < 3; s++) {
      opt.minimize(() => tf.neg(tf.mean(model.tokenLogprobs(ids).logprobs)) as tf.Scalar);
    }
    const after = tf.tidy(() => model.forward(ids).dataSync());
    assert.ok(maxAbsDiff(after, before) > 1e-3, "adapters changed the outputs");
    for (const [k, t] of Object.entries(model.namedWeights())) {
      if (k.includes("lora_")) continue;
      assert.deepEqual(t.dataSync(), baseBefore[k], `${k} changed`);
    }
    // Merging folds the adapters in: same outputs, base trainable again.
    model.mergeLoRA();
    assert.ok(
      maxAbsDiff(
        tf.tidy(() => model.forward(ids).dataSync()),
        after,
      ) < 1e-4,
    );
    assert.equal(model.trainableVariables().length, Object.keys(baseBefore).length);
    assert.ok(model.trainableVariables().every((v) => v.trainable));
    opt.dispose();
    ids.dispose();
    model.dispose();
  });

  it("clone is a deep copy; dispose releases every tensor", () => {
    const start = tf.memory().numTensors;
    const model = new GPT(TINY, new Rng(31));
    model.enableLoRA({ r: 2, alpha: 2, targetModules: ["o_proj"] }, new Rng(32));
    const copy = model.clone();
    const name = "transformer.h.0.attn.o_proj.lora_A.weight";
    assert.deepEqual(copy.namedWeights()[name]!.dataSync(), model.namedWeights()[name]!.dataSync());
    tf.tidy(() =>
      (model.namedWeights()[name] as tf.Variable).assign(tf.zerosLike(model.namedWeights()[name]!)),
    );
    assert.notDeepEqual(copy.namedWeights()[name]!.dataSync(), model.namedWeights()[name]!.dataSync());
    assert.deepEqual(copy.loraConfig, model.loraConfig);
    tf.tidy(() => {
      model.forward(tf.zeros([1, 3], "int32") as tf.Tensor2D);
    });
    model.dispose();
    copy.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  it("loadNamedWeights names the offending weight", () => {
    const model = new GPT(TINY, new Rng(1));
    const w = { "transformer.wte.weight": tf.zeros([7, 9]) };
    assert.throws(
      () => model.loadNamedWeights(w, { partial: true }),
      /shape mismatch for "transformer.wte.weight": expected \[7, 8\], got \[7, 9\]/,
    );
    assert.throws(
      () => model.loadNamedWeights({ "transformer.nope": tf.zeros([1]) }),
      /unknown weight "transformer.nope"/,
    );
    assert.throws(() => model.loadNamedWeights({}), /missing weights: transformer.wte.weight/);
    model.dispose();
  });

  it("tensor count does not grow across Adam train steps", () => {
    const model = new GPT(TINY, new Rng(41));
    const opt = tf.train.adam(1e-3);
    const ids = tf.tensor2d(randomIds(new Rng(42), 4, 8, TINY.vocabSize), undefined, "int32");
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => tf.neg(tf.mean(model.tokenLogprobs(ids, { withEntropy: true }).logprobs)) as tf.Scalar,
          model.trainableVariables(),
        );
        opt.applyGradients(grads as Record<string, tf.Variable>);
        return value.dataSync()[0]!;
      });
    step();
    step();
    const count = tf.memory().numTensors;
    const first = step();
    for (let i = 0; i < 4; i++) step();
    const last = step();
    assert.equal(tf.memory().numTensors, count);
    assert.ok(last < first, `loss decreases (${first} → ${last})`);
    opt.dispose();
    ids.dispose();
    model.dispose();
  });
});
