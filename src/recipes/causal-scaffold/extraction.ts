/**
 * The solver's learning step: TrainingFreeGRPO's extraction form (σ > τ per group, each attempt
 * summarised, then one call that returns add / modify / delete / keep operations) with the
 * seed's own summarise and extract templates.
 */
import { userMessage } from "../../llm/messages.ts";
import {
  type AttemptView,
  DEFAULT_TAU,
  type ExtractionMode,
  type ExtractionOptions,
} from "../../training-free/index.ts";
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

/** What a scored scaffold (a rollout or a fusion) carries beside its total, as the reward returns it. */
export interface ScaffoldDetails {
  /** The rollout's id, or the generator whose rollouts the fusion fused: how the learner names it. */
  id: number;
  answer: string | number | null;
  r_ans: number;
  r_logic: number;
  r_graph: number;
  r_fusion?: number;
  /** What did not spoil the scores but is worth recording. */
  notes: string[];
}

function detailsOf(a: AttemptView): ScaffoldDetails {
  return a.details as ScaffoldDetails;
}

/** A stored scaffold as prompt text: the seed's Python-dict strings as they are, objects as JSON. */
export function scaffoldText(s: unknown): string {
  return typeof s === "string" ? s : JSON.stringify(s);
}

export function scaffoldLearning(prompts: PromptSet, settings: ExtractionSettings): ExtractionOptions {
  return {
    form: "extraction",
    trigger: settings.mode === "variance" ? { mode: "variance", tau: settings.tau } : { mode: settings.mode },
    prompts: {
      summarise: ({ task, attempt }) =>
        userMessage(
          prompts.render("summarise", {
            problem: task.text,
            ground_truth: task.answer ?? "",
            reward: attempt.score.toFixed(3),
            answer: detailsOf(attempt).answer === null ? "none" : String(detailsOf(attempt).answer),
            verdict: attempt.correct ? "correct" : "wrong",
            scaffold: scaffoldText(attempt.output),
          }),
        ),
      extract: ({ task, attempts, summaries, library, limits }) =>
        userMessage(
          prompts.render("extract", {
            problem: task.text,
            summaries: attempts
              .map(
                (a, i) =>
                  `Attempt ${detailsOf(a).id} — reward ${a.score.toFixed(3)}, ${a.correct ? "correct" : "wrong"}: ${summaries[i]}`,
              )
              .join("\n"),
            library: library === "" ? "(none yet)" : library,
            max_words: limits.maxWords,
            max_chars: limits.maxChars,
          }),
        ),
    },
  };
}

/** The record's text of a failed learning step, from the step that failed. */
export function learningError(failure: { step?: string; error: string }): string {
  return `${failure.step?.startsWith("summarise") ? "summary" : "extraction"} failed: ${failure.error}`;
}
