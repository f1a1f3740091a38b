/**
 * When a group of attempts teaches the library anything. A group whose rewards are all equal
 * carries no signal about what worked; the threshold τ keeps noise-level spreads out too.
 */
import { groupStats } from "../core/advantages.ts";

/** σ threshold of the variance rule. */
export const DEFAULT_TAU = 0.05;

/**
 * "variance": learn when σ of the group's totals exceeds τ. "mixed" (the paper's rule): learn
 * only when the group holds both correct and wrong answers, whatever σ is.
 */
export type ExtractionMode = "variance" | "mixed";

export interface ExtractionDecision {
  extract: boolean;
  reason: string;
}

export function decideExtraction(
  totals: readonly number[],
  correct: readonly boolean[],
  opts: { mode: ExtractionMode; tau: number },
): ExtractionDecision {
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
  const extract = std > opts.tau;
  return { extract, reason: `σ=${std.toFixed(4)} ${extract ? ">" : "≤"} τ=${opts.tau}` };
}
