/**
 * Tensor backend selection. Every tensor op of the policy runs on one backend; mixing backends
 * in the hot loop would copy data on each op, so this is called once at start-up.
 */
import os from "node:os";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { setBlasKernels } from "./blas.ts";

export type BackendName = "wasm" | "cpu";

/**
 * Activates `name` (default wasm). If wasm cannot start, falls back to cpu and warns on stderr.
 * The thread count must be set before the wasm backend is first initialised; later calls only
 * switch between already-initialised backends.
 *
 * On wasm, matrix products go through the system BLAS when the native addon is built (see
 * ./blas.ts); `GRPO_BLAS=0` keeps tfjs's own kernels. Both give the same results up to float
 * rounding.
 */
export async function initBackend(name: BackendName = "wasm", threads?: number): Promise<BackendName> {
  if (name === "wasm") {
    try {
      setThreadsCount(threads ?? os.availableParallelism());
      const ok = await tf.setBackend("wasm");
      if (ok) {
        await tf.ready();
        shareIdentity();
        setBlasKernels(process.env.GRPO_BLAS !== "0", threads);
        return "wasm";
      }
    } catch (err) {
      process.stderr.write(`warning: wasm backend failed (${(err as Error).message}); using cpu\n`);
      await tf.setBackend("cpu");
      await tf.ready();
      quietCpuBanner();
      return "cpu";
    }
    process.stderr.write("warning: wasm backend unavailable; using cpu\n");
  }
  const ok = await tf.setBackend("cpu");
  if (!ok) throw new Error("tensor backend: cpu backend failed to initialise");
  await tf.ready();
  quietCpuBanner();
  return "cpu";
}

let identityShared = false;

/**
 * Makes the wasm backend's Identity (tf.clone, and the copy tfjs takes of every input an op's
 * gradient needs) share the input's buffer, as the cpu backend does, instead of copying it.
 * tfjs never writes into an existing buffer (a variable's assign swaps buffers), so sharing is
 * safe — and during a training step it halves memory and saves a copy per recorded op: with a
 * 50k-token embedding every gather alone cloned 113 MB.
 */
function shareIdentity(): void {
  if (identityShared) return;
  const orig = tf.getKernel("Identity", "wasm");
  if (!orig) return;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({
    ...orig,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === "string") return orig.kernelFunc(args);
      (args.backend as unknown as { incRef(id: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  });
  identityShared = true;
}

/** The cpu backend prints a banner recommending tfjs-node on first use; this project does not use it. */
function quietCpuBanner(): void {
  const be = tf.findBackend("cpu") as { firstUse?: boolean } | null;
  if (be && "firstUse" in be) be.firstUse = false;
}

/**
 * The backend in use; when nothing has chosen one yet, the default (wasm, see initBackend) is
 * initialised first. For library entry points that create tensors on the caller's behalf.
 */
export async function ensureBackend(): Promise<string> {
  const engine = tf.engine() as unknown as { backendInstance: unknown };
  if (engine.backendInstance != null) return tf.getBackend();
  return initBackend();
}
