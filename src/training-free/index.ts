/** The public surface of training-free GRPO. */
export { TRAINING_FREE_DEFAULTS } from "./defaults.ts";
export { type AccuracyAtK, accuracyAtK, type ScoredGroup } from "./evaluate.ts";
export * from "./experience-library.ts";
export type { Ask, Learner } from "./learner.ts";
export {
  type AttemptView,
  type ContrastInput,
  DEFAULT_AGENT_OBJECTIVE,
  DEFAULT_LEARNER_PROMPTS,
  DEFAULT_LEARNING_OBJECTIVE,
  type ExtractInput,
  type GroupInput,
  type LearnerBrief,
  type LearnerPrompts,
  type MergeInput,
  type ProposeInput,
  parseLessons,
  type SummariseInput,
  type TaskView,
} from "./learner-prompts.ts";
export {
  DEFAULT_LESSONS_PER_TASK,
  EXTRACTION_TAU,
  type ExtractionOptions,
  type LearningOptions,
  type SemanticAdvantageOptions,
  type TriggerOptions,
} from "./learning.ts";
export { type ParsedOperations, parseOperations, resolveConflicts } from "./operations.ts";
export { mapPool } from "./pool.ts";
export {
  type EvaluateOptions,
  type FitOptions,
  seedOf,
  TrainingFreeGRPO,
  type TrainingFreeGRPOOptions,
} from "./trainer.ts";
export { DEFAULT_TAU, decideExtraction, type ExtractionDecision, type ExtractionMode } from "./triggers.ts";
export type * from "./types.ts";
