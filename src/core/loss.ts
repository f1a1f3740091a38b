/**
 * The GRPO policy loss on plain arrays: clipped surrogate (token- or sequence-level importance
 * ratio) or CISPO's clipped importance weight, KL to a reference policy, entropy bonus, loss
 * masks and the aggregations, with the
 * analytic gradient with respect to the policy's log-probabilities. This is the reference the
 * tensor implementation is tested against; docs/algorithm.md has the equations.
 *
 * Positions where the mask is 0 are never read, so padding may hold anything (NaN, −Infinity).
 */

import {
  epsilonHighOf,
  GRPO_DEFAULTS,
  type GrpoConfig,
  type ImportanceSamplingLevel,
  type KlEstimator,
  type LossType,
} from "./config.ts";

export type { ImportanceSamplingLevel, KlEstimator, LossType } from "./config.ts";

/** The loss's part of GrpoConfig (same names); what is left out takes GRPO_DEFAULTS' value. */
export type PolicyLossConfig = Partial<
  Pick<
    GrpoConfig,
    | "epsilon"
    | "epsilonHigh"
    | "beta"
    | "klEstimator"
    | "entropyCoef"
    | "lossType"
    | "importanceSamplingLevel"
  >
> & {
  /**
   * dr_grpo's fixed length. A trainer passes its maxCompletionLength; the loss on its own knows no
   * limit and takes the widest row of the batch.
   */
  maxCompletionLength?: number;
  /** dapo's normaliser; defaults to the active tokens of this batch. */
  activeTokensInAccumulatedBatch?: number;
};

/** A PolicyLossConfig with every default filled in; the tensor loss takes the same. */
export interface ResolvedLossConfig {
  epsilon: number;
  epsilonHigh: number;
  /** 0 skips the reference entirely. */
  beta: number;
  klEstimator: KlEstimator;
  entropyCoef: number;
  lossType: LossType;
  importanceSamplingLevel: ImportanceSamplingLevel;
  maxCompletionLength?: number;
}

/** Fills in GRPO_DEFAULTS, so the array loss and the tensor loss read one set of defaults. */
export function resolveLossConfig(cfg: PolicyLossConfig = {}): ResolvedLossConfig {
  const epsilon = cfg.epsilon ?? GRPO_DEFAULTS.epsilon;
  return {
    epsilon,
    epsilonHigh: epsilonHighOf({ epsilon, epsilonHigh: cfg.epsilonHigh }),
    beta: cfg.beta ?? GRPO_DEFAULTS.beta,
    klEstimator: cfg.klEstimator ?? GRPO_DEFAULTS.klEstimator,
    entropyCoef: cfg.entropyCoef ?? GRPO_DEFAULTS.entropyCoef,
    lossType: cfg.lossType ?? GRPO_DEFAULTS.lossType,
    importanceSamplingLevel: cfg.importanceSamplingLevel ?? GRPO_DEFAULTS.importanceSamplingLevel,
    maxCompletionLength: cfg.maxCompletionLength,
  };
}

/** One row per completion, one column per completion token; all arrays share that shape. */
export interface SequenceBatch {
  logp: number[][];
  /** Log-probabilities under the policy that sampled the completions (constants). */
  oldLogp: number[][];
  refLogp?: number[][];
  /** Per-token entropy of the current policy, used as given (no gradient flows through it here). */
  entropy?: number[][];
  /** One advantage per completion. */
  advantages: number[];
  /** 1 = trained token, 0 = padding, tool output or truncated. */
  mask: number[][];
}

export interface PolicyLossResult {
  /** Aggregated surrogate + β·KL − α·H. */
  loss: number;
  /** Aggregated clipped surrogate alone. */
  policyLoss: number;
  /** Mean KL estimate over active tokens (0 without `refLogp`). */
  kl: number;
  /** Mean entropy over active tokens (0 without `entropy`). */
  entropy: number;
  /** Fraction of active tokens with ρ < 1 − epsilon and A < 0 (always 0 under cispo, which has no lower clip). */
  clipRatioLow: number;
  /** Fraction of active tokens with ρ > 1 + epsilonHigh and A > 0 (under cispo: whose weight is capped). */
  clipRatioHigh: number;
  /**
   * d loss / d logp[i][t], analytic (0 on masked positions). Covers the surrogate and the KL term;
   * the entropy term's gradient is not included because entropy is an input here, not a function
   * of logp — the caller differentiates H through its own logits.
   */
  gradLogp: number[][];
}

