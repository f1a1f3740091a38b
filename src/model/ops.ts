/**
 * Matrix products with hand-written gradients, and the other fused ops of the policy.
 *
 * On the plain wasm backend a matMul goes through XNNPACK (about 18 GFLOP/s here) only when
 * it is 2-D and untransposed; the transposeA / transposeB variants and batched products fall
 * back to a scalar loop 10–40× slower — and tfjs's own matMul gradients use exactly those
 * variants. So by default these ops transpose explicitly (a cheap copy) and multiply
 * untransposed, forward and backward. When the BLAS kernels are active (./blas.ts) every
 * variant is fast, and the transpose flags go straight to the kernel instead.
 */
import * as tf from "@tensorflow/tfjs-core";
import { blasActive } from "./blas.ts";

type Fn = (...args: tf.Tensor[]) => tf.Tensor;
type Save = (tensors: tf.Tensor[]) => void;
type GradResult = { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] };

/** tf.customGrad with concrete parameter types (its declared signature takes a union). */
function custom(f: (...args: never[]) => GradResult): Fn {
  return tf.customGrad(f as never) as unknown as Fn;
}

const onesRows = new Map<number, tf.Tensor2D>();

/**
 * Column sums of [N, d] as ones[1, N]·g: a reduction over axis 0 is several times slower on
 * wasm than this small XNNPACK product. The ones rows are cached per N for the process.
 */
export function colSum(g: tf.Tensor2D): tf.Tensor1D {
  const n = g.shape[0];
  let ones = onesRows.get(n);
  if (!ones || ones.isDisposed) {
    ones = tf.keep(tf.ones([1, n])) as tf.Tensor2D;
    onesRows.set(n, ones);
  }
  return tf.reshape(tf.matMul(ones, g), [g.shape[1]]) as tf.Tensor1D;
}

/** Swaps the last two axes. */
export function swapLast<T extends tf.Tensor>(x: T): T {
  const r = x.rank;
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/**
 * op(a)·op(b), op transposing the last two axes when the flag is set: one kernel call with
 * the BLAS kernels, an explicit transpose and an untransposed product otherwise.
 */
export function product<T extends tf.Tensor>(a: T, b: T, transA = false, transB = false): T {
  if (blasActive()) return tf.matMul(a, b, transA, transB) as T;
  return tf.matMul(transA ? swapLast(a) : a, transB ? swapLast(b) : b) as T;
}

/**
 * op(a)·op(b) (same rank, batch dims equal) whose gradient is made of `product`s too. For
 * C = op(A)·op(B): dA = dC·op(B)ᵀ (or its transpose when A is transposed), and likewise dB.
 */
export function matMul<T extends tf.Tensor>(a: T, b: T, transA = false, transB = false): T {
  const f = custom((x: tf.Tensor, y: tf.Tensor, save: Save) => {
    save([x as tf.Tensor, y as tf.Tensor]);
    return {
      value: product(x as tf.Tensor, y as tf.Tensor, transA, transB),
      gradFunc: (dy, saved) => {
        const [xs, ys] = saved as [tf.Tensor, tf.Tensor];
        const g = dy as tf.Tensor;
        const dx = transA ? product(ys, g, transB, true) : product(g, ys, false, !transB);
        const dw = transB ? product(g, xs, true, transA) : product(xs, g, !transA, false);
        return [dx, dw];
      },
    };
  });
  return f(a, b) as T;
}

/** x·W + bias for x [N, d_in], W [d_in, d_out], bias [d_out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, save: Save) => {
    save([xx as tf.Tensor, ww as tf.Tensor]);
    return {
      value: tf.fused.matMul({ a: xx as tf.Tensor2D, b: ww as tf.Tensor2D, bias: bb as tf.Tensor }),
      gradFunc: (dy, saved) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        return [product(g, ws, false, true), product(xs, g, true, false), colSum(g)];
      },
    };
  });
  return f(x, w, bias) as tf.Tensor2D;
}

/**
 * Embedding lookup as oneHot·W (the wasm backend lacks gather's gradient kernel). The one-hot
 * matrix is a constant, so only W receives a gradient.
 */
export function embed(oneHot: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const f = custom((ww: tf.Tensor, save: Save) => {
    // Saved (not captured) so the enclosing tidy does not dispose it before the backward pass.
    save([oneHot]);
    return {
      value: tf.matMul(oneHot, ww as tf.Tensor2D),
      gradFunc: (dy, saved) => [product(saved[0] as tf.Tensor2D, dy as tf.Tensor2D, true, false)],
    };
  });
  return f(w) as tf.Tensor2D;
}

const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = GELU_A * 0.044715;

/**
 * tanh-approximate GELU, written as x·σ(2u) with u = √(2/π)(x + 0.044715x³) — the same
 * function as 0.5x(1 + tanh u) — because the wasm Tanh kernel is several times slower than
 * Sigmoid. The hand-written gradient replaces a dozen autodiff ops:
 * d/dx = s·(1 + x(1 − s)·z′), s = σ(z), z = x(a + b x²), z′ = a + 3b x².
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  const f = custom((xx: tf.Tensor, save: Save) => {
    const x2 = tf.square(xx);
    const s = tf.sigmoid(tf.mul(xx, tf.add(tf.mul(x2, GELU_B), GELU_A)));
    save([xx, x2, s]);
    return {
      value: tf.mul(xx, s),
      gradFunc: (dy, saved) => {
        const [xs, x2s, ss] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const zp = tf.add(tf.mul(x2s, 3 * GELU_B), GELU_A);
        const inner = tf.add(tf.mul(tf.mul(xs, tf.sub(1, ss)), zp), 1);
        return [tf.mul(dy, tf.mul(ss, inner))];
      },
    };
  });
  return f(x) as T;
}

/** The same GELU without gradient bookkeeping, for sampling. */
export function geluForward<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), GELU_B), GELU_A)))) as T;
}

/**
 * LayerNorm over the last axis of [N, d] with gain g and bias b, with the closed-form
 * gradient dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·g.
 */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, save: Save) => {
    const xc = tf.sub(xx, tf.mean(xx, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, gg]);
    return {
      value: tf.add(tf.mul(xhat, gg), bb),
      gradFunc: (dy, saved) => {
        const [xh, rs, gs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dxhat = tf.mul(dy, gs);
        const dx = tf.mul(
          rs,
          tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(xh, tf.mean(tf.mul(dxhat, xh), -1, true))),
        );
        return [dx, colSum(tf.mul(dy, xh) as tf.Tensor2D), colSum(dy as tf.Tensor2D)];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

/** The same LayerNorm without gradient bookkeeping, for sampling. */
export function layerNormForward(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  const xc = tf.sub(x, tf.mean(x, -1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
  return tf.add(tf.mul(tf.mul(xc, rstd), g), b) as tf.Tensor2D;
}
