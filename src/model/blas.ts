/**
 * Optional native kernels for the wasm backend: BLAS matrix products and fused row kernels.
 *
 * The wasm backend multiplies through XNNPACK only for untransposed, unbatched products
 * (~18 GFLOP/s, one thread); transposed and batched ones (attention) fall back to a scalar
 * loop. When the native addon built at install time (native/blas.c, `npm run build:native`)
 * loads and finds a CBLAS (OpenBLAS on Debian), the wasm kernels BatchMatMul and _FusedMatMul
 * are replaced by versions that call cblas_sgemm directly on the wasm heap — no copies, any
 * transpose, batched, multithreaded. Cases they do not cover (other activations, uncommon
 * broadcasts, non-float inputs) go to the original kernels, which also stay registered-aside
 * so the fast path can be switched off again (tests compare the two).
 *
 * On x86-64 with AVX2 and FMA the addon also has row kernels of its own, active with the BLAS
 * ones (rowKernelsActive): products of at most 16 rows (sampling), which stream the weight
 * once instead of packing it as sgemm does; and one-pass kernels, forward and gradient, for
 * what tfjs runs as several elementwise kernels with a scalar exp — the head's softmax
 * statistics, the masked attention softmax, RMSNorm, LayerNorm, SwiGLU, GELU and RoPE
 * (./ops.ts uses them and keeps its tfjs formulas as the fallback; tests compare the two).
 */
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";

interface BlasAddon {
  load(library?: string): string;
  threads(n?: number): number;
  gemmBatched(
    heap: ArrayBufferLike,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: number,
    transB: number,
    aOff: number,
    aStride: number,
    bOff: number,
    bStride: number,
    cOff: number,
    biasOff: number,
  ): void;
  headRows(
    heap: ArrayBufferLike,
    rows: number,
    vocab: number,
    zOff: number,
    targetsOff: number,
    aOff: number,
    bOff: number,
    lpOff: number,
    entOff: number,
  ): void;
  fewRows(): boolean;
  softmax(
    heap: ArrayBufferLike,
    rows: number,
    tk: number,
    tq: number,
    h: number,
    xOff: number,
    maskOff: number,
    maskBatch: number,
    outOff: number,
    dyOff: number,
  ): void;
  swiglu(
    heap: ArrayBufferLike,
    n: number,
    aOff: number,
    bOff: number,
    yOff: number,
    dyOff: number,
    daOff: number,
    dbOff: number,
  ): void;
  rmsnorm(
    heap: ArrayBufferLike,
    rows: number,
    d: number,
    eps: number,
    xOff: number,
    gOff: number,
    rOff: number,
    yOff: number,
    dyOff: number,
    dxOff: number,
  ): void;
  layernorm(
    heap: ArrayBufferLike,
    rows: number,
    d: number,
    eps: number,
    xOff: number,
    gOff: number,
    bOff: number,
    yOff: number,
    meanOff: number,
    rstdOff: number,
    dyOff: number,
    dxOff: number,
    dyxhatOff: number,
  ): void;
  gelu(
    heap: ArrayBufferLike,
    n: number,
    a: number,
    b: number,
    xOff: number,
    yOff: number,
    dyOff: number,
    dxOff: number,
  ): void;
  rope(
    heap: ArrayBufferLike,
    n: number,
    h: number,
    hd: number,
    inverse: number,
    xOff: number,
    cOff: number,
    sOff: number,
    yOff: number,
  ): void;
}

