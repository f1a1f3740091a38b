import type { ChatClient } from "../../llm/port.ts";
import type { ExperienceLibrary } from "../../training-free/experience-library.ts";
import {
  type ExtractionOutcome,
  type GroupAttempt,
  semanticAdvantage,
} from "../../training-free/semantic-advantage.ts";
import { DEFAULT_TAU, type ExtractionMode } from "../../training-free/triggers.ts";
import { SOLVER_DEFAULTS } from "./defaults.ts";
import type { PromptSet } from "./prompts.ts";

/** When an agent learns, and how hot its extraction calls sample. */
export interface ExtractionSettings {
  mode: ExtractionMode;
  tau: number;
  temperature: number;
}

export const DEFAULT_EXTRACTION: ExtractionSettings = {
  mode: "variance",
  tau: DEFAULT_TAU,
  temperature: SOLVER_DEFAULTS.extractionTemperature,
};

export interface AttemptForExtraction extends GroupAttempt {
  /** The scaffold as JSON text, or a note when the attempt produced none. */
  scaffoldText: string;
  answer: string | null;
}

export interface ExtractionInput {
  client: ChatClient;
  prompts: PromptSet;
  library: ExperienceLibrary;
  problem: { id: string; text: string; answer: string; source?: string };
  attempts: readonly AttemptForExtraction[];
  temperature: number;
  now?: () => Date;
  signal?: AbortSignal;
}

/** The semantic advantage of one group of scaffolds, with the solver's summarise and extract prompts. */
export function extractExperiences(input: ExtractionInput): Promise<ExtractionOutcome> {
  const { prompts, problem } = input;
  return semanticAdvantage({
    client: input.client,
    library: input.library,
    attempts: input.attempts,
    temperature: input.temperature,
    problemId: problem.id,
    problemType: problem.source,
    now: input.now,
    signal: input.signal,
    summarisePrompt: (a) =>
      prompts.render("summarise", {
        problem: problem.text,
        ground_truth: problem.answer,
        reward: a.reward.toFixed(3),
        answer: a.answer ?? "none",
        verdict: a.isCorrect ? "correct" : "wrong",
        scaffold: a.scaffoldText,
      }),
    extractPrompt: (summaries, library) =>
      prompts.render("extract", {
        problem: problem.text,
        summaries,
        library,
        max_words: input.library.limits.maxWords,
        max_chars: input.library.limits.maxChars,
      }),
  });
}
