/**
 * When a group of attempts teaches the library anything. A group whose rewards are all equal
 * carries no signal about what worked; the threshold τ keeps noise-level spreads out too.
 */
import { groupStats, ZERO_STD_TOL } from "../core/advantages.ts";

/** σ threshold of the variance rule. */
export const DEFAULT_TAU = 0.05;

/**
 * "variance": learn when σ of the group's totals exceeds τ (a group of equal rewards never
 * does, even with τ = 0). "mixed" (the paper's rule): learn only when the group holds both
 * correct and wrong answers, whatever σ is. "all": every complete group (youtu-agent's choice
 * when the learner is not shown the ground truth and judges the attempts itself). Apart from
 * "all", a group of a single attempt never teaches: there is nothing to contrast it with.
 */
export type ExtractionMode = "variance" | "mixed" | "all";

export interface ExtractionDecision {
  extract: boolean;
  reason: string;
}

export function decideExtraction(
  totals: readonly number[],
  correct: readonly boolean[],
  opts: { mode: ExtractionMode; tau: number },
): ExtractionDecision {
  if (opts.mode === "all") return { extract: true, reason: "every group" };
  // One attempt has nothing to be compared with, whatever τ says.
  if (totals.length === 1) return { extract: false, reason: "a single attempt: nothing to compare" };
  const { std } = groupStats(totals);
  if (opts.mode === "mixed") {
    const nCorrect = correct.filter(Boolean).length;
    const mixed = nCorrect > 0 && nCorrect < correct.length;
    return {
      extract: mixed,
      reason: mixed
        ? `mixed ${nCorrect}/${correct.length} correct`
        : `all ${nCorrect === 0 ? "wrong" : "correct"}`,
    };
  }
  // Equal rewards can leave a σ of rounding noise; only a negative τ (learn from every group) lets that pass.
  const extract = std > opts.tau && (opts.tau < 0 || std > ZERO_STD_TOL);
  return { extract, reason: `σ=${std.toFixed(4)} ${extract ? ">" : "≤"} τ=${opts.tau}` };
}
