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
  trainableTokens: "trainable_tokens",
  completionTokens: "completion_tokens",
  stepTime: "step_time",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** What the length metrics need of one completion. */
export interface CompletionTokens {
  /** Tokens after the prompt: everything generated, tool results of a multi-turn episode included. */
  tokens: number;
  /** Of those, the tokens with loss mask 1. */
  trainable: number;
  /** True when the completion hit a length limit before it ended (no eos). */
  truncated: boolean;
}

/**
 * The one definition of the completion metrics: `completions/mean_length` (mean tokens after the
 * prompt), `completions/clipped_ratio` (share of completions cut by a length limit, whose reward
 * may say little), `trainable_tokens` and `completion_tokens` (sums), and `trainable_tokens_ratio`
 * = trainable / completion tokens (below 1 when tool output or truncation is masked out).
 */
export function completionMetrics(completions: readonly CompletionTokens[]): Record<string, number> {
  let tokens = 0;
  let trainable = 0;
  let clipped = 0;
  completions.forEach((c, i) => {
    if (!Number.isInteger(c.tokens) || c.tokens < 0)
      throw new RangeError(`completions[${i}].tokens: expected an integer ≥ 0, got ${c.tokens}`);
    if (!Number.isInteger(c.trainable) || c.trainable < 0 || c.trainable > c.tokens)
      throw new RangeError(
        `completions[${i}].trainable: expected an integer in 0..${c.tokens}, got ${c.trainable}`,
      );
    tokens += c.tokens;
    trainable += c.trainable;
    if (c.truncated) clipped++;
  });
  const n = completions.length;
  return {
    [METRICS.completionsMeanLength]: n === 0 ? 0 : tokens / n,
    [METRICS.completionsClippedRatio]: n === 0 ? 0 : clipped / n,
    [METRICS.trainableTokens]: trainable,
    [METRICS.completionTokens]: tokens,
    [METRICS.trainableTokensRatio]: tokens === 0 ? 0 : trainable / tokens,
  };
}
