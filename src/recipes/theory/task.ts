import type { Rng } from "../../core/rng.ts";
import { anomalyCoefficients, isAnomalyFree } from "./anomalies.ts";
import {
  conjugateField,
  type Field,
  STANDARD_MODEL_GENERATION,
  type SU2,
  type SU3,
  type Theory,
} from "./fields.ts";
import { type GrammarOptions, TheoryGrammar } from "./grammar.ts";
import { type CurriculumPhase, type TheoryReward, type TheoryRewardConfig, theoryReward } from "./reward.ts";

export interface TheoryTaskOptions extends GrammarOptions {
  /** Reward settings; `reward(tokens, phase)` overrides the phase. */
  reward?: TheoryRewardConfig;
  /**
   * Share of anomaly-free theories among the demonstrations, default 0.1. The rest are
   * anomalous, so that the warm-started policy still has something to learn from RL. Valid
   * demonstrations need room for one Standard Model generation (maxFields ≥ 5 and a y6Range
   * covering −4..+6); otherwise every demonstration is a random anomalous theory.
   */
  validShare?: number;
}

export interface TheoryTask {
  grammar: TheoryGrammar;
  /** Number of curriculum phases (3). */
  phases: number;
  /**
   * Reward of a completion (optional leading <bos>); an unparseable one scores −1. `phase` is
   * 1, 2 or 3 (default: the configured phase, else 3); anything else throws.
   */
  reward(tokens: number[], phase?: number): TheoryReward;
  /** [<bos>] */
  promptTokens(): number[];
  /** Full sequences for the supervised warm start: <bos>, the fields, <eos>. */
  demonstrations(rng: Rng, n: number): number[][];
}

const SU3_REPS: readonly SU3[] = ["1", "3", "3b"];
const SU2_REPS: readonly SU2[] = ["1", "2"];

export function createTheoryTask(opts: TheoryTaskOptions = {}): TheoryTask {
  const grammar = new TheoryGrammar(opts);
  const validShare = opts.validShare ?? 0.1;
  if (!(validShare >= 0 && validShare <= 1)) {
    throw new Error(`theory task: validShare must be in [0, 1], got ${validShare}`);
  }
  const [lo, hi] = grammar.y6Range;
  const smFits = grammar.maxFields >= 5 && STANDARD_MODEL_GENERATION.every((f) => f.y6 >= lo && f.y6 <= hi);

  const randomField = (rng: Rng): Field =>
    rng.next() < 0.5 && smFits
      ? { ...rng.pick(STANDARD_MODEL_GENERATION) }
      : { su3: rng.pick(SU3_REPS), su2: rng.pick(SU2_REPS), y6: lo + rng.int(hi - lo + 1) };

  const anomalousTheory = (rng: Rng): Theory => {
    const minN = Math.min(Math.max(grammar.minFields, 3), grammar.maxFields);
    const maxN = Math.max(minN, Math.min(grammar.maxFields, 15));
    for (;;) {
      const n = minN + rng.int(maxN - minN + 1);
      const t = Array.from({ length: n }, () => randomField(rng));
      if (!isAnomalyFree(anomalyCoefficients(t))) return t;
    }
  };

  /** One to three shuffled generations, padded with vector-like pairs or neutral singlets. */
  const validTheory = (rng: Rng): Theory => {
    const maxGenerations = Math.min(3, Math.floor(grammar.maxFields / 5));
    const generations = 1 + rng.int(maxGenerations);
    const t: Theory = [];
    for (let g = 0; g < generations; g++) t.push(...STANDARD_MODEL_GENERATION.map((f) => ({ ...f })));
    const wantExtra = rng.next() < 0.5;
    while (
      t.length < grammar.maxFields &&
      (t.length < grammar.minFields || (wantExtra && rng.next() < 0.5))
    ) {
      const f = randomField(rng);
      // smFits guarantees 0 is in range, so the neutral singlet can always pad to minFields.
      if (t.length + 2 <= grammar.maxFields && -f.y6 >= lo && -f.y6 <= hi && rng.next() < 0.7) {
        t.push(f, conjugateField(f));
      } else {
        t.push({ su3: "1", su2: "1", y6: 0 });
      }
    }
    return rng.shuffle(t);
  };

  return {
    grammar,
    phases: 3,
    reward(tokens, phase) {
      const cfg = phase === undefined ? opts.reward : { ...opts.reward, phase: phase as CurriculumPhase };
      return theoryReward(grammar.decode(tokens), cfg);
    },
    promptTokens() {
      return [grammar.bosId];
    },
    demonstrations(rng, n) {
      if (!Number.isInteger(n) || n < 0) throw new Error(`theory task: demonstrations needs n ≥ 0, got ${n}`);
      const nValid = smFits ? Math.round(n * validShare) : 0;
      const isValid = rng.shuffle(Array.from({ length: n }, (_, i) => i < nValid));
      return isValid.map((valid) => [
        grammar.bosId,
        ...grammar.encode(valid ? validTheory(rng) : anomalousTheory(rng)),
      ]);
    },
  };
}
