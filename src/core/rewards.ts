/** Weighted combination of several reward functions, with per-function statistics for the logs. */
import { groupStats } from "./advantages.ts";

export interface RewardFunction<C> {
  /** Unique; used in the metric names `rewards/<name>/mean` and `rewards/<name>/std`. */
  name: string;
  weight: number;
  fn: (completion: C) => number;
}

/**
 * total[j] = Σ_k weight_k · fn_k(completions[j]). perFunction holds the unweighted values, so a
 * reward's contribution can be read independently of its weight; the std in the metrics is the
 * population std, as everywhere in core. A reward function that throws or returns a non-finite
 * value is an error naming the function and the completion index, not a silent NaN in training.
 */
export function composeRewards<C>(
  fns: RewardFunction<C>[],
  completions: C[],
): { total: number[]; perFunction: Record<string, number[]>; metrics: Record<string, number> } {
  const seen = new Set<string>();
  for (const [k, f] of fns.entries()) {
    if (!f.name) throw new RangeError(`reward function ${k}: name must be non-empty`);
    if (seen.has(f.name)) throw new RangeError(`reward function ${k}: duplicate name "${f.name}"`);
    seen.add(f.name);
    if (!Number.isFinite(f.weight))
      throw new RangeError(`reward "${f.name}": weight must be finite, got ${f.weight}`);
  }
  const total = completions.map(() => 0);
  const perFunction: Record<string, number[]> = {};
  const metrics: Record<string, number> = {};
  for (const f of fns) {
    const values = completions.map((c, j) => {
      let v: number;
      try {
        v = f.fn(c);
      } catch (err) {
        throw new Error(`reward "${f.name}" failed on completion ${j}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new RangeError(
          `reward "${f.name}" on completion ${j}: expected a finite number, got ${String(v)}`,
        );
      }
      return v;
    });
    values.forEach((v, j) => {
      total[j] = total[j]! + f.weight * v;
    });
    perFunction[f.name] = values;
    const { mean, std } = groupStats(values);
    metrics[`rewards/${f.name}/mean`] = mean;
    metrics[`rewards/${f.name}/std`] = std;
  }
  return { total, perFunction, metrics };
}