export function klEstimate(logp: number, refLogp: number, kind: KlEstimator): number {
  const d = refLogp - logp;
  switch (kind) {
    case "k1":
      return -d;
    case "k2":
      return 0.5 * d * d;
    case "k3":
      // expm1 keeps precision when the two policies are close (d ≈ 0), where k3 ≈ d²/2.
      return Math.expm1(d) - d;
    default:
      throw new RangeError(`klEstimator: expected "k1", "k2" or "k3", got ${JSON.stringify(kind)}`);
  }
}

/** d klEstimate / d logp. */
export function klEstimateGrad(logp: number, refLogp: number, kind: KlEstimator): number {
  const d = refLogp - logp;
  switch (kind) {
    case "k1":
      return 1;
    case "k2":
      return -d;
    case "k3":
      return -Math.expm1(d);
    default:
      throw new RangeError(`klEstimator: expected "k1", "k2" or "k3", got ${JSON.stringify(kind)}`);
  }
}

function checkBinaryRows(name: string, rows: number[][], like?: number[][]): void {
  if (like && rows.length !== like.length) {
    throw new RangeError(`${name}: ${rows.length} rows, expected ${like.length}`);
  }
  rows.forEach((row, i) => {
    if (like && row.length !== like[i]!.length) {
      throw new RangeError(`${name}[${i}]: length ${row.length}, expected ${like[i]!.length}`);
    }
    row.forEach((v, t) => {
      if (v !== 0 && v !== 1) throw new RangeError(`${name}[${i}][${t}]: expected 0 or 1, got ${String(v)}`);
    });
  });
}

/**
 * completion mask × tool mask × truncation mask. Tool/environment tokens are context the policy
 * did not choose, so they are never trained. The truncation mask is either per token or one
 * value per sequence (0 drops a whole truncated completion).
 */
export function buildMask(
  completionMask: number[][],
  toolMask?: number[][],
  truncationMask?: number[][] | number[],
): number[][] {
  checkBinaryRows("completionMask", completionMask);
  if (toolMask) checkBinaryRows("toolMask", toolMask, completionMask);
  let perSequence: number[] | undefined;
  let perToken: number[][] | undefined;
  if (truncationMask) {
    if (truncationMask.length !== completionMask.length) {
      throw new RangeError(
        `truncationMask: ${truncationMask.length} rows, expected ${completionMask.length}`,
      );
    }
    if (truncationMask.every((r) => typeof r === "number")) {
      perSequence = truncationMask as number[];
      perSequence.forEach((v, i) => {
        if (v !== 0 && v !== 1)
          throw new RangeError(`truncationMask[${i}]: expected 0 or 1, got ${String(v)}`);
      });
    } else if (truncationMask.every((r) => Array.isArray(r))) {
      perToken = truncationMask as number[][];
      checkBinaryRows("truncationMask", perToken, completionMask);
    } else {
      throw new RangeError("truncationMask: mixes per-sequence numbers and per-token rows");
    }
  }
  return completionMask.map((row, i) =>
    row.map(
      (m, t) =>
        m *
        (toolMask ? toolMask[i]![t]! : 1) *
        (perSequence ? perSequence[i]! : 1) *
        (perToken ? perToken[i]![t]! : 1),
    ),
  );
}

export interface AggregateOptions {
  maxCompletionLength?: number;
  activeTokensInAccumulatedBatch?: number;
}

function countActive(mask: number[][]): number {
  let n = 0;
  for (const row of mask) for (const m of row) if (m !== 0) n++;
  return n;
}

/**
 * The weight w[i][t] each active token's value gets in the aggregated loss (loss = Σ w·v):
 *   grpo    1 / (B · n_i)        mean over sequences of per-sequence means; a sequence with n_i = 0
 *                                contributes 0 but still counts in B (as in TRL)
 *   bnpo    1 / N                N = active tokens in this batch
 *   dr_grpo 1 / (B · L)          L = maxCompletionLength (default: widest row)
 *   dapo    1 / N_acc            N_acc = active tokens in the accumulated batch (default N)
 *   cispo   1 / N_acc            as dapo (TRL and MiniMax-M1 normalise CISPO by the active tokens)
 * Every denominator is clamped to ≥ 1 so an all-masked batch aggregates to 0, never NaN.
 */
