import * as tf from "@tensorflow/tfjs-core";
import "../model/gradients.ts";
import type { KlEstimator, ResolvedLossConfig } from "../core/loss.ts";

/**
 * The GRPO objective on tensors. It mirrors the plain-array reference in `src/core/loss.ts`
 * term by term (the tests hold the two equal on the same numbers), so that every formula has
 * one readable definition and one fast one.
 */

/** Every option resolved, by core's resolveLossConfig: both losses read one set of defaults. */
export type GrpoLossConfig = ResolvedLossConfig;
export { resolveLossConfig } from "../core/loss.ts";

export interface GrpoLossInputs {
  /** log π_θ of each completion token, [B, T]; the tensor gradients flow through. */
  logp: tf.Tensor2D;
  /** log π_old (the sampling policy), [B, T]; a constant. */
  oldLogp: tf.Tensor2D;
  /** log π_ref, [B, T]; required when β > 0. */
  refLogp?: tf.Tensor2D;
  /** per-token entropy of π_θ, [B, T]; required when entropyCoef > 0. */
  entropy?: tf.Tensor2D;
  /** one advantage per completion, [B]. */
  advantages: tf.Tensor1D;
  /** 1 for trained tokens, 0 for padding, tool output and masked-out truncations, [B, T]. */
  mask: tf.Tensor2D;
  /**
   * `dapo` divides by the active tokens of the whole accumulated batch; when a step is split
   * into micro-batches, pass that total here. Defaults to this batch's active tokens.
   */
  activeTokensInBatch?: number;
}

export interface GrpoLossTensors {
  /** the scalar that is minimised. */
  loss: tf.Scalar;
  /** the clipped surrogate alone, aggregated like `loss`. */
  policyLoss: tf.Scalar;
  /** masked token mean of the KL estimate (0 when β = 0 and no reference is given). */
  kl: tf.Scalar;
  /** masked token mean of the entropy (0 when none is given). */
  entropy: tf.Scalar;
  /** share of active tokens whose ratio fell below 1−ε_low with A < 0 (the clip binds). */
  clipRatioLow: tf.Scalar;
  /** share of active tokens whose ratio rose above 1+ε_high with A > 0. */
  clipRatioHigh: tf.Scalar;
}

function klTerm(logp: tf.Tensor2D, refLogp: tf.Tensor2D, estimator: KlEstimator): tf.Tensor2D {
  const d = tf.sub(refLogp, logp) as tf.Tensor2D; // log(π_ref / π_θ)
  switch (estimator) {
    case "k1":
      return tf.neg(d);
    case "k2":
      return tf.mul(0.5, tf.square(d));
    case "k3":
      return tf.sub(tf.sub(tf.exp(d), d), 1);
  }
}

function aggregate(
  perToken: tf.Tensor2D,
  mask: tf.Tensor2D,
  tokensPerRow: tf.Tensor1D,
  cfg: GrpoLossConfig,
  activeTokensInBatch: number | undefined,
): tf.Scalar {
  const masked = tf.mul(perToken, mask);
  switch (cfg.lossType) {
    case "grpo": {
      const perSeq = tf.div(tf.sum(masked, 1), tf.maximum(tokensPerRow, 1));
      return tf.mean(perSeq);
    }
    case "bnpo":
      return tf.div(tf.sum(masked), tf.maximum(tf.sum(mask), 1));
    case "dapo":
    case "cispo": {
      const denom = activeTokensInBatch ?? tf.maximum(tf.sum(mask), 1);
      return tf.div(tf.sum(masked), typeof denom === "number" ? Math.max(denom, 1) : denom);
    }
    case "dr_grpo":
      return tf.div(
        tf.sum(masked),
        Math.max(1, perToken.shape[0] * (cfg.maxCompletionLength ?? perToken.shape[1])),
      );
  }
}

/**
 * Per token: ρ = exp(logπθ − logπold) (or GSPO's exp of the masked mean log-ratio of the
 * row), surrogate −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) — or under `cispo`
 * −sg(min(ρ, 1+ε_high))·A·logπθ — plus β·KL, minus α·H; then the aggregation chosen by
 * `lossType`. Call inside `tf.tidy` / a gradient function.
 */