/** The parts of the wasm backend this module touches. */
interface WasmBackendLike {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32" | "int32"): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
/** The head statistics kernel (see headRows); registered only while the BLAS kernels are. */
const HEAD_ROWS = "GrpoHeadRows";
const SOFTMAX = "GrpoMaskedSoftmax";
const SOFTMAX_GRAD = "GrpoSoftmaxGrad";
const SWIGLU = "GrpoSwiglu";
const SWIGLU_GRAD = "GrpoSwigluGrad";
const RMS_NORM = "GrpoRmsNorm";
const RMS_NORM_GRAD = "GrpoRmsNormGrad";
const LAYER_NORM = "GrpoLayerNorm";
const LAYER_NORM_GRAD = "GrpoLayerNormGrad";
const GELU = "GrpoGelu";
const ROPE = "GrpoRope";
const ROW_KERNELS = [
  HEAD_ROWS,
  SOFTMAX,
  SOFTMAX_GRAD,
  SWIGLU,
  SWIGLU_GRAD,
  RMS_NORM,
  RMS_NORM_GRAD,
  LAYER_NORM,
  LAYER_NORM_GRAD,
  GELU,
  ROPE,
];
const ADDON_PATH = new URL("../../native/build/blas.node", import.meta.url);

let addon: BlasAddon | null | undefined;
let library = "";
let loadError = "";
const originals = new Map<string, tf.KernelConfig>();
let active = false;

/** Loads the addon and its CBLAS once; null when either is missing (see blasStatus). */
function loadAddon(): BlasAddon | null {
  if (addon !== undefined) return addon;
  try {
    const req = createRequire(import.meta.url);
    const a = req(ADDON_PATH.pathname) as BlasAddon;
    library = a.load(process.env.GRPO_BLAS_LIBRARY || undefined);
    addon = a;
  } catch (err) {
    loadError = (err as Error).message.split("\n")[0] ?? "unknown error";
    addon = null;
  }
  return addon;
}

/** Whether BLAS products are in use, which library provides them, or why not. */
export function blasStatus(): { active: boolean; library?: string; threads?: number; reason?: string } {
  if (active && addon) return { active, library, threads: addon.threads() };
  return { active: false, reason: addon === null ? loadError : undefined };
}

/** True while the BLAS kernels are registered. */
export function blasActive(): boolean {
  return active;
}

/**
 * Registers (on = true) or removes the BLAS kernels for the wasm backend. Returns whether they
 * are active afterwards: false when the addon or a CBLAS is unavailable. `threads` sets the
 * BLAS thread count (default: the library's own choice).
 */
export function setBlasKernels(on: boolean, threads?: number): boolean {
  if (on === active) {
    if (on && threads && addon) addon.threads(threads);
    return active;
  }
  if (!on) {
    for (const name of KERNELS) {
      const orig = originals.get(name);
      if (!orig) continue;
      tf.unregisterKernel(name, "wasm");
      tf.registerKernel(orig);
    }
    for (const name of ROW_KERNELS) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
    active = false;
    headActive = false;
    return false;
  }
  const a = loadAddon();
  if (!a) return false;
  if (threads) a.threads(threads);
  for (const name of KERNELS) {
    const orig = tf.getKernel(name, "wasm");
    if (!orig) return false;
    originals.set(name, orig);
  }
  for (const name of KERNELS) {
    const orig = originals.get(name)!;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ ...orig, kernelFunc: blasMatMul(a, orig.kernelFunc) });
  }
  if (a.fewRows()) {
    tf.registerKernel({ kernelName: HEAD_ROWS, backendName: "wasm", kernelFunc: headRowsKernel(a) });
    tf.registerKernel({ kernelName: SOFTMAX, backendName: "wasm", kernelFunc: softmaxKernel(a) });
    tf.registerKernel({ kernelName: SOFTMAX_GRAD, backendName: "wasm", kernelFunc: softmaxKernel(a) });
    tf.registerKernel({ kernelName: SWIGLU, backendName: "wasm", kernelFunc: swigluKernel(a) });
    tf.registerKernel({ kernelName: SWIGLU_GRAD, backendName: "wasm", kernelFunc: swigluKernel(a) });
    tf.registerKernel({ kernelName: RMS_NORM, backendName: "wasm", kernelFunc: rmsNormKernel(a) });
    tf.registerKernel({ kernelName: RMS_NORM_GRAD, backendName: "wasm", kernelFunc: rmsNormKernel(a) });
    tf.registerKernel({ kernelName: LAYER_NORM, backendName: "wasm", kernelFunc: layerNormKernel(a) });
    tf.registerKernel({ kernelName: LAYER_NORM_GRAD, backendName: "wasm", kernelFunc: layerNormKernel(a) });
    tf.registerKernel({ kernelName: GELU, backendName: "wasm", kernelFunc: geluKernel(a) });
    tf.registerKernel({ kernelName: ROPE, backendName: "wasm", kernelFunc: ropeKernel(a) });
    headActive = true;
  }
  active = true;
  return true;
}

let headActive = false;

