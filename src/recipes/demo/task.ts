/**
 * The demo's task: write DEMO_LENGTH digits whose sum hits the prompt's target, rewarded by the
 * distance to it (partial credit), so that a group of samples always has something to compare.
 */
export const DEMO_VOCAB = 10;
export const DEMO_LENGTH = 6;
/** Far from the uniform policy's expected sum (27) on both sides, so the start is poor. */
export const DEMO_TARGETS = [6, 12, 42, 48] as const;
/** Distance at which the partial credit reaches 0. */
const MAX_DISTANCE = 24;

/** Partial credit: 1 when the digits sum to the target, falling linearly with the distance. */
export function demoReward(digits: readonly number[], target: number): number {
  const sum = digits.reduce((a, b) => a + b, 0);
  return 1 - Math.min(Math.abs(sum - target), MAX_DISTANCE) / MAX_DISTANCE;
}
