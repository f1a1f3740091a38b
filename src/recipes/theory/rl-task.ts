import type { Rng } from "../../core/rng.ts";
import type { RlTask, TokenConstraint } from "../../rl/types.ts";
import { formatTheory } from "./fields.ts";
import { QUICK_GRAMMAR } from "./presets.ts";
import { createTheoryTask, type TheoryTask, type TheoryTaskOptions } from "./task.ts";

/**
 * The theory recipe: a small transformer writes a list of fields (SU(3) rep, SU(2) rep,
 * hypercharge) under the grammar's constraint; the reward is the environment's anomaly reward.
 */

export interface TheoryRlTask extends RlTask {
  readonly theory: TheoryTask;
  readonly vocabSize: number;
  /** prompt + longest completion. */
  readonly contextLength: number;
}

export function theoryRlTask(opts: TheoryTaskOptions = QUICK_GRAMMAR): TheoryRlTask {
  const theory = createTheoryTask(opts);
  const g = theory.grammar;
  return {
    name: "theory",
    successLabel: "success",
    theory,
    eosId: g.eosId,
    vocabSize: g.vocab.length,
    contextLength: 1 + g.maxLength,
    phases: 3,
    constraint: g as TokenConstraint<unknown> as TokenConstraint,
    trainPrompts: (_rng: Rng, n: number) => Array.from({ length: n }, () => theory.promptTokens()),
    evalPrompts: () => [theory.promptTokens()],
    reward(tokens, phase) {
      const r = theory.reward(tokens, phase as 1 | 2 | 3);
      return { total: r.total, success: r.success };
    },
    describe(tokens) {
      const t = g.decode(tokens);
      return t ? formatTheory(t) : g.tokensToString(tokens);
    },
    // Full sequences for the warm start: the environment's demonstrations with <bos> in front.
    demonstrations: (rng: Rng, n: number) =>
      theory.demonstrations(rng, n).map((c) => (c[0] === g.bosId ? c : [g.bosId, ...c])),
  };
}

/** The figure the benchmark tracks: share of completions that are anomaly-free and non-trivial. */
export function validShare(task: TheoryRlTask, completions: number[][]): number {
  if (completions.length === 0) return 0;
  let ok = 0;
  for (const c of completions) {
    const r = task.theory.reward(c, 3);
    if (r.anomalyFree && r.nonTrivial) ok++;
  }
  return ok / completions.length;
}