/**
 * True while the addon's own row kernels run (BLAS kernels on, x86-64 CPU with AVX2 and FMA):
 * headRows, and products of at most 16 rows, which stream the right operand once — fastest
 * when it is transposed ([n, k] rows, as the head's [V, d] is).
 */
export function rowKernelsActive(): boolean {
  return headActive;
}

/**
 * For a block of head logits z [c, V] and int32 targets [c]: log p(target) [c], the entropy
 * −Σ p log p [c], a = onehot(target) − p [c, V] and, with `withB`, b = −p·(log p + entropy)
 * [c, V], p = softmax(z) — in one pass over the logits (native/blas.c). Only while
 * rowKernelsActive(); no gradient.
 */
export function headRows(
  z: tf.Tensor2D,
  targets: tf.Tensor1D,
  withB: boolean,
): { lp: tf.Tensor1D; ent: tf.Tensor1D; a: tf.Tensor2D; b?: tf.Tensor2D } {
  if (!headActive) throw new Error("headRows: the native row kernels are not active");
  if (z.dtype !== "float32" || targets.dtype !== "int32" || targets.shape[0] !== z.shape[0])
    throw new Error(
      `headRows: expected float32 z [c, V] and int32 targets [c], got ${z.dtype} [${z.shape}], ${targets.dtype} [${targets.shape}]`,
    );
  const out = tf.engine().runKernel(HEAD_ROWS, { z, targets }, { withB }) as tf.Tensor[];
  const [lp, ent, a, b] = out as [tf.Tensor1D, tf.Tensor1D, tf.Tensor2D, tf.Tensor2D | undefined];
  return b ? { lp, ent, a, b } : { lp, ent, a };
}

/**
 * How maskedSoftmax reads a mask for scores [B, H, Tq, Tk]: the stride between batch rows of a
 * mask [Tq, Tk], [1, 1, Tq, Tk] (0) or [B, 1, Tq, Tk] (Tq·Tk); null for other shapes.
 */
export function softmaxMaskBatch(scores: readonly number[], mask: readonly number[]): number | null {
  const [B, , Tq, Tk] = scores as [number, number, number, number];
  if (scores.length !== 4 || mask[mask.length - 2] !== Tq || mask[mask.length - 1] !== Tk) return null;
  if (mask.length === 2) return 0;
  if (mask.length !== 4 || mask[1] !== 1) return null;
  if (mask[0] === 1) return 0;
  return mask[0] === B ? Tq * Tk : null;
}

/**
 * softmax(scores + mask) over the last axis of float32 scores [B, H, Tq, Tk], the mask read
 * with softmaxMaskBatch's stride, in one native pass. Only while rowKernelsActive(); no
 * gradient (see maskedSoftmaxGrad).
 */
export function maskedSoftmax(scores: tf.Tensor4D, mask: tf.Tensor, maskBatch: number): tf.Tensor4D {
  if (!headActive) throw new Error("maskedSoftmax: the native row kernels are not active");
  const [, H, Tq] = scores.shape;
  return tf.engine().runKernel(SOFTMAX, { x: scores, mask }, { tq: Tq, h: H, maskBatch }) as tf.Tensor4D;
}

/** p·(dy − Σ p·dy) over the last axis: the gradient of a softmax p for dy (rowKernelsActive() only). */
export function maskedSoftmaxGrad(p: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  if (!headActive) throw new Error("maskedSoftmaxGrad: the native row kernels are not active");
  return tf.engine().runKernel(SOFTMAX_GRAD, { x: p, dy }, {}) as tf.Tensor;
}

/**
 * silu(a)·b for float32 a, b of one shape; with dy, the gradients [da, db] instead (see swiglu
 * in ./ops.ts). Only while rowKernelsActive().
 */
export function nativeSwiglu(a: tf.Tensor, b: tf.Tensor, dy?: tf.Tensor): tf.Tensor[] {
  if (!headActive) throw new Error("nativeSwiglu: the native row kernels are not active");
  if (!tf.util.arraysEqual(a.shape, b.shape) || (dy && !tf.util.arraysEqual(a.shape, dy.shape)))
    throw new Error(`nativeSwiglu: shapes differ: [${a.shape}], [${b.shape}]${dy ? `, [${dy.shape}]` : ""}`);
  const out = tf.engine().runKernel(dy ? SWIGLU_GRAD : SWIGLU, dy ? { a, b, dy } : { a, b }, {});
  return Array.isArray(out) ? out : [out as tf.Tensor];
}