export function aggregationWeights(
  mask: number[][],
  lossType: LossType,
  opts: AggregateOptions = {},
): number[][] {
  const B = mask.length;
  switch (lossType) {
    case "grpo":
      return mask.map((row) => {
        const n = Math.max(1, countActive([row]));
        return row.map((m) => (m !== 0 ? 1 / (B * n) : 0));
      });
    case "bnpo": {
      const n = Math.max(1, countActive(mask));
      return mask.map((row) => row.map((m) => (m !== 0 ? 1 / n : 0)));
    }
    case "dr_grpo": {
      const L = opts.maxCompletionLength ?? Math.max(0, ...mask.map((r) => r.length));
      if (!(L >= 0) || !Number.isFinite(L))
        throw new RangeError(`maxCompletionLength: must be ≥ 0, got ${L}`);
      const d = Math.max(1, B * L);
      return mask.map((row) => row.map((m) => (m !== 0 ? 1 / d : 0)));
    }
    case "dapo":
    case "cispo": {
      const nAcc = opts.activeTokensInAccumulatedBatch ?? countActive(mask);
      if (!(nAcc >= 0) || !Number.isFinite(nAcc)) {
        throw new RangeError(`activeTokensInAccumulatedBatch: must be ≥ 0, got ${nAcc}`);
      }
      const d = Math.max(1, nAcc);
      return mask.map((row) => row.map((m) => (m !== 0 ? 1 / d : 0)));
    }
    default:
      throw new RangeError(
        `lossType: expected "grpo", "bnpo", "dr_grpo", "dapo" or "cispo", got ${JSON.stringify(lossType)}`,
      );
  }
}

/** Aggregates per-token values into a scalar loss; see aggregationWeights for the rules. */
export function aggregate(
  values: number[][],
  mask: number[][],
  lossType: LossType,
  opts: AggregateOptions = {},
): number {
  checkBinaryRows("mask", mask);
  if (values.length !== mask.length)
    throw new RangeError(`values: ${values.length} rows, expected ${mask.length}`);
  const w = aggregationWeights(mask, lossType, opts);
  let total = 0;
  values.forEach((row, i) => {
    if (row.length !== mask[i]!.length) {
      throw new RangeError(`values[${i}]: length ${row.length}, expected ${mask[i]!.length}`);
    }
    row.forEach((v, t) => {
      if (mask[i]![t] !== 0) total += w[i]![t]! * v;
    });
  });
  return total;
}

function checkFiniteActive(name: string, rows: number[][], mask: number[][]): void {
  if (rows.length !== mask.length)
    throw new RangeError(`batch.${name}: ${rows.length} rows, expected ${mask.length}`);
  rows.forEach((row, i) => {
    if (row.length !== mask[i]!.length) {
      throw new RangeError(
        `batch.${name}[${i}]: length ${row.length}, expected ${mask[i]!.length} (mask[${i}])`,
      );
    }
    row.forEach((v, t) => {
      if (mask[i]![t] !== 0 && !Number.isFinite(v)) {
        throw new RangeError(
          `batch.${name}[${i}][${t}]: must be finite on an active token, got ${String(v)}`,
        );
      }
    });
  });
}

/** −min(ρA, clip(ρ)A) and its derivative with respect to ρ. */
function clippedSurrogate(
  ratio: number,
  adv: number,
  lo: number,
  hi: number,
): { value: number; dRatio: number } {
  const unclipped = ratio * adv;
  const clipped = Math.min(Math.max(ratio, lo), hi) * adv;
  // When the clipped branch is strictly smaller, ρ sits outside the trust region on the side the
  // advantage pushes towards, and the clipped value is flat in ρ: no gradient.
  if (clipped < unclipped) return { value: -clipped, dRatio: 0 };
  return { value: -unclipped, dRatio: -adv };
}

/**
 * CISPO's term −sg(ŵ)·A·log π with ŵ = min(ρ, hi): the weight is clipped and held constant, so
 * every token keeps a gradient −ŵ·A (none is dropped by the clip, unlike the surrogate's).
 */
function cispoTerm(ratio: number, adv: number, hi: number, logp: number): { value: number; dLogp: number } {
  const w = Math.min(ratio, hi);
  return { value: -w * adv * logp, dLogp: -w * adv };
}

