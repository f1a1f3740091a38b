import { extractJsonValue } from "../llm/json-text.ts";
import { errorText, userMessage } from "../llm/messages.ts";
import type { ChatClient } from "../llm/port.ts";
import type { ApplyReport, ExperienceLibrary, ExperienceOperation } from "./experience.ts";
import { MAX_EXPERIENCE_WORDS, OperationSchema } from "./experience.ts";
import type { PromptSet } from "./prompts.ts";

export interface AttemptForExtraction {
  rolloutId: number;
  /** The scaffold as JSON text, or a note when the attempt produced none. */
  scaffoldText: string;
  answer: string | null;
  isCorrect: boolean;
  reward: number;
}

export interface ParsedOperations {
  ops: ExperienceOperation[];
  warnings: string[];
}

/**
 * Operations from an extraction reply. The reply must hold a JSON list (else this throws, so the
 * client retries); single malformed entries are dropped with a warning instead of failing all.
 */
export function parseOperations(text: string): ParsedOperations {
  const raw = extractJsonValue(text, "array");
  if (!Array.isArray(raw)) throw new Error("experience extraction: reply holds no JSON list of operations");
  const ops: ExperienceOperation[] = [];
  const warnings: string[] = [];
  raw.forEach((item, i) => {
    const parsed = OperationSchema.safeParse(item);
    if (parsed.success) ops.push(parsed.data);
    else {
      const issue = parsed.error.issues[0]!;
      warnings.push(`operation [${i}] ignored: ${issue.path.join(".") || "(item)"}: ${issue.message}`);
    }
  });
  return { ops, warnings };
}

export interface ExtractionInput {
  client: ChatClient;
  prompts: PromptSet;
  library: ExperienceLibrary;
  problem: { id: string; text: string; answer: string; source?: string };
  attempts: readonly AttemptForExtraction[];
  temperature: number;
  now?: () => Date;
}

export interface ExtractionOutcome extends ApplyReport {
  /** Set when the extraction call itself failed; the library is then unchanged. */
  error?: string;
}

/**
 * Semantic advantage: summarise each attempt, then ask for library operations that capture what
 * separated the better attempts from the worse ones, and apply them to the library in memory.
 */
export async function extractExperiences(input: ExtractionInput): Promise<ExtractionOutcome> {
  const { client, prompts, library, problem, attempts, temperature } = input;
  const summaries = await Promise.all(
    attempts.map(async (a) => {
      const prompt = prompts.render("summarise", {
        problem: problem.text,
        ground_truth: problem.answer,
        reward: a.reward.toFixed(3),
        answer: a.answer ?? "none",
        verdict: a.isCorrect ? "correct" : "wrong",
        scaffold: a.scaffoldText,
      });
      try {
        const r = await client.chat(userMessage(prompt), { temperature });
        return r.text.trim();
      } catch (err) {
        return `(no summary: ${errorText(err)})`;
      }
    }),
  );
  const summaryBlock = attempts
    .map(
      (a, i) =>
        `Attempt ${a.rolloutId} — reward ${a.reward.toFixed(3)}, ${a.isCorrect ? "correct" : "wrong"}: ${summaries[i]}`,
    )
    .join("\n");
  const prompt = prompts.render("extract", {
    problem: problem.text,
    summaries: summaryBlock,
    library: library.formatForPrompt(),
    max_words: MAX_EXPERIENCE_WORDS,
  });
  let parsed: ParsedOperations;
  try {
    parsed = (await client.chat(userMessage(prompt), { temperature, parse: parseOperations })).value;
  } catch (err) {
    return {
      added: [],
      modified: [],
      deleted: [],
      kept: [],
      merged: [],
      warnings: [],
      error: errorText(err),
    };
  }
  const report = library.apply(parsed.ops, {
    problemId: problem.id,
    problemType: problem.source,
    ...(input.now ? { now: input.now } : {}),
  });
  return { ...report, warnings: [...parsed.warnings, ...report.warnings] };
}
