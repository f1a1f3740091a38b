/**
 * Optional BLAS matrix products for the wasm backend.
 *
 * The wasm backend multiplies through XNNPACK only for untransposed, unbatched products
 * (~18 GFLOP/s, one thread); transposed and batched ones (attention) fall back to a scalar
 * loop. When the native addon built at install time (native/blas.c, `npm run build:native`)
 * loads and finds a CBLAS (OpenBLAS on Debian), the wasm kernels BatchMatMul and _FusedMatMul
 * are replaced by versions that call cblas_sgemm directly on the wasm heap — no copies, any
 * transpose, batched, multithreaded — products of a few rows (sampling) too: measured on the
 * 2-core machine, sgemm beat XNNPACK there as well (e.g. [32, 128]·[128, 512] 0.11 vs 0.34 ms,
 * [8, 576]·[576, 576] 0.12 vs 0.20 ms). Cases they do not cover (other activations, uncommon
 * broadcasts, non-float inputs) go to the original kernels, which also stay registered-aside
 * so the fast path can be switched off again (tests compare the two).
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
}

/** The parts of the wasm backend this module touches. */
interface WasmBackendLike {
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

const KERNELS = ["BatchMatMul", "_FusedMatMul"] as const;
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
    active = false;
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
  active = true;
  return true;
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
    const backend = args.backend as unknown as WasmBackendLike;
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
    const off = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset / 4;
    a.gemmBatched(
      backend.wasm.HEAPU8.buffer,
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
