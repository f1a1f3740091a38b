/**
 * The defaults of training-free GRPO, each in its one home. The learning setting is the
 * Training-Free GRPO paper's (3 epochs, groups of 5).
 */
export const TRAINING_FREE_DEFAULTS = {
  epochs: 3,
  groupSize: 5,
  /** Tasks per learning step: the library changes once per batch. */
  batchSize: 16,
  /** Attempts (rollout + reward) in flight at once. */
  concurrency: 16,
  /**
   * Batches whose attempts may run at once. With 1 every batch sees the library its predecessor
   * left; with n, batch i sees the library as of batch i − n, which keeps the endpoint busy while
   * the learner works (the updates still apply in batch order).
   */
  batchesInFlight: 1,
  /** Failed attempts and learner calls after which a run stops: the endpoint is likely broken. */
  maxFailures: 10,
  seed: 0,
  /** Each epoch visits the tasks in its own seeded order. */
  shuffle: true,
  /** Summaries and operations: close to deterministic, with room to rephrase. */
  learnerTemperature: 0.3,
  /** Attempts per task and arm in an evaluation. */
  k: 4,
} as const;
