/** Metric names shared by every trainer, so logs from both GRPO flavours read the same. */
export const METRICS = {
  reward: "reward",
  rewardStd: "reward_std",
  fracRewardZeroStd: "frac_reward_zero_std",
  kl: "kl",
  entropy: "entropy",
  clipRatioLowMean: "clip_ratio/low_mean",
  clipRatioHighMean: "clip_ratio/high_mean",
  completionsMeanLength: "completions/mean_length",
  completionsClippedRatio: "completions/clipped_ratio",
  trainableTokensRatio: "trainable_tokens_ratio",
  stepTime: "step_time",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/**
 * Length metrics of a batch: mean completion length, fraction that hit the length limit
 * (truncated, so their reward may be unreliable), and the fraction of completion tokens that are
 * trained (below 1 when tool output or truncation is masked out).
 */
export function completionMetrics(
  lengths: readonly number[],
  maxCompletionLength: number,
  trainableTokens?: number,
): Record<string, number> {
  const n = lengths.length;
  let sum = 0;
  let clipped = 0;
  lengths.forEach((len, i) => {
    if (!Number.isInteger(len) || len < 0)
      throw new RangeError(`lengths[${i}]: expected an integer ≥ 0, got ${len}`);
    sum += len;
    if (len >= maxCompletionLength) clipped++;
  });
  const out: Record<string, number> = {
    [METRICS.completionsMeanLength]: n === 0 ? 0 : sum / n,
    [METRICS.completionsClippedRatio]: n === 0 ? 0 : clipped / n,
  };
  if (trainableTokens !== undefined)
    out[METRICS.trainableTokensRatio] = sum === 0 ? 0 : trainableTokens / sum;
  return out;
}
