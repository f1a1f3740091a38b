/**
 * Group statistics and group-relative advantages (the "A" of GRPO), on plain arrays.
 * See docs/algorithm.md for the equations.
 */

import { GRPO_DEFAULTS, type ScaleRewards } from "./config.ts";

export type { ScaleRewards } from "./config.ts";

/** Added to σ before dividing, so a near-constant group does not blow advantages up. */
export const ADVANTAGE_EPS = 1e-4;
/** A group whose population std is at or below this carries no learning signal. */
export const ZERO_STD_TOL = 1e-8;

function checkRewards(rewards: readonly number[], where: string): void {
  for (let i = 0; i < rewards.length; i++) {
    const r = rewards[i];
    if (typeof r !== "number" || !Number.isFinite(r)) {
      throw new RangeError(`${where}[${i}]: reward must be a finite number, got ${String(r)}`);
    }
  }
}

/** Mean and population standard deviation (divides by G, not G − 1). Empty input gives 0, 0. */
export function groupStats(rewards: readonly number[]): { mean: number; std: number } {
  const n = rewards.length;
  if (n === 0) return { mean: 0, std: 0 };
  let sum = 0;
  for (const r of rewards) sum += r;
  const mean = sum / n;
  let sq = 0;
  for (const r of rewards) sq += (r - mean) * (r - mean);
  return { mean, std: Math.sqrt(sq / n) };
}

export interface AdvantageResult {
  /** Same shape as the input rewards. */
  advantages: number[][];
  groupMean: number[];
  /** Population std of each group (what the logs report, whatever `scaleRewards` is). */
  groupStd: number[];
  /** Groups whose rewards are all equal (σ ≤ zeroStdTol); their advantages are all 0. */
  zeroStdGroups: number;
  /** zeroStdGroups / number of groups (0 for an empty batch). */
  fracRewardZeroStd: number;
}

export interface AdvantageOptions {
  /** "group": divide by the group's σ; "batch": by the σ of all rewards; "none": Dr. GRPO, no division. */
  scaleRewards?: ScaleRewards;
  eps?: number;
  zeroStdTol?: number;
}

/**
 * A_i = (r_i − μ_group) / (σ + eps), σ being the group's or the whole batch's population std,
 * or A_i = r_i − μ_group when scaleRewards is "none". The mean is always the group's own, which is
 * what makes the advantage relative to the other completions of the same prompt.
 */
export function computeAdvantages(
  rewardsByGroup: readonly (readonly number[])[],
  opts: AdvantageOptions = {},
): AdvantageResult {
  const scale = opts.scaleRewards ?? GRPO_DEFAULTS.scaleRewards;
  const eps = opts.eps ?? ADVANTAGE_EPS;
  const tol = opts.zeroStdTol ?? ZERO_STD_TOL;
  if (scale !== "group" && scale !== "batch" && scale !== "none") {
    throw new RangeError(`scaleRewards: expected "group", "batch" or "none", got ${JSON.stringify(scale)}`);
  }
  if (!(eps >= 0)) throw new RangeError(`eps: must be ≥ 0, got ${eps}`);
  rewardsByGroup.forEach((g, i) => {
    if (g.length === 0) throw new RangeError(`rewardsByGroup[${i}]: a group needs at least one reward`);
    checkRewards(g, `rewardsByGroup[${i}]`);
  });

  const stats = rewardsByGroup.map(groupStats);
  const batchStd = groupStats(rewardsByGroup.flat()).std;
  const advantages = rewardsByGroup.map((g, gi) => {
    const { mean, std } = stats[gi]!;
    // An exactly-constant group gives r − μ = 0 already; forcing 0 also removes rounding noise
    // (e.g. 0.1 + 0.2 − μ) that division by eps would amplify into a spurious signal.
    if (std <= tol) return g.map(() => 0);
    const denom = scale === "group" ? std + eps : scale === "batch" ? batchStd + eps : 1;
    return g.map((r) => (r - mean) / denom);
  });
  const zeroStdGroups = stats.filter((s) => s.std <= tol).length;
  return {
    advantages,
    groupMean: stats.map((s) => s.mean),
    groupStd: stats.map((s) => s.std),
    zeroStdGroups,
    fracRewardZeroStd: rewardsByGroup.length === 0 ? 0 : zeroStdGroups / rewardsByGroup.length,
  };
}

/**
 * DAPO's dynamic sampling: drop the groups whose rewards are all equal (σ ≤ tol), since their
 * advantages are zero and they would only dilute the loss. `groups[i]` goes with `rewardsByGroup[i]`.
 */
export function dynamicSamplingFilter<T>(
  groups: T[],
  rewardsByGroup: number[][],
  tol: number = ZERO_STD_TOL,
): { kept: T[]; keptIndex: number[]; dropped: number } {
  if (groups.length !== rewardsByGroup.length) {
    throw new RangeError(
      `rewardsByGroup: ${rewardsByGroup.length} groups of rewards for ${groups.length} groups`,
    );
  }
  const kept: T[] = [];
  const keptIndex: number[] = [];
  rewardsByGroup.forEach((rewards, i) => {
    checkRewards(rewards, `rewardsByGroup[${i}]`);
    if (groupStats(rewards).std > tol) {
      kept.push(groups[i]!);
      keptIndex.push(i);
    }
  });
  return { kept, keptIndex, dropped: groups.length - kept.length };
}
