/**
 * How the solver reports while it runs. The solver never draws anything itself: the command line
 * passes progress bars, tests and library users pass their own sink or nothing.
 */
export interface Progress {
  /** Advance by `n` and show the given fields (e.g. μ, σ, whether the group taught the library). */
  tick(n?: number, fields?: Record<string, string | number>): void;
  /** A line that should stay in the log (a decision, a warning). */
  log(line: string): void;
  stop(): void;
}

/** A sink for one agent's pass over `total` problems, or undefined for none. */
export type ProgressFactory = (label: string, total: number) => Progress | undefined;
