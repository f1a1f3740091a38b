/**
 * The solver's defaults, each in its one home. This module imports nothing, so the command line
 * can show them in its help without loading the solver.
 */
export const SOLVER_DEFAULTS = {
  /** Scaffold requests sample with some spread, so that a group can disagree and teach. */
  generatorTemperature: 0.7,
  /** Fusion is a judgement of given scaffolds, not exploration. */
  criticTemperature: 0,
  /** Rollouts each generator writes per problem: the group over which μ and σ are taken. */
  rolloutsPerGenerator: 3,
  numEpochs: 3,
  /** Summaries and library operations: close to deterministic, with room to rephrase. */
  extractionTemperature: 0.3,
  /** Failures in a row for one agent that stop a run: a broken endpoint shows itself quickly. */
  maxFailures: 5,
} as const;