export function grpoLossTensors(inp: GrpoLossInputs, cfg: GrpoLossConfig): GrpoLossTensors {
  const { logp, oldLogp, mask } = inp;
  if (cfg.beta > 0 && !inp.refLogp) throw new Error("grpoLoss: beta > 0 needs refLogp");
  if (cfg.entropyCoef !== 0 && !inp.entropy) throw new Error("grpoLoss: entropyCoef ≠ 0 needs entropy");
  const [B, T] = logp.shape;
  for (const [name, t] of [
    ["oldLogp", oldLogp],
    ["mask", mask],
    ["refLogp", inp.refLogp],
    ["entropy", inp.entropy],
  ] as const) {
    if (t && (t.shape[0] !== B || t.shape[1] !== T)) {
      throw new Error(`grpoLoss: ${name} has shape [${t.shape}], expected [${B},${T}]`);
    }
  }
  if (inp.advantages.shape[0] !== B)
    throw new Error(`grpoLoss: advantages has ${inp.advantages.shape[0]} rows, expected ${B}`);

  const tokensPerRow = tf.sum(mask, 1) as tf.Tensor1D;
  // Padding may hold anything (−∞, NaN); selecting instead of multiplying keeps it out of the
  // values and out of the gradient, since 0·NaN is NaN.
  const on = tf.greater(mask, 0);
  const zeros = tf.zerosLike(logp);
  const clean = (t: tf.Tensor2D) => tf.where(on, t, zeros) as tf.Tensor2D;
  const logRatio = clean(tf.sub(logp, oldLogp) as tf.Tensor2D);
  let ratio: tf.Tensor2D;
  if (cfg.importanceSamplingLevel === "sequence") {
    const seqLogRatio = tf.div(tf.sum(logRatio, 1), tf.maximum(tokensPerRow, 1));
    ratio = tf.tile(tf.expandDims(tf.exp(seqLogRatio), 1), [1, T]) as tf.Tensor2D;
  } else {
    ratio = tf.exp(logRatio);
  }
  const adv = tf.expandDims(inp.advantages, 1) as tf.Tensor2D;
  const cispo = cfg.lossType === "cispo";
  let surrogate: tf.Tensor2D;
  if (cispo) {
    // −sg(min(ρ, 1+ε_high))·A·log π: the weight is a constant, the gradient flows through log π.
    const weight = stopGradient(tf.minimum(ratio, 1 + cfg.epsilonHigh));
    surrogate = tf.neg(tf.mul(tf.mul(weight, adv), clean(logp))) as tf.Tensor2D;
  } else {
    const unclipped = tf.mul(ratio, adv);
    const clipped = tf.mul(tf.clipByValue(ratio, 1 - cfg.epsilon, 1 + cfg.epsilonHigh), adv);
    surrogate = tf.neg(tf.minimum(unclipped, clipped)) as tf.Tensor2D;
  }

  let perToken: tf.Tensor2D = surrogate;
  const activeTokens = tf.maximum(tf.sum(mask), 1);
  let klMean: tf.Scalar = tf.scalar(0);
  if (inp.refLogp) {
    const kl = clean(klTerm(clean(logp), clean(inp.refLogp), cfg.klEstimator));
    klMean = tf.div(tf.sum(tf.mul(kl, mask)), activeTokens);
    if (cfg.beta > 0) perToken = tf.add(perToken, tf.mul(cfg.beta, kl));
  }
  let entropyMean: tf.Scalar = tf.scalar(0);
  if (inp.entropy) {
    const ent = clean(inp.entropy);
    entropyMean = tf.div(tf.sum(tf.mul(ent, mask)), activeTokens);
    if (cfg.entropyCoef !== 0) perToken = tf.sub(perToken, tf.mul(cfg.entropyCoef, ent));
  }

  // CISPO has no lower clip.
  const lowClipped = cispo
    ? tf.zeros(ratio.shape, "bool")
    : tf.logicalAnd(tf.less(ratio, 1 - cfg.epsilon), tf.less(adv, 0));
  const highClipped = tf.logicalAnd(tf.greater(ratio, 1 + cfg.epsilonHigh), tf.greater(adv, 0));
  const share = (b: tf.Tensor) =>
    tf.div(tf.sum(tf.mul(tf.cast(b, "float32"), mask)), activeTokens) as tf.Scalar;

  return {
    loss: aggregate(perToken, mask, tokensPerRow, cfg, inp.activeTokensInBatch),
    policyLoss: aggregate(surrogate, mask, tokensPerRow, cfg, inp.activeTokensInBatch),
    kl: klMean,
    entropy: entropyMean,
    clipRatioLow: share(lowClipped),
    clipRatioHigh: share(highClipped),
  };
}

/**
 * Identity forward, zero backward: tfjs has no stop-gradient op, and with μ = 1 the "old"
 * log-probs are the current ones held constant (ratio 1, gradient −A·∇logπ).
 */
export const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as <T extends tf.Tensor>(x: T) => T;
