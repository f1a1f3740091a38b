/** The task prompt shown before the first policy turn, and the rendering of tool results. */
import type { Question } from "./types.ts";

export const INSTRUCTIONS = [
  "Answer the question from the inbox. Write one tool call per turn:",
  'search_emails(keywords="words", from="name", to="name", sent_after="YYYY-MM-DD", sent_before="YYYY-MM-DD", max_results=10)',
  "read_email(id=e1)",
  'answer("your answer", sources="e1 e2")',
  'If the inbox does not say, answer("I don\'t know").',
].join("\n");

export function buildPrompt(question: Question | string, options: { instructions?: boolean } = {}): string {
  const text = typeof question === "string" ? question : question.question;
  return options.instructions === false ? `Question: ${text}` : `${INSTRUCTIONS}\nQuestion: ${text}`;
}

/** Tool results are fenced so that a model can tell where the environment's text ends. */
export function formatToolResult(text: string): string {
  return `<result>\n${text}\n</result>`;
}
