/**
 * Max-variance down-sampling of a group (PODS, "Not All Rollouts are Useful", Xu et al. 2025):
 * of the G completions sampled for a prompt, keep the m whose rewards vary the most. For a
 * small policy sampling costs far less than the update, so a large group finds rare successes
 * often while the update stays the size of m.
 *
 * A max-variance subset of size m is always the k highest and m − k lowest rewards for some k,
 * so trying every k over the sorted rewards (with running sums) finds it in O(G log G).
 */
export function maxVarianceSubset(rewards: readonly number[], m: number): number[] {
  const n = rewards.length;
  if (!(Number.isInteger(m) && m >= 1))
    throw new Error(`down-sampling: keep must be an integer ≥ 1, got ${m}`);
  if (m >= n) return rewards.map((_, i) => i);
  // Stable order, so equal rewards resolve by index and the choice is reproducible.
  const order = rewards.map((_, i) => i).sort((a, b) => rewards[a]! - rewards[b]! || a - b);
  const sorted = order.map((i) => rewards[i]!);
  const prefix = [0];
  const prefixSq = [0];
  for (const r of sorted) {
    prefix.push(prefix.at(-1)! + r);
    prefixSq.push(prefixSq.at(-1)! + r * r);
  }
  let bestK = 0;
  let bestVar = -1;
  for (let k = 0; k <= m; k++) {
    // k from the top, m − k from the bottom.
    const sum = prefix[m - k]! + (prefix[n]! - prefix[n - k]!);
    const sumSq = prefixSq[m - k]! + (prefixSq[n]! - prefixSq[n - k]!);
    const variance = sumSq / m - (sum / m) ** 2;
    if (variance > bestVar + 1e-12) {
      bestVar = variance;
      bestK = k;
    }
  }
  const kept = [...order.slice(0, m - bestK), ...order.slice(n - bestK)];
  return kept.sort((a, b) => a - b);
}
