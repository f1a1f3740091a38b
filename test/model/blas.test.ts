import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { blasActive, blasStatus, setBlasKernels } from "../../src/model/blas.ts";
import { GPT, type GPTConfig } from "../../src/model/gpt.ts";
import { sample } from "../../src/model/sampler.ts";
import { grpoUpdate } from "../../src/rl/grpo-step.ts";
import { resolveLossConfig } from "../../src/rl/loss.ts";
import { randomIds, randomizeWeights } from "./helpers.ts";

// Heads of width 4 and uneven sizes so a stride or transpose mix-up cannot cancel out.
const CFG: GPTConfig = { vocabSize: 11, contextLength: 16, dModel: 12, nLayers: 2, nHeads: 3, dFF: 20 };

let available = false;
before(async () => {
  assert.equal(await initBackend("wasm"), "wasm");
  available = setBlasKernels(true);
});

/** Runs f with the BLAS kernels off, then on; returns both results. */
function bothWays<T>(f: () => T): { plain: T; blas: T } {
  setBlasKernels(false);
  const plain = f();
  setBlasKernels(true);
  assert.ok(blasActive());
  const blas = f();
  return { plain, blas };
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    assert.ok(d <= tol * (1 + Math.abs(a[i]!)), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

describe("BLAS kernels (native addon)", () => {
  it("report whether they are active and why not", (t) => {
    const s = blasStatus();
    if (!available) {
      assert.equal(s.active, false);
      t.skip(`addon unavailable: ${s.reason ?? "not built"}`);
      return;
    }
    assert.equal(s.active, true);
    assert.ok(s.library && s.library.length > 0);
  });

  it("match the wasm kernels on every transpose, batch, broadcast and bias case", (t) => {
    if (!available) return t.skip("addon unavailable");
    const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);
    const cases: [string, () => tf.Tensor][] = [];
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const a = ta ? r([2, 3, 5, 4], 1) : r([2, 3, 4, 5], 1);
        const b = tb ? r([2, 3, 6, 5], 2) : r([2, 3, 5, 6], 2);
        cases.push([`batched ta=${ta} tb=${tb}`, () => tf.matMul(a, b, ta, tb)]);
        const a2 = ta ? r([7, 70], 3) : r([70, 7], 3);
        const b2 = tb ? r([5, 7], 4) : r([7, 5], 4);
        cases.push([`2-D ta=${ta} tb=${tb}`, () => tf.matMul(a2, b2, ta, tb)]);
      }
    }
    const left = r([1, 4, 5], 5);
    const right = r([3, 5, 2], 6);
    cases.push(["broadcast left", () => tf.matMul(left, right)]);
    cases.push(["broadcast right", () => tf.matMul(r([3, 2, 4], 7), left)]);
    // Over 64 rows, so the untransposed 2-D products reach BLAS rather than staying on XNNPACK.
    const bias = r([6], 8);
    cases.push(["fused bias", () => tf.fused.matMul({ a: r([70, 5], 9), b: r([5, 6], 10), bias })]);
    cases.push([
      "fused relu (fallback)",
      () => tf.fused.matMul({ a: r([70, 5], 9), b: r([5, 6], 10), bias, activation: "relu" }),
    ]);
    for (const [name, f] of cases) {
      const { plain, blas } = bothWays(() => tf.tidy(() => f().dataSync()));
      assertClose(plain, blas, name);
    }
  });

  it("give the same logits, gradients and sampled tokens for the GPT", (t) => {
    if (!available) return t.skip("addon unavailable");
    const model = new GPT(CFG, new Rng(1));
    randomizeWeights(model, 2, 0.4);
    const ids = tf.tensor2d(randomIds(new Rng(3), 3, 9, CFG.vocabSize), undefined, "int32");
    const vars = model.trainableVariables();
    const run = () =>
      tf.tidy(() => {
        const logits = model.forward(ids).dataSync();
        const { grads } = tf.variableGrads(
          () => tf.neg(tf.sum(model.tokenLogprobs(ids, { withEntropy: true }).logprobs)) as tf.Scalar,
          vars,
        );
        return { logits, grads: vars.map((v) => grads[v.name]!.dataSync()) };
      });
    const { plain, blas } = bothWays(run);
    assertClose(plain.logits, blas.logits, "logits");
    plain.grads.forEach((g, i) => {
      assertClose(g, blas.grads[i]!, `gradient of ${vars[i]!.name}`, 1e-3);
    });
    const draws = bothWays(() => sample(model, [[1], [2, 3]], { maxNewTokens: 6, rng: new Rng(4) }));
    assert.deepEqual(draws.blas.tokens, draws.plain.tokens);
    assertClose(draws.plain.logprobs.flat(), draws.blas.logprobs.flat(), "sampled logprobs");
    ids.dispose();
    model.dispose();
  });

  it("give the same weights after full GRPO steps", (t) => {
    if (!available) return t.skip("addon unavailable");
    const rng = new Rng(5);
    const ids = randomIds(rng, 4, 10, CFG.vocabSize);
    const batch = {
      ids,
      promptLength: 3,
      mask: ids.map((_, r) => Array.from({ length: 7 }, (_, j) => (j < 7 - r ? 1 : 0))),
      advantages: [1, -0.5, 0.25, -0.75],
    };
    const cfg = { loss: resolveLossConfig({ beta: 0.05, entropyCoef: 0.01 }), iterations: 2, maxGradNorm: 1 };
    const step = () => {
      const policy = new GPT(CFG, new Rng(1));
      randomizeWeights(policy, 6, 0.4);
      const reference = policy.clone();
      // SGD, not Adam: Adam's m/√v turns a rounding-level gradient into a full-size step.
      const opt = tf.train.sgd(0.1);
      const metrics = [
        grpoUpdate(policy, reference, opt, batch, cfg),
        grpoUpdate(policy, reference, opt, batch, cfg),
      ];
      const weights = Object.values(policy.namedWeights()).map((w) => w.dataSync());
      opt.dispose();
      reference.dispose();
      policy.dispose();
      return { metrics, weights };
    };
    const { plain, blas } = bothWays(step);
    plain.metrics.forEach((m, i) => {
      const b = blas.metrics[i]!;
      for (const k of Object.keys(m) as (keyof typeof m)[])
        assertClose([m[k]], [b[k]], `step ${i} ${k}`, 1e-3);
    });
    plain.weights.forEach((w, i) => {
      assertClose(w, blas.weights[i]!, `weight ${i}`, 1e-4);
    });
  });
});
