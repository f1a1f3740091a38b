import * as tf from "@tensorflow/tfjs-core";
import { type GrpoLossConfig, grpoLossTensors, stopGradient } from "./loss.ts";
import type { GrpoBatch, PolicyModel } from "./types.ts";

export interface UpdateConfig {
  loss: GrpoLossConfig;
  /** μ: gradient passes over the same batch; > 1 makes the clip matter. */
  iterations: number;
  /** global-norm clipping threshold; ≤ 0 disables it. */
  maxGradNorm: number;
}

export interface UpdateMetrics {
  loss: number;
  policyLoss: number;
  kl: number;
  entropy: number;
  clipRatioLow: number;
  clipRatioHigh: number;
  /** global gradient norm of the last pass, before clipping. */
  gradNorm: number;
}

function completionSlice(logprobs: tf.Tensor2D, promptLength: number, completionLength: number): tf.Tensor2D {
  // Position t of the model output scores ids[t+1]; completion token j sits at promptLength+j.
  return tf.slice(logprobs, [0, promptLength - 1], [logprobs.shape[0], completionLength]);
}

/** Square root of the summed squares of every gradient, and the gradients scaled to `maxNorm`. */
export function clipByGlobalNorm(
  grads: tf.NamedTensorMap,
  maxNorm: number,
): { grads: tf.NamedTensorMap; norm: number } {
  const names = Object.keys(grads);
  const norm = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!))))).dataSync()[0]!);
  if (maxNorm <= 0 || !(norm > maxNorm)) return { grads, norm };
  const scale = maxNorm / (norm + 1e-6);
  const out: tf.NamedTensorMap = {};
  for (const n of names) {
    out[n] = tf.mul(grads[n]!, scale);
    grads[n]!.dispose();
  }
  return { grads: out, norm };
}

/**
 * μ passes of the clipped surrogate on one batch, with KL to `reference` and the entropy
 * bonus, each followed by an optimizer step. Leaves no tensors behind.
 */
export function grpoUpdate(
  policy: PolicyModel,
  reference: PolicyModel | undefined,
  optimizer: tf.Optimizer,
  batch: GrpoBatch,
  cfg: UpdateConfig,
): UpdateMetrics {
  const B = batch.ids.length;
  if (B === 0) throw new Error("grpoUpdate: empty batch");
  const T = batch.ids[0]!.length;
  const L = T - batch.promptLength;
  if (batch.promptLength < 1 || L < 1)
    throw new Error(`grpoUpdate: need a prompt and a completion, got row length ${T}`);
  for (let i = 0; i < B; i++) {
    if (batch.ids[i]!.length !== T)
      throw new Error(`grpoUpdate: row ${i} has length ${batch.ids[i]!.length}, expected ${T}`);
    if (batch.mask[i]!.length !== L)
      throw new Error(`grpoUpdate: mask row ${i} has length ${batch.mask[i]!.length}, expected ${L}`);
  }
  const ids = tf.tensor2d(batch.ids.flat(), [B, T], "int32");
  const mask = tf.tensor2d(batch.mask.flat(), [B, L], "float32");
  const advantages = tf.tensor1d(batch.advantages, "float32");
  const needRef = cfg.loss.beta > 0 && reference !== undefined;
  const refLogp = needRef
    ? tf.tidy(() => completionSlice(reference.tokenLogprobs(ids).logprobs, batch.promptLength, L))
    : undefined;
  // With μ > 1 the later passes must compare against the policy that sampled, frozen now.
  const oldLogp =
    cfg.iterations > 1
      ? tf.tidy(() => completionSlice(policy.tokenLogprobs(ids).logprobs, batch.promptLength, L))
      : undefined;
  const vars = policy.trainableVariables();
  let metrics: UpdateMetrics | undefined;
  try {
    for (let pass = 0; pass < Math.max(1, cfg.iterations); pass++) {
      let stats: tf.Tensor1D | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = policy.tokenLogprobs(ids, { withEntropy: true });
        const logp = completionSlice(out.logprobs, batch.promptLength, L);
        const entropy = out.entropy ? completionSlice(out.entropy, batch.promptLength, L) : undefined;
        const r = grpoLossTensors(
          { logp, oldLogp: oldLogp ?? stopGradient(logp), refLogp, entropy, advantages, mask },
          cfg.loss,
        );
        stats = tf.keep(
          tf.stack([r.policyLoss, r.kl, r.entropy, r.clipRatioLow, r.clipRatioHigh]) as tf.Tensor1D,
        );
        return r.loss;
      }, vars);
      const clipped = clipByGlobalNorm(grads, cfg.maxGradNorm);
      optimizer.applyGradients(clipped.grads);
      tf.dispose(Object.values(clipped.grads));
      const s = stats!.dataSync();
      const loss = value.dataSync()[0]!;
      stats!.dispose();
      value.dispose();
      metrics = {
        loss,
        policyLoss: s[0]!,
        kl: s[1]!,
        entropy: s[2]!,
        clipRatioLow: s[3]!,
        clipRatioHigh: s[4]!,
        gradNorm: clipped.norm,
      };
    }
  } finally {
    tf.dispose([ids, mask, advantages]);
    if (refLogp) refLogp.dispose();
    if (oldLogp) oldLogp.dispose();
  }
  return metrics!;
}
