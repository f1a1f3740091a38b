/**
 * What every model of the engine offers — the project's own GPT and the Hugging Face
 * architectures alike — so that the sampler, the trainer and the file code are written once.
 */
import * as tf from "@tensorflow/tfjs-core";

/** Per-layer attention keys and values, [B, H_kv, T, head_dim] each. */
export type KVCache = {
  k: tf.Tensor4D[];
  v: tf.Tensor4D[];
};

/** What batched KV-cache sampling needs (see ./sampler.ts). */
export interface DecoderModel {
  readonly vocabSize: number;
  /** the longest sequence the model takes (positions beyond it are not defined). */
  readonly contextLength: number;
  /**
   * Incremental forward. `ids`/`positions` are [B, Tq]; `mask` is an additive [B, 1, Tq, Tk]
   * mask where Tk = cached length + Tq. Returns last-position logits [B, V] and the grown cache
   * (new tensors; the caller disposes the old cache).
   */
  forwardCached(
    ids: tf.Tensor2D,
    positions: tf.Tensor2D,
    mask: tf.Tensor4D,
    cache: KVCache | null,
  ): { logits: tf.Tensor2D; cache: KVCache };
}

/**
 * A trainable causal LM: what the parametric trainer needs (src/rl PolicyModel has the same
 * shape) plus sampling.
 */
export interface CausalLM extends DecoderModel {
  /** The enabled LoRA adapters' settings, or null (then every weight trains). */
  readonly loraConfig: {
    readonly r: number;
    readonly alpha: number;
    readonly targetModules: readonly string[];
  } | null;
  /** logits [B, T, V] for int32 ids [B, T] (causal). */
  forward(ids: tf.Tensor2D): tf.Tensor3D;
  /** log π(ids[:, t+1] | ids[:, ≤t]) for t = 0..T-2 → [B, T-1], optionally the entropy per position. */
  tokenLogprobs(
    ids: tf.Tensor2D,
    opts?: { withEntropy?: boolean },
  ): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D };
  /** In a fixed order: optimizer state is matched to variables by position. */
  trainableVariables(): tf.Variable[];
  /** name → live variable (do not dispose), in the model's in-memory layout. */
  namedWeights(): Record<string, tf.Tensor>;
  loadNamedWeights(w: Record<string, tf.Tensor>, opts?: { partial?: boolean; source?: string }): void;
  clone(): CausalLM;
  dispose(): void;
}

/**
 * Copies `w` into the live variables `own` (name → variable). Every name must be known and
 * shape-matched; unless `partial`, every variable of `own` must be given too.
 */
export function assignNamedWeights(
  own: Record<string, tf.Tensor>,
  w: Record<string, tf.Tensor>,
  opts?: { partial?: boolean; source?: string },
): void {
  const where = opts?.source ? `${opts.source}: ` : "";
  for (const [name, t] of Object.entries(w)) {
    const target = own[name];
    if (!target) {
      const hint = name.includes("lora_") ? " (enable LoRA with a matching config first)" : "";
      throw new Error(`${where}unknown weight "${name}"${hint}`);
    }
    if (!tf.util.arraysEqual(target.shape, t.shape)) {
      throw new Error(
        `${where}shape mismatch for "${name}": expected [${target.shape.join(", ")}], got [${t.shape.join(", ")}]`,
      );
    }
  }
  if (!opts?.partial) {
    const missing = Object.keys(own).filter((n) => !(n in w));
    if (missing.length > 0) {
      throw new Error(
        `${where}missing weights: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`,
      );
    }
  }
  for (const [name, t] of Object.entries(w)) {
    (own[name] as tf.Variable).assign(t.dtype === "float32" ? t : tf.cast(t, "float32"));
  }
}

/** Additive causal mask [T, T] (0 on and below the diagonal, −1e9 above). */
export function causalMaskData(T: number): Float32Array {
  const data = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) data[i * T + j] = -1e9;
  return data;
}
