/**
 * The hand-written gradients of the Hugging Face architectures' ops against tfjs autodiff of
 * the plain formulas: RMSNorm, SwiGLU, RoPE, the chunked head with logprobs and entropy, the
 * frozen-weight variants and the embedding scatter-add.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import "../../src/model/gradients.ts";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import {
  embedRows,
  frozenLayerNorm,
  frozenLinear,
  headLogprobs,
  rmsNorm,
  rope,
  rotateHalfMatrix,
  swiglu,
} from "../../src/model/ops.ts";
import { maxAbsDiff } from "./helpers.ts";

before(async () => {
  assert.equal(await initBackend("cpu"), "cpu");
});

function randn(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal() * scale),
    shape,
  );
}

/** value and gradients of sum(f(...xs)·weights) for both implementations agree. */
function same(
  ours: (...x: tf.Tensor[]) => tf.Tensor,
  plain: (...x: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  tol = 1e-4,
): void {
  const rng = new Rng(9);
  const probe = tf.tidy(() => ours(...xs));
  const wts = randn(rng, probe.shape);
  const loss =
    (f: (...x: tf.Tensor[]) => tf.Tensor) =>
    (...x: tf.Tensor[]) =>
      tf.sum(tf.mul(f(...x), wts)) as tf.Scalar;
  const a = tf.valueAndGrads(loss(ours))(xs);
  const b = tf.valueAndGrads(loss(plain))(xs);
  assert.ok(
    Math.abs(a.value.dataSync()[0]! - b.value.dataSync()[0]!) <
      tol * Math.max(1, Math.abs(b.value.dataSync()[0]!)),
  );
  a.grads.forEach((g, i) => {
    const d = maxAbsDiff(g.dataSync(), b.grads[i]!.dataSync());
    assert.ok(d < tol, `gradient ${i}: max |Δ| = ${d}`);
  });
  tf.dispose([probe, wts, a.value, b.value, ...a.grads, ...b.grads]);
}

const rmsPlain = (x: tf.Tensor, g: tf.Tensor) =>
  tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))), g);

describe("hand-written gradients of the Hugging Face ops", () => {
  const rng = new Rng(1);

  it("RMSNorm (trainable and frozen gain)", () => {
    const x = randn(rng, [5, 6]);
    const g = randn(rng, [6]);
    same((a, b) => rmsNorm(a as tf.Tensor2D, b as tf.Tensor1D, 1e-5, false), rmsPlain, [x, g]);
    same(
      (a) => rmsNorm(a as tf.Tensor2D, g as tf.Tensor1D, 1e-5, true),
      (a) => rmsPlain(a, g),
      [x],
    );
  });

  it("SwiGLU", () => {
    same(
      (a, b) => swiglu(a as tf.Tensor2D, b as tf.Tensor2D),
      (a, b) => tf.mul(tf.mul(a, tf.sigmoid(a)), b),
      [randn(rng, [4, 7]), randn(rng, [4, 7])],
    );
  });

  it("RoPE (rotate-half convention)", () => {
    const cosH = tf.cos(randn(rng, [3, 1, 2]));
    const sinH = tf.sin(randn(rng, [3, 1, 2]));
    const plain = (x: tf.Tensor) => {
      const x1 = tf.slice(x, [0, 0, 0], [3, 2, 2]);
      const x2 = tf.slice(x, [0, 0, 2], [3, 2, 2]);
      return tf.concat(
        [tf.sub(tf.mul(x1, cosH), tf.mul(x2, sinH)), tf.add(tf.mul(x2, cosH), tf.mul(x1, sinH))],
        2,
      );
    };
    const cos = tf.concat([cosH, cosH], 2) as tf.Tensor3D;
    const sin = tf.concat([sinH, sinH], 2) as tf.Tensor3D;
    const R = rotateHalfMatrix(4);
    same((x) => rope(x as tf.Tensor3D, cos, sin, R, true), plain, [randn(rng, [3, 2, 4])]);
  });

  it("the head with logprobs and entropies, in blocks of rows, with and without dW", () => {
    const V = 11;
    const targets = tf.tensor1d([3, 0, 10, 5, 5, 1, 7], "int32");
    const plain = (h: tf.Tensor, w: tf.Tensor) => {
      const logp = tf.logSoftmax(tf.matMul(h, w, false, true));
      const lp = tf.sum(tf.mul(logp, tf.cast(tf.oneHot(targets, V), "float32")), -1);
      const ent = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
      return tf.stack([lp, ent]);
    };
    const h = randn(rng, [7, 4]);
    const w = randn(rng, [V, 4], 1.5);
    // 2·V values per block: four blocks of 2, 2, 2 and 1 rows.
    const opts = (trainW: boolean, rows: number) => ({ trainW, entropy: true, chunkValues: rows * V });
    same((a, b) => headLogprobs(a as tf.Tensor2D, b as tf.Tensor2D, targets, opts(true, 2)), plain, [h, w]);
    same(
      (a) => headLogprobs(a as tf.Tensor2D, w as tf.Tensor2D, targets, opts(false, 3)),
      (a) => plain(a, w),
      [h],
    );
    // Without entropies only the logprob row is meaningful (and differentiated).
    const lpOnly = (a: tf.Tensor) =>
      tf.slice(
        headLogprobs(a as tf.Tensor2D, w as tf.Tensor2D, targets, {
          trainW: false,
          entropy: false,
          chunkValues: 2 * V,
        }),
        [0, 0],
        [1, 7],
      );
    same(lpOnly, (a) => tf.slice(plain(a, w), [0, 0], [1, 7]), [h]);
  });

  it("frozen linear and LayerNorm give x's gradient only; embedding rows scatter-add", () => {
    const w = randn(rng, [5, 3]);
    const b = randn(rng, [3]);
    same(
      (x) => frozenLinear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D),
      (x) => tf.add(tf.matMul(x, w), b),
      [randn(rng, [4, 5])],
    );
    const wt = randn(rng, [3, 5]);
    same(
      (x) => frozenLinear(x as tf.Tensor2D, wt as tf.Tensor2D, null, true),
      (x) => tf.matMul(x, wt, false, true),
      [randn(rng, [4, 5])],
    );
    const g = randn(rng, [5]);
    const bias = randn(rng, [5]);
    const ln = (x: tf.Tensor) => {
      const xc = tf.sub(x, tf.mean(x, -1, true));
      return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), 1e-5))), g), bias);
    };
    same((x) => frozenLayerNorm(x as tf.Tensor2D, g as tf.Tensor1D, bias as tf.Tensor1D, 1e-5), ln, [
      randn(rng, [3, 5]),
    ]);
    const ids = tf.tensor1d([2, 0, 2, 4], "int32");
    same(
      (e) => embedRows(ids, e as tf.Tensor2D, false),
      (e) => tf.matMul(tf.cast(tf.oneHot(ids, 5), "float32"), e),
      [randn(rng, [5, 3])],
    );
  });
});
