/**
 * Matrix-product micro-benchmark on the wasm backend: the reference model's projection
 * ([2048, 128]·[128, 512]) and its attention products (32·4 matrices of [64, 32]·[32, 64]),
 * through tfjs-wasm's own kernels, as per-matrix 2-D products (XNNPACK), and through the BLAS
 * kernels when the native addon is built. Best of N timings; GFLOP/s = 2·m·n·k / time.
 *
 *   node --import tsx bench/engine-throughput/matmul.ts [--reps 20]
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../src/model/backend.ts";
import { blasStatus, setBlasKernels } from "../../src/model/blas.ts";

const reps = Number(process.argv[process.argv.indexOf("--reps") + 1] || 20) || 20;

/** Best time in ms of `reps` runs of f (its output is downloaded so lazy work counts). */
function best(f: () => tf.Tensor): number {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    const out = f();
    out.dataSync();
    const ms = performance.now() - t0;
    out.dispose();
    if (r > 0) min = Math.min(min, ms);
  }
  return min;
}

function line(label: string, ms: number, flops: number): void {
  process.stdout.write(
    `${label.padEnd(48)} ${ms.toFixed(2).padStart(8)} ms  ${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s\n`,
  );
}

export function measureMatmuls(): Record<string, number> {
  const x = tf.randomNormal([2048, 128], 0, 1, "float32", 1);
  const w = tf.randomNormal([128, 512], 0, 1, "float32", 2);
  const q = tf.randomNormal([32, 4, 64, 32], 0, 1, "float32", 3);
  const kt = tf.randomNormal([32, 4, 32, 64], 0, 1, "float32", 4);
  const projFlops = 2 * 2048 * 128 * 512;
  const attFlops = 2 * 128 * 64 * 32 * 64;
  const res: Record<string, number> = {};
  const run = (label: string, f: () => tf.Tensor, flops: number) => {
    const ms = best(f);
    res[label] = flops / ms / 1e6;
    line(label, ms, flops);
  };
  setBlasKernels(false);
  run("projection, wasm (XNNPACK)", () => tf.matMul(x, w), projFlops);
  run("projection transposeB, wasm", () => tf.matMul(x, tf.transpose(w), false, true), projFlops);
  run("attention QKᵀ batched, wasm", () => tf.matMul(q, kt), attFlops);
  run(
    "attention QKᵀ as 128 2-D products, wasm",
    () =>
      tf.tidy(() => {
        const qs = tf.unstack(tf.reshape(q, [128, 64, 32]));
        const ks = tf.unstack(tf.reshape(kt, [128, 32, 64]));
        return tf.stack(qs.map((a, i) => tf.matMul(a as tf.Tensor2D, ks[i] as tf.Tensor2D)));
      }),
    attFlops,
  );
  if (setBlasKernels(true)) {
    const s = blasStatus();
    const tag = `BLAS ${s.threads}t`;
    run(`projection, ${tag}`, () => tf.matMul(x, w), projFlops);
    run(`projection transposeB, ${tag}`, () => tf.matMul(x, tf.transpose(w), false, true), projFlops);
    run(`attention QKᵀ batched, ${tag}`, () => tf.matMul(q, kt), attFlops);
    run(
      `attention QKᵀ transposeB, ${tag}`,
      () => tf.matMul(q, tf.transpose(kt, [0, 1, 3, 2]), false, true),
      attFlops,
    );
  } else {
    process.stdout.write(`BLAS: unavailable (${blasStatus().reason ?? "not built"})\n`);
  }
  tf.dispose([x, w, q, kt]);
  return res;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await initBackend("wasm");
  setBlasKernels(false);
  measureMatmuls();
}
