/**
 * grpo-ts: Group Relative Policy Optimization for TypeScript.
 *
 * Training-free GRPO for any agent (an experience library learned from groups of attempts, put
 * into the prompt), the seed's multi-agent causal-scaffold solver built on it, the project's
 * OpenAI-compatible client, and answer checking. The pure GRPO math is `grpo-ts/core`; a
 * deployed agent that only reads a learned library imports `grpo-ts/library`, which loads
 * nothing else.
 */

// Parametric GRPO (gradients on an in-process policy): TRL's GRPOTrainer over Hugging Face model
// directories, its config (TRL's names) and datasets
export type { GrpoConfig, LoraSettings, LossType } from "./core/config.ts";
export { GRPO_DEFAULTS } from "./core/config.ts";
// Answers: extraction from a reply and deterministic equivalence (integers, fractions, LaTeX, units)
export { answersEquivalent, answerToNumber, extractAnswer, normalizeAnswer } from "./data/answers.ts";
// Chat models: the port any backend can implement, and the project's client for OpenAI-compatible endpoints
export {
  type LLMChatOptions,
  type LLMChatResult,
  LLMClient,
  type LLMClientDeps,
  LLMError,
  type LLMErrorKind,
  type UsageStats,
} from "./llm/client.ts";
export type { Pricing } from "./llm/config.ts";
export { type OpenAICompatibleOptions, openAICompatible } from "./llm/openai-compatible.ts";
export type { ChatClient, ChatFunction, ChatMessage, ChatOptions, ChatResult } from "./llm/port.ts";
export { TransportThreads } from "./llm/transport-threads.ts";
export { type CausalEngineOptions, CausalScaffoldEngine } from "./recipes/causal-scaffold/engine.ts";
export { ExperienceManager, LIBRARY_OWNERS, type LibraryOwner } from "./recipes/causal-scaffold/libraries.ts";
// The seed's multi-agent causal-scaffold solver
export {
  type EpochReport,
  type TrainerOptions as TrainingFreeGRPOTrainerOptions,
  TrainingFreeGRPOTrainer,
  type TrainingReport,
} from "./recipes/causal-scaffold/trainer.ts";
export { checkDataset, type DatasetRow, loadDataset, type Prompt, type PromptMessage } from "./rl/dataset.ts";
export {
  type ChatTokenizer,
  type Completion,
  GRPOTrainer,
  type GRPOTrainerOptions,
  type LogEntry,
  type RewardFunc,
  type RewardFuncArgs,
  type RewardFuncSpec,
  type TrainOutput,
} from "./rl/grpo-trainer.ts";
// Training-free GRPO
export * from "./training-free/index.ts";
