/**
 * Semantic advantage: the learning step that turns a group of scored attempts into library
 * operations. Each attempt is summarised, the learner contrasts the summaries with the current
 * library and proposes operations, and those are applied to the library in memory. What the
 * prompts say belongs to the caller; the order of the calls and the handling of their failures
 * live here.
 */
import { errorText, userMessage } from "../llm/messages.ts";
import type { ChatClient } from "../llm/port.ts";
import type { ApplyReport, ExperienceLibrary } from "./experience-library.ts";
import { type ParsedOperations, parseOperations } from "./operations.ts";

export { type ParsedOperations, parseOperations };

/** One member of a group as the learner sees it. */
export interface GroupAttempt {
  /** Its number in the group, as the learner's prompt names it. */
  id: number;
  reward: number;
  isCorrect: boolean;
}

export interface SemanticAdvantageInput<A extends GroupAttempt> {
  client: ChatClient;
  library: ExperienceLibrary;
  attempts: readonly A[];
  /** The request for a summary of one attempt. */
  summarisePrompt(attempt: A): string;
  /** The request for operations, given one line per attempt and the library as a prompt shows it. */
  extractPrompt(summaries: string, library: string): string;
  temperature: number;
  /** The task the group solved, recorded with every change, and its type. */
  problemId: string;
  problemType?: string;
  now?: () => Date;
  signal?: AbortSignal;
}

export interface ExtractionOutcome extends ApplyReport {
  /** Set when a call of the step failed; the library is then unchanged. */
  error?: string;
  /** The error behind `error`, for its kind. */
  cause?: unknown;
}

const NOTHING_APPLIED = { added: [], modified: [], deleted: [], kept: [], merged: [], warnings: [] };

/**
 * Summaries are requested in parallel. A failed summary or extraction call fails the whole
 * step: the library stays as it was and the outcome says why, so that the caller can redo the
 * step later rather than learn from an incomplete picture.
 */
export async function semanticAdvantage<A extends GroupAttempt>(
  input: SemanticAdvantageInput<A>,
): Promise<ExtractionOutcome> {
  const { client, library, attempts, temperature, signal } = input;
  let summaries: string[];
  try {
    summaries = await Promise.all(
      attempts.map(async (a) => {
        const r = await client.chat(userMessage(input.summarisePrompt(a)), { temperature, signal });
        return r.text.trim();
      }),
    );
  } catch (err) {
    return { ...NOTHING_APPLIED, error: `summary failed: ${errorText(err)}`, cause: err };
  }
  const summaryBlock = attempts
    .map(
      (a, i) =>
        `Attempt ${a.id} — reward ${a.reward.toFixed(3)}, ${a.isCorrect ? "correct" : "wrong"}: ${summaries[i]}`,
    )
    .join("\n");
  const prompt = input.extractPrompt(summaryBlock, library.formatForPrompt());
  let parsed: ParsedOperations;
  try {
    parsed = (await client.chat(userMessage(prompt), { temperature, parse: parseOperations, signal })).value;
  } catch (err) {
    return { ...NOTHING_APPLIED, error: `extraction failed: ${errorText(err)}`, cause: err };
  }
  const report = library.apply(parsed.ops, {
    problemId: input.problemId,
    problemType: input.problemType,
    ...(input.now ? { now: input.now } : {}),
  });
  return { ...report, warnings: [...parsed.warnings, ...report.warnings] };
}