/**
 * RMSNorm of float32 x [N, d] with gain g [d]: [y, r] with r = 1/√(mean(x²) + eps) [N] (see
 * rmsNorm in ./ops.ts). Only while rowKernelsActive().
 */
export function nativeRmsNorm(x: tf.Tensor2D, g: tf.Tensor1D, eps: number): [tf.Tensor2D, tf.Tensor1D] {
  if (!headActive) throw new Error("nativeRmsNorm: the native row kernels are not active");
  if (x.shape[1] !== g.shape[0])
    throw new Error(`nativeRmsNorm: x [${x.shape}] and gain [${g.shape}] differ`);
  return tf.engine().runKernel(RMS_NORM, { x, g }, { eps }) as unknown as [tf.Tensor2D, tf.Tensor1D];
}

/** dx of nativeRmsNorm for dy, from its input x, gain g and r. */
export function nativeRmsNormGrad(x: tf.Tensor, g: tf.Tensor, r: tf.Tensor, dy: tf.Tensor): tf.Tensor2D {
  if (!headActive) throw new Error("nativeRmsNormGrad: the native row kernels are not active");
  return tf.engine().runKernel(RMS_NORM_GRAD, { x, g, r, dy }, {}) as tf.Tensor2D;
}

/**
 * LayerNorm of float32 x [N, d] with gain g and bias b [d]: [y, mean, r] with the rows' mean
 * and r = 1/√(var + eps) [N] (see layerNorm in ./ops.ts). Only while rowKernelsActive().
 */
export function nativeLayerNorm(
  x: tf.Tensor2D,
  g: tf.Tensor1D,
  b: tf.Tensor1D,
  eps: number,
): [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D] {
  if (!headActive) throw new Error("nativeLayerNorm: the native row kernels are not active");
  if (x.shape[1] !== g.shape[0] || x.shape[1] !== b.shape[0])
    throw new Error(`nativeLayerNorm: x [${x.shape}], gain [${g.shape}] and bias [${b.shape}] differ`);
  return tf.engine().runKernel(LAYER_NORM, { x, g, b }, { eps }) as unknown as [
    tf.Tensor2D,
    tf.Tensor1D,
    tf.Tensor1D,
  ];
}

/** [dx, dy·x̂] of nativeLayerNorm for dy, from its input x, gain g and the rows' mean and r. */
export function nativeLayerNormGrad(
  x: tf.Tensor,
  g: tf.Tensor,
  mean: tf.Tensor,
  rstd: tf.Tensor,
  dy: tf.Tensor,
): [tf.Tensor2D, tf.Tensor2D] {
  if (!headActive) throw new Error("nativeLayerNormGrad: the native row kernels are not active");
  return tf.engine().runKernel(LAYER_NORM_GRAD, { x, g, mean, rstd, dy }, {}) as unknown as [
    tf.Tensor2D,
    tf.Tensor2D,
  ];
}

/** x·σ(x(a + b·x²)) elementwise for float32 x, or with dy its gradient (rowKernelsActive() only). */
export function nativeGelu<T extends tf.Tensor>(x: T, a: number, b: number, dy?: tf.Tensor): T {
  if (!headActive) throw new Error("nativeGelu: the native row kernels are not active");
  if (dy && !tf.util.arraysEqual(x.shape, dy.shape))
    throw new Error(`nativeGelu: x [${x.shape}] and dy [${dy.shape}] differ`);
  return tf.engine().runKernel(GELU, dy ? { x, dy } : { x }, { a, b }) as T;
}

/**
 * What a native kernel needs of the wasm backend: the float offset of a tensor in the heap, and
 * the heap itself — read after makeOutput, since an allocation can grow the wasm memory and
 * replace its buffer.
 */