export function policyLoss(batch: SequenceBatch, cfg: PolicyLossConfig = {}): PolicyLossResult {
  const {
    epsilon: epsLow,
    epsilonHigh: epsHigh,
    beta,
    klEstimator: kind,
    entropyCoef: alpha,
    lossType,
    importanceSamplingLevel: sampling,
  } = resolveLossConfig(cfg);
  if (!(epsLow >= 0) || !(epsHigh >= 0))
    throw new RangeError(`epsilon/epsilonHigh: must be ≥ 0, got ${epsLow}, ${epsHigh}`);
  if (!Number.isFinite(beta) || beta < 0)
    throw new RangeError(`beta: must be a finite number ≥ 0, got ${beta}`);
  if (!Number.isFinite(alpha)) throw new RangeError(`entropyCoef: must be finite, got ${alpha}`);
  if (sampling !== "token" && sampling !== "sequence") {
    throw new RangeError(
      `importanceSamplingLevel: expected "token" or "sequence", got ${JSON.stringify(sampling)}`,
    );
  }
  klEstimate(0, 0, kind); // validates the estimator name up front

  const { mask, advantages } = batch;
  checkBinaryRows("batch.mask", mask);
  checkFiniteActive("logp", batch.logp, mask);
  checkFiniteActive("oldLogp", batch.oldLogp, mask);
  if (batch.refLogp) checkFiniteActive("refLogp", batch.refLogp, mask);
  if (batch.entropy) checkFiniteActive("entropy", batch.entropy, mask);
  if (beta > 0 && !batch.refLogp) throw new RangeError("batch.refLogp: required when beta > 0");
  if (alpha !== 0 && !batch.entropy) throw new RangeError("batch.entropy: required when entropyCoef ≠ 0");
  if (advantages.length !== mask.length) {
    throw new RangeError(
      `batch.advantages: ${advantages.length} values, expected ${mask.length} (one per sequence)`,
    );
  }
  advantages.forEach((a, i) => {
    if (!Number.isFinite(a)) throw new RangeError(`batch.advantages[${i}]: must be finite, got ${String(a)}`);
  });

  const w = aggregationWeights(mask, lossType, cfg);
  const cispo = lossType === "cispo";
  const lo = 1 - epsLow;
  const hi = 1 + epsHigh;
  let loss = 0;
  let policy = 0;
  let klSum = 0;
  let entSum = 0;
  let lowCount = 0;
  let highCount = 0;
  let active = 0;
  const gradLogp = mask.map((row) => row.map(() => 0));

  mask.forEach((mrow, i) => {
    const A = advantages[i]!;
    const lp = batch.logp[i]!;
    const old = batch.oldLogp[i]!;
    const g = gradLogp[i]!;
    let n = 0;
    let logRatioSum = 0;
    for (let t = 0; t < mrow.length; t++) {
      if (mrow[t] === 0) continue;
      n++;
      logRatioSum += lp[t]! - old[t]!;
    }
    // GSPO: one ratio for the whole sequence, exp of the mean token log-ratio.
    const seqRatio = Math.exp(logRatioSum / Math.max(1, n));
    const seqSur = clippedSurrogate(seqRatio, A, lo, hi);
    let seqWeight = 0; // Σ_t w[i][t]: how much the shared sequence surrogate weighs in the loss

    for (let t = 0; t < mrow.length; t++) {
      if (mrow[t] === 0) continue;
      active++;
      const wt = w[i]![t]!;
      const ratio = sampling === "token" ? Math.exp(lp[t]! - old[t]!) : seqRatio;
      let sur: { value: number };
      if (cispo) {
        // The weight is a constant, so the sequence ratio needs no chain rule either.
        const c = cispoTerm(ratio, A, hi, lp[t]!);
        sur = c;
        g[t] = wt * c.dLogp;
      } else {
        const s = sampling === "token" ? clippedSurrogate(ratio, A, lo, hi) : seqSur;
        sur = s;
        if (sampling === "token") g[t] = wt * s.dRatio * ratio;
        else seqWeight += wt;
        if (ratio < lo && A < 0) lowCount++;
      }
      if (ratio > hi && A > 0) highCount++;
      let perToken = sur.value;
      if (batch.refLogp) {
        const kl = klEstimate(lp[t]!, batch.refLogp[i]![t]!, kind);
        klSum += kl;
        if (beta > 0) {
          perToken += beta * kl;
          g[t] = g[t]! + wt * beta * klEstimateGrad(lp[t]!, batch.refLogp[i]![t]!, kind);
        }
      }
      if (batch.entropy) {
        entSum += batch.entropy[i]![t]!;
        perToken -= alpha * batch.entropy[i]![t]!;
      }
      policy += wt * sur.value;
      loss += wt * perToken;
    }
    if (sampling === "sequence" && !cispo && n > 0) {
      // d seqRatio / d logp[t] = seqRatio / n for every active token.
      const d = (seqWeight * seqSur.dRatio * seqRatio) / n;
      for (let t = 0; t < mrow.length; t++) if (mrow[t] !== 0) g[t] = g[t]! + d;
    }
  });

  const denom = Math.max(1, active);
  return {
    loss,
    policyLoss: policy,
    kl: klSum / denom,
    entropy: entSum / denom,
    clipRatioLow: lowCount / denom,
    clipRatioHigh: highCount / denom,
    gradLogp,
  };
}
