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
import {
  blasActive,
  headRows,
  maskedSoftmax,
  maskedSoftmaxGrad,
  nativeGelu,
  nativeLayerNorm,
  nativeLayerNormGrad,
  nativeRmsNorm,
  nativeRmsNormGrad,
  nativeRope,
  nativeSwiglu,
  rowKernelsActive,
  softmaxMaskBatch,
} from "./blas.ts";

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
  if (rowKernelsActive() && x.dtype === "float32") {
    // One native kernel each way (./blas.ts); only x is kept for the backward pass.
    const f = custom((xx: tf.Tensor, save: Save) => {
      save([xx]);
      return {
        value: nativeGelu(xx, GELU_A, GELU_B),
        gradFunc: (dy, saved) => [nativeGelu(saved[0]!, GELU_A, GELU_B, dy)],
      };
    });
    return f(x) as T;
  }
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
  if (rowKernelsActive() && x.dtype === "float32") return nativeGelu(x, GELU_A, GELU_B);
  return tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), GELU_B), GELU_A)))) as T;
}

/**
 * LayerNorm over the last axis of [N, d] with gain g and bias b, with the closed-form
 * gradient dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·g.
 */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  if (rowKernelsActive() && x.dtype === "float32") {
    // One native kernel each way (./blas.ts); the backward pass keeps x (shared) and two [N] rows.
    const f = custom((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, save: Save) => {
      const [y, mean, rstd] = nativeLayerNorm(xx as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D, eps);
      save([xx, gg, mean, rstd]);
      return {
        value: y,
        gradFunc: (dy, saved) => {
          const [xs, gs, ms, rs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          const [dx, dyxhat] = nativeLayerNormGrad(xs, gs, ms, rs, dy);
          return [dx, colSum(dyxhat), colSum(dy as tf.Tensor2D)];
        },
      };
    });
    return f(x, g, b) as tf.Tensor2D;
  }
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
  if (rowKernelsActive() && x.dtype === "float32") {
    const [y, mean, rstd] = nativeLayerNorm(x, g, b, eps);
    tf.dispose([mean, rstd]);
    return y;
  }
  const xc = tf.sub(x, tf.mean(x, -1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
  return tf.add(tf.mul(tf.mul(xc, rstd), g), b) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// Ops of the Hugging Face architectures (./hf/model.ts). A weight passed as `frozen` is closed
// over instead of being an input, so the backward pass computes no gradient for it — as
// PyTorch skips parameters with requires_grad=False; under LoRA that halves the base
// projections' backward work.

/** x·op(W) + bias where W and bias are frozen: only x receives a gradient. */
export function frozenLinear(
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  bias: tf.Tensor1D | null,
  transB = false,
): tf.Tensor2D {
  const f = custom((xx: tf.Tensor) => ({
    value: bias
      ? tf.fused.matMul({ a: xx as tf.Tensor2D, b: w, bias, transposeB: transB })
      : product(xx as tf.Tensor2D, w, false, transB),
    gradFunc: (dy) => [product(dy as tf.Tensor2D, w, false, !transB)],
  }));
  return f(x) as tf.Tensor2D;
}

/**
 * Rows `ids` of the embedding W [V, d] → [N, d]. The gradient (when W is trained) is a
 * scatter-add of the output gradient into W's rows; tfjs's own Gather gradient needs a kernel
 * the wasm backend lacks, and oneHot·W costs N·V·d.
 */
export function embedRows(ids: tf.Tensor1D, w: tf.Tensor2D, frozen: boolean): tf.Tensor2D {
  if (frozen) return tf.gather(w, ids) as tf.Tensor2D;
  const f = custom((ww: tf.Tensor, save: Save) => {
    save([ids]);
    return {
      value: tf.gather(ww, ids),
      gradFunc: (dy, saved) => [tf.scatterND(tf.reshape(saved[0]!, [ids.shape[0], 1]), dy, w.shape)],
    };
  });
  return f(w) as tf.Tensor2D;
}

/**
 * RMSNorm over the last axis of [N, d]: x·rsqrt(mean(x²) + eps)·g (Llama, Qwen), with the
 * closed-form gradient dx = r·(dx̂ − x̂·mean(dx̂·x̂)), dx̂ = dy·g, r = rsqrt(mean(x²) + eps).
 */
export function rmsNorm(x: tf.Tensor2D, g: tf.Tensor1D, eps: number, frozen: boolean): tf.Tensor2D {
  if (rowKernelsActive() && x.dtype === "float32") return nativeRmsNormOp(x, g, eps, frozen);
  const forward = (xx: tf.Tensor, gg: tf.Tensor) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), eps));
    const xhat = tf.mul(xx, r);
    return { r, xhat, y: tf.mul(xhat, gg) };
  };
  const dxOf = (dy: tf.Tensor, r: tf.Tensor, xhat: tf.Tensor, gg: tf.Tensor) => {
    const dxhat = tf.mul(dy, gg);
    return tf.mul(r, tf.sub(dxhat, tf.mul(xhat, tf.mean(tf.mul(dxhat, xhat), -1, true))));
  };
  if (frozen) {
    const f = custom((xx: tf.Tensor, save: Save) => {
      const { r, xhat, y } = forward(xx, g);
      save([r, xhat]);
      return { value: y, gradFunc: (dy, saved) => [dxOf(dy, saved[0]!, saved[1]!, g)] };
    });
    return f(x) as tf.Tensor2D;
  }
  const f = custom((xx: tf.Tensor, gg: tf.Tensor, save: Save) => {
    const { r, xhat, y } = forward(xx, gg);
    save([r, xhat, gg]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [rs, xh, gs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return [dxOf(dy, rs, xh, gs), colSum(tf.mul(dy, xh) as tf.Tensor2D)];
      },
    };
  });
  return f(x, g) as tf.Tensor2D;
}

