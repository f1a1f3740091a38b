export interface AccuracyAtK {
  k: number;
  problems: number;
  /** Mean over problems of the fraction of the k rollouts that are correct. */
  meanAtK: number;
  /** Fraction of problems with at least one correct rollout among k. */
  passAtK: number;
}

/** One task's group of attempts, in rollout order. */
export interface ScoredGroup {
  rollouts: readonly { is_correct: boolean }[];
}

/** Mean@k and Pass@k over the first k attempts of each group; a failed attempt counts as wrong. */
export function accuracyAtK(records: readonly ScoredGroup[], k: number): AccuracyAtK {
  if (records.length === 0) return { k, problems: 0, meanAtK: 0, passAtK: 0 };
  let meanSum = 0;
  let passed = 0;
  for (const rec of records) {
    const first = rec.rollouts.slice(0, k);
    const correct = first.filter((r) => r.is_correct).length;
    meanSum += correct / k;
    if (correct > 0) passed++;
  }
  return { k, problems: records.length, meanAtK: meanSum / records.length, passAtK: passed / records.length };
}
