import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../src/model/backend.ts";
import "../../src/model/gradients.ts";
import { colSum, embed, gelu, layerNorm, linear, matMul } from "../../src/model/ops.ts";
import { maxAbsDiff } from "./helpers.ts";

before(async () => {
  await initBackend("cpu");
});

/** Gradient of sum(f(inputs) · w) for a fixed random w, so every output element matters. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): Float32Array[] {
  return tf.tidy(() => {
    const probe = f(...inputs);
    const w = tf.randomNormal(probe.shape, 0, 1, "float32", 7);
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), w)))(inputs);
    return g.map((t) => t.dataSync() as Float32Array);
  });
}

describe("ops", () => {
  it("gelu equals 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))", () => {
    const xs = [-3, -1, -0.5, 0, 0.3, 1, 2.5];
    const got = tf.tidy(() => gelu(tf.tensor1d(xs)).dataSync());
    xs.forEach((x, i) => {
      const want = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      assert.ok(Math.abs(got[i]! - want) < 1e-6, `x = ${x}: ${got[i]} vs ${want}`);
    });
  });

  it("hand-written gradients equal tfjs autodiff of the plain formulas", () => {
    const x = tf.randomNormal([5, 4], 0, 1, "float32", 1);
    const w = tf.randomNormal([4, 3], 0, 1, "float32", 2);
    const b = tf.randomNormal([3], 0, 1, "float32", 3);
    const g = tf.randomNormal([4], 1, 0.3, "float32", 4);
    const beta = tf.randomNormal([4], 0, 1, "float32", 5);
    const cases: [string, (...t: tf.Tensor[]) => tf.Tensor, (...t: tf.Tensor[]) => tf.Tensor, tf.Tensor[]][] =
      [
        [
          "linear",
          (a, c, d) => linear(a as tf.Tensor2D, c as tf.Tensor2D, d as tf.Tensor1D),
          (a, c, d) => tf.add(tf.matMul(a as tf.Tensor2D, c as tf.Tensor2D), d!),
          [x, w, b],
        ],
        ["matMul", (a, c) => matMul(a!, c!), (a, c) => tf.matMul(a as tf.Tensor2D, c as tf.Tensor2D), [x, w]],
        [
          "layerNorm",
          (a, c, d) => layerNorm(a as tf.Tensor2D, c as tf.Tensor1D, d as tf.Tensor1D, 1e-5),
          (a, c, d) => {
            const m = tf.moments(a!, -1, true);
            return tf.add(tf.mul(tf.div(tf.sub(a!, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), c!), d!);
          },
          [x, g, beta],
        ],
        [
          "gelu",
          (a) => gelu(a!),
          (a) =>
            tf.mul(
              tf.mul(0.5, a!),
              tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(a!, tf.mul(0.044715, tf.pow(a!, 3)))))),
            ),
          [x],
        ],
      ];
    for (const [name, mine, ref, inputs] of cases) {
      const a = gradsOf(mine, inputs);
      const r = gradsOf(ref, inputs);
      a.forEach((ga, i) => {
        assert.ok(maxAbsDiff(ga, r[i]!) < 1e-4, `${name} input ${i}`);
      });
      assert.ok(
        maxAbsDiff(
          tf.tidy(() => mine(...inputs).dataSync()),
          tf.tidy(() => ref(...inputs).dataSync()),
        ) < 1e-5,
        name,
      );
    }
    // Batched (4-D) matMul.
    const q = tf.randomNormal([2, 3, 4, 5], 0, 1, "float32", 8);
    const k = tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 9);
    const a = gradsOf((s, t) => matMul(s!, t!), [q, k]);
    const r = gradsOf((s, t) => tf.matMul(s as tf.Tensor4D, t as tf.Tensor4D), [q, k]);
    a.forEach((ga, i) => {
      assert.ok(maxAbsDiff(ga, r[i]!) < 1e-4, `batched matMul input ${i}`);
    });
    // Transposed operands: op(a)·op(b) and its gradients against tfjs's own matMul.
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const x = tf.randomNormal(ta ? [2, 3, 5, 4] : [2, 3, 4, 5], 0, 1, "float32", 11);
        const y = tf.randomNormal(tb ? [2, 3, 6, 5] : [2, 3, 5, 6], 0, 1, "float32", 12);
        const mine = gradsOf((s, t) => matMul(s!, t!, ta, tb), [x, y]);
        const ref = gradsOf((s, t) => tf.matMul(s as tf.Tensor4D, t as tf.Tensor4D, ta, tb), [x, y]);
        mine.forEach((g, i) => {
          assert.ok(maxAbsDiff(g, ref[i]!) < 1e-4, `matMul transposeA=${ta} transposeB=${tb} input ${i}`);
        });
      }
    }
    // Embedding: only the table gets a gradient, equal to oneHotᵀ·dy.
    const oh = tf.cast(tf.oneHot(tf.tensor1d([2, 0, 2], "int32"), 3), "float32") as tf.Tensor2D;
    const table = tf.randomNormal([3, 4], 0, 1, "float32", 10);
    const ge = gradsOf((t) => embed(oh, t as tf.Tensor2D), [table]);
    const gr = gradsOf((t) => tf.matMul(oh, t as tf.Tensor2D), [table]);
    assert.ok(maxAbsDiff(ge[0]!, gr[0]!) < 1e-5);
  });

  it("colSum sums columns", () => {
    const s = tf.tidy(() =>
      colSum(
        tf.tensor2d([
          [1, 2],
          [3, 4],
          [5, -6],
        ]),
      ).arraySync(),
    );
    assert.deepEqual(s, [9, 0]);
  });
});