/**
 * rmsNorm through the native kernels (./blas.ts): one pass each way, and the backward pass
 * keeps x (shared, not copied) and r [N] instead of x̂ [N, d].
 */
function nativeRmsNormOp(x: tf.Tensor2D, g: tf.Tensor1D, eps: number, frozen: boolean): tf.Tensor2D {
  if (frozen) {
    const f = custom((xx: tf.Tensor, save: Save) => {
      const [y, r] = nativeRmsNorm(xx as tf.Tensor2D, g, eps);
      save([xx, r]);
      return { value: y, gradFunc: (dy, saved) => [nativeRmsNormGrad(saved[0]!, g, saved[1]!, dy)] };
    });
    return f(x) as tf.Tensor2D;
  }
  const f = custom((xx: tf.Tensor, gg: tf.Tensor, save: Save) => {
    const [y, r] = nativeRmsNorm(xx as tf.Tensor2D, gg as tf.Tensor1D, eps);
    save([xx, gg, r]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, gs, rs] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const xhat = tf.mul(xs, tf.reshape(rs, [xs.shape[0], 1]));
        return [nativeRmsNormGrad(xs, gs, rs, dy), colSum(tf.mul(dy, xhat) as tf.Tensor2D)];
      },
    };
  });
  return f(x, g) as tf.Tensor2D;
}

/** The same RMSNorm without gradient bookkeeping, for sampling. */
export function rmsNormForward(x: tf.Tensor2D, g: tf.Tensor1D, eps: number): tf.Tensor2D {
  if (rowKernelsActive() && x.dtype === "float32") {
    const [y, r] = nativeRmsNorm(x, g, eps);
    r.dispose();
    return y;
  }
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), g) as tf.Tensor2D;
}

/** LayerNorm whose gain and bias are frozen: only x receives a gradient. */
export function frozenLayerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  const f = custom((xx: tf.Tensor, save: Save) => {
    const xc = tf.sub(xx, tf.mean(xx, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy, saved) => {
        const [xh, rs] = saved as [tf.Tensor, tf.Tensor];
        const dxhat = tf.mul(dy, g);
        return [
          tf.mul(
            rs,
            tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(xh, tf.mean(tf.mul(dxhat, xh), -1, true))),
          ),
        ];
      },
    };
  });
  return f(x) as tf.Tensor2D;
}

/**
 * SwiGLU: silu(a)·b (a the gate projection, b the up projection), silu(a) = a·σ(a), with the
 * hand-written gradient da = dy·b·σ(a)·(1 + a(1 − σ(a))), db = dy·silu(a).
 */