function wasmView(args: { backend: unknown }) {
  const backend = args.backend as WasmBackendLike;
  return {
    backend,
    off: (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset / 4,
    heap: () => backend.wasm.HEAPU8.buffer,
  };
}

function layerNormKernel(addon: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const { x, g, b, mean, rstd, dy } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const [rows, d] = x!.shape as [number, number];
    if (dy && mean && rstd) {
      const dx = backend.makeOutput([rows, d], "float32");
      const dyxhat = backend.makeOutput([rows, d], "float32");
      addon.layernorm(
        heap(),
        rows,
        d,
        0,
        off(x!),
        off(g!),
        -1,
        -1,
        off(mean),
        off(rstd),
        off(dy),
        off(dx),
        off(dyxhat),
      );
      return [dx, dyxhat];
    }
    const y = backend.makeOutput([rows, d], "float32");
    const m = backend.makeOutput([rows], "float32");
    const r = backend.makeOutput([rows], "float32");
    addon.layernorm(
      heap(),
      rows,
      d,
      args.attrs!.eps as number,
      off(x!),
      off(g!),
      off(b!),
      off(y),
      off(m),
      off(r),
      -1,
      -1,
      -1,
    );
    return [y, m, r];
  };
}

function geluKernel(addon: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const x = args.inputs.x as tf.TensorInfo;
    const dy = args.inputs.dy as tf.TensorInfo | undefined;
    const out = backend.makeOutput([...x.shape], "float32");
    const { a, b } = args.attrs as { a: number; b: number };
    if (dy) addon.gelu(heap(), size(x.shape), a, b, off(x), -1, off(dy), off(out));
    else addon.gelu(heap(), size(x.shape), a, b, off(x), off(out), -1, -1);
    return out;
  };
}

/**
 * Rotary embedding of float32 x [N, H, hd] with tables cos, sin [N, 1, hd] (rotate-half layout;
 * see rope in ./ops.ts); `inverse` applies the transposed rotation, the gradient. No gradient
 * of its own (rowKernelsActive() only).
 */
export function nativeRope(
  x: tf.Tensor3D,
  cos: tf.Tensor3D,
  sin: tf.Tensor3D,
  inverse: boolean,
): tf.Tensor3D {
  if (!headActive) throw new Error("nativeRope: the native row kernels are not active");
  const [N, , hd] = x.shape;
  for (const t of [cos, sin])
    if (t.shape[0] !== N || t.shape[1] !== 1 || t.shape[2] !== hd)
      throw new Error(`nativeRope: tables must be [${N}, 1, ${hd}], got [${t.shape}]`);
  return tf.engine().runKernel(ROPE, { x, cos, sin }, { inverse }) as tf.Tensor3D;
}

function ropeKernel(addon: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const x = args.inputs.x as tf.TensorInfo;
    const [N, H, hd] = x.shape as [number, number, number];
    const y = backend.makeOutput([N, H, hd], "float32");
    const c = args.inputs.cos as tf.TensorInfo;
    const s = args.inputs.sin as tf.TensorInfo;
    addon.rope(heap(), N, H, hd, args.attrs!.inverse ? 1 : 0, off(x), off(c), off(s), off(y));
    return y;
  };
}

function rmsNormKernel(addon: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const x = args.inputs.x as tf.TensorInfo;
    const g = args.inputs.g as tf.TensorInfo;
    const r = args.inputs.r as tf.TensorInfo | undefined;
    const dy = args.inputs.dy as tf.TensorInfo | undefined;
    const [rows, d] = x.shape as [number, number];
    if (!dy || !r) {
      const y = backend.makeOutput([rows, d], "float32");
      const rr = backend.makeOutput([rows], "float32");
      addon.rmsnorm(heap(), rows, d, args.attrs!.eps as number, off(x), off(g), off(rr), off(y), -1, -1);
      return [y, rr];
    }
    const dx = backend.makeOutput([rows, d], "float32");
    addon.rmsnorm(heap(), rows, d, 0, off(x), off(g), off(r), -1, off(dy), off(dx));
    return dx;
  };
}

function swigluKernel(addon: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const a = args.inputs.a as tf.TensorInfo;
    const b = args.inputs.b as tf.TensorInfo;
    const dy = args.inputs.dy as tf.TensorInfo | undefined;
    const n = size(a.shape);
    if (!dy) {
      const y = backend.makeOutput([...a.shape], "float32");
      addon.swiglu(heap(), n, off(a), off(b), off(y), -1, -1, -1);
      return y;
    }
    const da = backend.makeOutput([...a.shape], "float32");
    const db = backend.makeOutput([...a.shape], "float32");
    addon.swiglu(heap(), n, off(a), off(b), -1, off(dy), off(da), off(db));
    return [da, db];
  };
}

