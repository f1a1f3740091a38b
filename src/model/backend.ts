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

/** The cpu backend prints a banner recommending tfjs-node on first use; this project does not use it. */
function quietCpuBanner(): void {
  const be = tf.findBackend("cpu") as { firstUse?: boolean } | null;
  if (be && "firstUse" in be) be.firstUse = false;
}