export function swiglu(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  // One native pass each way while the row kernels run (./blas.ts), tfjs's ops otherwise.
  const native = rowKernelsActive() && a.dtype === "float32" && b.dtype === "float32";
  const f = custom((aa: tf.Tensor, bb: tf.Tensor, save: Save) => {
    // Only the inputs are kept for the backward pass (σ(a) is recomputed there): an MLP-wide
    // tensor per layer is the largest share of a step's activations.
    save([aa, bb]);
    return {
      value: native ? nativeSwiglu(aa, bb)[0]! : tf.mul(tf.mul(aa, tf.sigmoid(aa)), bb),
      gradFunc: (dy, saved) => {
        const [as, bs] = saved as [tf.Tensor, tf.Tensor];
        if (native) return nativeSwiglu(as, bs, dy);
        const ss = tf.sigmoid(as);
        const dsilu = tf.mul(ss, tf.add(tf.mul(as, tf.sub(1, ss)), 1));
        return [tf.mul(tf.mul(dy, bs), dsilu), tf.mul(dy, tf.mul(as, ss))];
      },
    };
  });
  return f(a, b) as tf.Tensor2D;
}

/** The same SwiGLU without gradient bookkeeping, for sampling. */
export function swigluForward(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (rowKernelsActive() && a.dtype === "float32" && b.dtype === "float32")
    return nativeSwiglu(a, b)[0] as tf.Tensor2D;
  return tf.mul(tf.mul(a, tf.sigmoid(a)), b) as tf.Tensor2D;
}

/**
 * Rotary position embedding in the "rotate half" convention of Llama/Qwen in transformers: for
 * x = [x₁, x₂] (halves of each head), y = [x₁·c − x₂·s, x₂·c + x₁·s], written as
 * y = x∘C + (x·R)∘S with C = [c, c], S = [s, s] ([N, 1, hd], broadcast over the heads of
 * x [N, H, hd]) and R the [hd, hd] matrix of rotate_half (x·R = [−x₂, x₁]) — one small product
 * instead of four slices and a concatenation, which the wasm backend runs slowly. The
 * gradient is the inverse rotation: dx = dy∘C + ((dy∘S)·Rᵀ).
 */