function softmaxKernel(a: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const x = args.inputs.x as tf.TensorInfo;
    const mask = args.inputs.mask as tf.TensorInfo | undefined;
    const dy = args.inputs.dy as tf.TensorInfo | undefined;
    const tk = x.shape[x.shape.length - 1]!;
    const rows = size(x.shape) / tk;
    const out = backend.makeOutput([...x.shape], "float32");
    const tq = mask ? (args.attrs!.tq as number) : 1;
    const h = mask ? (args.attrs!.h as number) : 1;
    const mb = mask ? (args.attrs!.maskBatch as number) : 0;
    a.softmax(heap(), rows, tk, tq, h, off(x), mask ? off(mask) : -1, mb, off(out), dy ? off(dy) : -1);
    return out;
  };
}

function headRowsKernel(a: BlasAddon): tf.KernelFunc {
  return (args) => {
    const { backend, off, heap } = wasmView(args);
    const z = args.inputs.z as tf.TensorInfo;
    const t = args.inputs.targets as tf.TensorInfo;
    const [c, V] = z.shape as [number, number];
    const lp = backend.makeOutput([c], "float32");
    const ent = backend.makeOutput([c], "float32");
    const av = backend.makeOutput([c, V], "float32");
    const bv = args.attrs?.withB ? backend.makeOutput([c, V], "float32") : null;
    a.headRows(heap(), c, V, off(z), off(t), off(av), bv ? off(bv) : -1, off(lp), off(ent));
    return bv ? [lp, ent, av, bv] : [lp, ent, av];
  };
}

function size(shape: number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/**
 * A matMul kernel (BatchMatMul / _FusedMatMul inputs and attributes) computed with
 * cblas_sgemm; anything it does not handle goes to `fallback`.
 */
function blasMatMul(a: BlasAddon, fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { inputs, attrs } = args;
    const { backend, off, heap } = wasmView(args);
    const x = inputs.a as tf.TensorInfo;
    const y = inputs.b as tf.TensorInfo;
    const bias = inputs.bias as tf.TensorInfo | undefined;
    const transA = Boolean(attrs?.transposeA);
    const transB = Boolean(attrs?.transposeB);
    const activation = (attrs?.activation as string | undefined) ?? "linear";
    if (
      x.dtype !== "float32" ||
      y.dtype !== "float32" ||
      activation !== "linear" ||
      inputs.preluActivationWeights ||
      x.shape.length < 2 ||
      y.shape.length < 2
    ) {
      return fallback(args);
    }
    const ra = x.shape.length;
    const rb = y.shape.length;
    const m = transA ? x.shape[ra - 1]! : x.shape[ra - 2]!;
    const k = transA ? x.shape[ra - 2]! : x.shape[ra - 1]!;
    const kb = transB ? y.shape[rb - 1]! : y.shape[rb - 2]!;
    const n = transB ? y.shape[rb - 2]! : y.shape[rb - 1]!;
    const outerA = x.shape.slice(0, -2);
    const outerB = y.shape.slice(0, -2);
    const batchA = size(outerA);
    const batchB = size(outerB);
    const batch = Math.max(batchA, batchB);
    // Broadcasting is supported only when one side is a single matrix (or both match).
    const outer = batchA >= batchB ? outerA : outerB;
    const sameOuter = batchA === batchB && tf.util.arraysEqual(outerA, outerB);
    if (k !== kb || m * n * k === 0 || (!sameOuter && batchA !== 1 && batchB !== 1)) return fallback(args);
    if (bias && (bias.dtype !== "float32" || size(bias.shape) !== n || bias.shape.length !== 1)) {
      return fallback(args);
    }
    const out = backend.makeOutput([...outer, m, n], "float32");
    a.gemmBatched(
      heap(),
      batch,
      m,
      n,
      k,
      transA ? 1 : 0,
      transB ? 1 : 0,
      off(x),
      batchA === 1 ? 0 : m * k,
      off(y),
      batchB === 1 ? 0 : k * n,
      off(out),
      bias ? off(bias) : -1,
    );
    return out;
  };
}