export function rope(
  x: tf.Tensor3D,
  cos: tf.Tensor3D,
  sin: tf.Tensor3D,
  rot: tf.Tensor2D,
  withGrad: boolean,
): tf.Tensor3D {
  const [N, H, hd] = x.shape;
  if (rowKernelsActive() && x.dtype === "float32" && hd % 2 === 0) {
    // One native kernel each way (./blas.ts) instead of a product and three elementwise ops.
    if (!withGrad) return nativeRope(x, cos, sin, false);
    const f = custom((xx: tf.Tensor, save: Save) => {
      save([cos, sin]);
      return {
        value: nativeRope(xx as tf.Tensor3D, cos, sin, false),
        gradFunc: (dy, saved) => [
          nativeRope(dy as tf.Tensor3D, saved[0] as tf.Tensor3D, saved[1] as tf.Tensor3D, true),
        ],
      };
    });
    return f(x) as tf.Tensor3D;
  }
  const turn = (t: tf.Tensor, transB: boolean) =>
    tf.reshape(product(tf.reshape(t, [N * H, hd]) as tf.Tensor2D, rot, false, transB), [N, H, hd]);
  const apply = (t: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => tf.add(tf.mul(t, c), tf.mul(turn(t, false), s));
  if (!withGrad) return apply(x, cos, sin) as tf.Tensor3D;
  const f = custom((xx: tf.Tensor, save: Save) => {
    // Saved (not captured): the enclosing tidy would dispose them before the backward pass.
    save([cos, sin]);
    return {
      value: apply(xx, cos, sin),
      gradFunc: (dy, saved) => [tf.add(tf.mul(dy, saved[0]!), turn(tf.mul(dy, saved[1]!), true))],
    };
  });
  return f(x) as tf.Tensor3D;
}

/**
 * Attention probabilities softmax(scores + mask) over the last axis (scores [B, H, Tq, Tk],
 * mask [Tq, Tk] or [B|1, 1, Tq, Tk], a constant): one native pass forward and one backward
 * while the row kernels run (./blas.ts), tfjs's add and softmax otherwise.
 */
export function attentionSoftmax(scores: tf.Tensor4D, mask: tf.Tensor, withGrad: boolean): tf.Tensor4D {
  const native = rowKernelsActive() && scores.dtype === "float32" && mask.dtype === "float32";
  const maskBatch = native ? softmaxMaskBatch(scores.shape, mask.shape) : null;
  if (maskBatch === null) return tf.softmax(tf.add(scores, mask)) as tf.Tensor4D;
  if (!withGrad) return maskedSoftmax(scores, mask, maskBatch);
  const f = custom((s: tf.Tensor, save: Save) => {
    const p = maskedSoftmax(s as tf.Tensor4D, mask, maskBatch);
    save([p]);
    return { value: p, gradFunc: (dy, saved) => [maskedSoftmaxGrad(saved[0]!, dy)] };
  });
  return f(scores) as tf.Tensor4D;
}

/** R of `rope` for head size hd: (x·R)[j] = −x[j + hd/2], (x·R)[j + hd/2] = x[j]. */
export function rotateHalfMatrix(hd: number): tf.Tensor2D {
  const h = hd / 2;
  const data = new Float32Array(hd * hd);
  for (let j = 0; j < h; j++) {
    data[(j + h) * hd + j] = -1;
    data[j * hd + j + h] = 1;
  }
  return tf.tensor2d(data, [hd, hd]);
}

/** Rows of the head processed at a time: [rows, V] logits stay near 32 MB whatever the vocabulary. */
const HEAD_CHUNK_VALUES = 1 << 23;

/**
 * The output head and the per-row log π(target) and entropy in one op, for h [N, d] (normed
 * hidden states), the head W [V, d] (logits z = h·Wᵀ) and int32 targets [N]; returns [2, N]
 * (row 0 logprobs, row 1 entropies, zeros unless `entropy`). Logits are made a block of rows
 * at a time and never kept, so a 50k vocabulary costs tens of MB instead of several [N, V]
 * tensors (the wasm heap holds 4 GB in all). The gradient is written out:
 * d log p_t/dz = onehot_t − p, dH/dz = −p·(log p + H).
 *
 * With a frozen head the gradient with respect to h is linear in the two incoming row
 * gradients: dh = dl·(onehot − p)·W + de·(−p(log p + H))·W, so the forward pass computes both
 * [N, d] products right away and keeps only them (no recomputed logits, one exp per logit).
 * A trained head (dW) recomputes each block of logits in the backward pass instead.
 */
export function headLogprobs(
  h: tf.Tensor2D,
  w: tf.Tensor2D,
  targets: tf.Tensor1D,
  opts: { trainW: boolean; entropy: boolean; chunkValues?: number },
): tf.Tensor2D {
  const { trainW } = opts;
  const chunkValues = opts.chunkValues ?? HEAD_CHUNK_VALUES;
  const [N, d] = h.shape;
  const V = w.shape[0];
  const rows = Math.max(1, Math.min(N, Math.floor(chunkValues / V)));
  const blocks: [number, number][] = [];
  for (let s = 0; s < N; s += rows) blocks.push([s, Math.min(rows, N - s)]);
  const flatIdx = (t: tf.Tensor1D, c: number) =>
    tf.add(tf.mul(tf.range(0, c, 1, "int32"), tf.scalar(V, "int32")), t) as tf.Tensor1D;
  const forward = (hh: tf.Tensor2D, ww: tf.Tensor2D, tt: tf.Tensor1D) => {
    const parts = blocks.map(([s, c]) =>
      tf.tidy(() => {
        const z = product(tf.slice(hh, [s, 0], [c, d]), ww, false, true);
        const m = tf.max(z, -1, true);
        const e = tf.exp(tf.sub(z, m));
        const sum = tf.sum(e, -1, true);
        const lse = tf.reshape(tf.add(m, tf.log(sum)), [c]);
        const zt = tf.gather(tf.reshape(z, [c * V]), flatIdx(tf.slice(tt, [s], [c]), c));
        const pz = tf.reshape(tf.sum(tf.mul(tf.div(e, sum), z), -1), [c]);
        return [tf.sub(zt, lse), tf.sub(lse, pz), lse];
      }),
    );
    const cat = (k: number) => (parts.length === 1 ? parts[0]![k]! : tf.concat(parts.map((p) => p[k]!)));
    const out = [cat(0), cat(1), cat(2)];
    if (parts.length > 1) tf.dispose(parts.flat());
    return out as [tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
  };
  const backward = (
    dy: tf.Tensor,
    hh: tf.Tensor2D,
    ww: tf.Tensor2D,
    tt: tf.Tensor1D,
    lse: tf.Tensor1D,
    ent: tf.Tensor1D,
  ) => {
    const [dl, de] = tf.unstack(dy) as [tf.Tensor1D, tf.Tensor1D];
    let dw: tf.Tensor2D | null = null;
    const dh = blocks.map(([s, c]) =>
      tf.tidy(() => {
        const hc = tf.slice(hh, [s, 0], [c, d]);
        const col = (t: tf.Tensor1D) => tf.reshape(tf.slice(t, [s], [c]), [c, 1]);
        const logp = tf.sub(product(hc, ww, false, true), col(lse));
        const p = tf.exp(logp);
        const dlc = col(dl);
        const onehot = tf.reshape(
          tf.scatterND(tf.reshape(flatIdx(tf.slice(tt, [s], [c]), c), [c, 1]), tf.reshape(dlc, [c]), [c * V]),
          [c, V],
        );
        const dz = tf.sub(
          onehot,
          tf.mul(p, tf.add(dlc, tf.mul(col(de), tf.add(logp, col(ent))))),
        ) as tf.Tensor2D;
        if (trainW) {
          const part = product(dz, hc, true, false);
          const next = dw ? tf.add(dw, part) : part;
          if (dw) dw.dispose();
          dw = tf.keep(next as tf.Tensor2D);
        }
        return product(dz, ww);
      }),
    );
    const dx = dh.length === 1 ? dh[0]! : tf.concat(dh);
    return trainW ? [dx, dw!] : [dx];
  };
  if (trainW) {
    const f = custom((hh: tf.Tensor, ww: tf.Tensor, save: Save) => {
      const [lp, ent, lse] = forward(hh as tf.Tensor2D, ww as tf.Tensor2D, targets);
      save([hh, ww, targets, lse, ent]);
      return {
        value: tf.stack([lp, ent]),
        gradFunc: (dy, saved) => {
          const [hs, ws, ts, ls, es] = saved as [
            tf.Tensor2D,
            tf.Tensor2D,
            tf.Tensor1D,
            tf.Tensor1D,
            tf.Tensor1D,
          ];
          return backward(dy, hs, ws, ts, ls, es);
        },
      };
    });
    return f(h, w) as tf.Tensor2D;
  }
  // Frozen head: the forward pass also makes the two row-gradient directions G = [A; Bm]·W.
  const native = rowKernelsActive();
  const f = custom((hh: tf.Tensor, save: Save) => {
    const parts = blocks.map(([s, c]) =>
      tf.tidy(() => {
        const z = product(tf.slice(hh as tf.Tensor2D, [s, 0], [c, d]), w, false, true);
        if (native) {
          // One native pass over the logits instead of a dozen kernels (./blas.ts headRows).
          const r = headRows(z, tf.slice(targets, [s], [c]), opts.entropy);
          if (!opts.entropy) return [r.lp, tf.zeros([c]), product(r.a, w)];
          return [r.lp, r.ent, product(r.a, w), product(r.b!, w)];
        }
        const m = tf.max(z, -1, true);
        const lse = tf.add(m, tf.log(tf.sum(tf.exp(tf.sub(z, m)), -1, true)));
        const logp = tf.sub(z, lse);
        const p = tf.exp(logp);
        const idx = flatIdx(tf.slice(targets, [s], [c]), c);
        const lp = tf.gather(tf.reshape(logp, [c * V]), idx);
        const onehot = tf.reshape(tf.scatterND(tf.reshape(idx, [c, 1]), tf.ones([c]), [c * V]), [c, V]);
        const a = tf.sub(onehot, p);
        if (!opts.entropy) return [lp, tf.zeros([c]), product(a as tf.Tensor2D, w)];
        const ent = tf.neg(tf.sum(tf.mul(p, logp), -1));
        const bm = tf.neg(tf.mul(p, tf.add(logp, tf.reshape(ent, [c, 1]))));
        const g = product(tf.concat([a, bm]) as tf.Tensor2D, w);
        return [lp, ent, tf.slice(g, [0, 0], [c, d]), tf.slice(g, [c, 0], [c, d])];
      }),
    );
    const cat = (k: number) => (parts.length === 1 ? parts[0]![k]! : tf.concat(parts.map((q) => q[k]!)));
    const lp = cat(0);
    const ent = cat(1);
    const ga = cat(2);
    const gb = opts.entropy ? cat(3) : null;
    if (parts.length > 1) tf.dispose(parts.flat());
    save(gb ? [ga, gb] : [ga]);
    return {
      value: tf.stack([lp, ent]),
      gradFunc: (dy, saved) => {
        const [dl, de] = tf.unstack(dy) as [tf.Tensor1D, tf.Tensor1D];
        const dh = tf.mul(saved[0]!, tf.reshape(dl, [N, 1]));
        return [saved[1] ? tf.add(dh, tf.mul(saved[1], tf.reshape(de, [N, 1]))) : dh];
      },
    };
  });
  return f(h) as tf.Tensor2D;
}
