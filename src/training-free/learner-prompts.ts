/**
 * The learner's default prompts, one per step of the two learning forms. Each is a function
 * of what the step knows, returning the messages to send; a caller may replace any of them.
 *
 * Roles follow youtu-agent's Training-Free GRPO: a system message states what the agent does
 * and what its lessons should improve; the user message carries the material of the step.
 */
import type { ChatMessage } from "../llm/port.ts";
import type { LessonLimits } from "./experience-library.ts";

/** One attempt as the learner sees it. */
export interface AttemptView {
  /** Its number in the group, from 1, as the prompts name it. */
  number: number;
  output: unknown;
  trajectory: string;
  score: number;
  correct: boolean;
  details?: unknown;
}

/** What every step knows about the agent and what it is to learn. */
export interface LearnerBrief {
  agentObjective: string;
  learningObjective: string;
  /** false: the learner sees neither the expected answer nor the scores, and judges for itself. */
  groundTruth: boolean;
  limits: LessonLimits;
}

export interface TaskView {
  id: string;
  text: string;
  /** The expected answer, when the task has one. */
  answer?: string;
}

export interface SummariseInput extends LearnerBrief {
  task: TaskView;
  attempt: AttemptView;
}

export interface GroupInput extends LearnerBrief {
  task: TaskView;
  attempts: readonly AttemptView[];
  /** The account of each attempt, in the order of `attempts`. */
  summaries: readonly string[];
}

export interface ContrastInput extends GroupInput {
  lessonsPerTask: number;
}

export interface ProposeInput extends LearnerBrief {
  /** The library as the group's attempts saw it, `[id] lesson` per line, "" when empty. */
  library: string;
  lessons: readonly string[];
}

export interface MergeInput extends LearnerBrief {
  /** Existing lessons, each with the operations proposed on it. */
  library: readonly { id: string; content: string; proposals: readonly string[] }[];
  /** Proposed operations that name no existing lesson (ADDs, and ids not in the library). */
  unattached: readonly string[];
}

export interface ExtractInput extends GroupInput {
  library: string;
}

export interface LearnerPrompts {
  summarise(input: SummariseInput): ChatMessage[];
  contrast(input: ContrastInput): ChatMessage[];
  propose(input: ProposeInput): ChatMessage[];
  merge(input: MergeInput): ChatMessage[];
  extract(input: ExtractInput): ChatMessage[];
}

export const DEFAULT_AGENT_OBJECTIVE = "Complete each task it is given as well as it can.";
export const DEFAULT_LEARNING_OBJECTIVE =
  "Find the habits, checks and strategies that separate the agent's successful attempts from its failed ones, " +
  "stated so that they carry over to new tasks of the same kind.";

function brief(b: LearnerBrief): string {
  return [
    "You coach an agent by studying what it did. Your notes become short lessons that are put",
    "into the agent's prompt on later tasks.",
    "",
    `What the agent does: ${b.agentObjective.trim()}`,
    `What the lessons should improve: ${b.learningObjective.trim()}`,
  ].join("\n");
}

function lessonRules(b: LearnerBrief): string {
  return (
    `A lesson is at most ${b.limits.maxWords} words and ${b.limits.maxChars} characters, reads ` +
    '"Short name: what to do, and when.", holds beyond the task at hand (no numbers or names ' +
    'from it), and says what to do rather than what happened. A lesson that holds only under a condition starts with "When …".'
  );
}

function taskBlock(b: LearnerBrief, task: TaskView): string {
  const lines = ["Task:", task.text.trim()];
  if (b.groundTruth && task.answer !== undefined && task.answer !== "")
    lines.push("", `Expected answer: ${task.answer}`);
  return lines.join("\n");
}

function verdict(b: LearnerBrief, a: AttemptView): string {
  return b.groundTruth ? ` (score ${a.score.toFixed(3)}, ${a.correct ? "correct" : "wrong"})` : "";
}

function attemptsBlock(input: GroupInput): string {
  return input.attempts
    .map((a, i) => `Attempt ${a.number}${verdict(input, a)}:\n${input.summaries[i] ?? ""}`.trimEnd())
    .join("\n\n");
}

function system(content: string): ChatMessage {
  return { role: "system", content };
}

function user(content: string): ChatMessage {
  return { role: "user", content };
}

export const DEFAULT_LEARNER_PROMPTS: LearnerPrompts = {
  summarise: (input) => [
    system(
      [
        brief(input),
        "",
        "Now read one attempt of the agent at one task and write a compact account of it: the",
        "approach it took; its main steps, with the tool calls it made and what they returned when",
        "there are any; where it went right or wrong; and what it overlooked that was there to use.",
        input.groundTruth
          ? "Judge the attempt against the expected answer and its score."
          : "No expected answer is given: judge the attempt on its own merits.",
        "Keep to what bears on what the lessons should improve. Write in the language of the attempt.",
      ].join("\n"),
    ),
    user(
      `${taskBlock(input, input.task)}\n\nAttempt${verdict(input, input.attempt)}:\n${input.attempt.trajectory}\n\nWrite the account.`,
    ),
  ],

  contrast: (input) => [
    system(
      [
        brief(input),
        "",
        "Now compare several attempts at one task, each given as an account of what it did",
        input.groundTruth ? "and its score." : "(no scores are given: decide yourself which are better).",
        "Say which attempts did better and why; what the worse ones got wrong at the root",
        "(a reasoning slip, a missing check, a misread task, a tool used badly); and what made the",
        "better ones work. Then give at most",
        `${input.lessonsPerTask} lesson${input.lessonsPerTask === 1 ? "" : "s"} that would have turned the worse attempts into better ones.`,
        lessonRules(input),
        "",
        "End your reply with the lessons between <lessons> and </lessons>, one per line, numbered;",
        "leave the block empty when the attempts teach nothing new.",
      ].join("\n"),
    ),
    user(`${taskBlock(input, input.task)}\n\n${attemptsBlock(input)}`),
  ],

  propose: (input) => [
    system(
      [
        brief(input),
        "",
        "Now keep the agent's lesson library useful. Compare each new lesson with the library and",
        "choose one operation for it:",
        "- ADD: it says something no lesson of the library says.",
        "- UPDATE: it sharpens or extends a lesson of the library; give that lesson's id and the",
        "  rewritten lesson, which keeps the old insight and adds the new one.",
        "- DELETE: it shows a lesson of the library to be wrong or harmful; give that lesson's id.",
        "- NONE: the library already says it, or it is not worth keeping.",
        lessonRules(input),
        "",
        'Reply with a JSON array holding one object per new lesson, in their order: {"operation":',
        '"ADD" | "UPDATE" | "DELETE" | "NONE", "id": "<id of a library lesson>" or null, "content":',
        '"<the lesson as it should read>"}.',
      ].join("\n"),
    ),
    user(
      `Library:\n${input.library.trim() === "" ? "(empty)" : input.library}\n\nNew lessons:\n${input.lessons
        .map((l, i) => `${i + 1}. ${l}`)
        .join("\n")}`,
    ),
  ],

  merge: (input) => [
    system(
      [
        brief(input),
        "",
        "Now turn the operations proposed on a batch of tasks, each proposal coming from one task,",
        "into the changes the library actually makes:",
        "- several UPDATEs of one lesson become one UPDATE that keeps what they share;",
        "- a DELETE of a lesson wins over any UPDATE of it;",
        "- ADDs that say the same thing become one ADD; distinct ones stay separate;",
        "- where proposals contradict each other, keep the one that holds more generally;",
        "- a lesson no proposal mentions stays as it is: do not list it.",
        lessonRules(input),
        "",
        'Reply with a JSON array of {"operation": "ADD" | "UPDATE" | "DELETE", "id": "<library id>"',
        'or null, "content": "<the lesson as it should read>"}; [] when nothing should change.',
      ].join("\n"),
    ),
    user(
      [
        "Library, each lesson with the operations proposed on it:",
        input.library.length === 0
          ? "(empty)"
          : input.library
              .map(
                (e) =>
                  `[${e.id}] ${e.content}\n${
                    e.proposals.length === 0
                      ? "  (no proposals)"
                      : e.proposals.map((p) => `  proposed: ${p}`).join("\n")
                  }`,
              )
              .join("\n"),
        "",
        "Proposed operations on no lesson of the library:",
        input.unattached.length === 0 ? "(none)" : input.unattached.map((p) => `- ${p}`).join("\n"),
      ].join("\n"),
    ),
  ],

  extract: (input) => [
    system(
      [
        brief(input),
        "",
        "Now look at several attempts at one task that fared differently. What did the better",
        "attempts do that the worse ones did not? Turn the difference into lessons for other tasks",
        "of this kind and update the library with operations:",
        '{"operation": "add", "content": "…"} for a new lesson;',
        '{"operation": "modify", "id": "<id>", "content": "…"} to sharpen a lesson of the library',
        "(rather than adding a near copy of it);",
        '{"operation": "delete", "id": "<id>"} for a lesson the attempts show to be wrong;',
        '{"operation": "keep", "id": "<id>"} for a lesson the better attempts followed.',
        lessonRules(input),
        "",
        "Reply with a JSON list of operations only; [] when there is nothing to learn.",
      ].join("\n"),
    ),
    user(
      `${taskBlock(input, input.task)}\n\n${attemptsBlock(input)}\n\nLibrary:\n${
        input.library.trim() === "" ? "(empty)" : input.library
      }`,
    ),
  ],
};

/**
 * The lessons of a contrast reply: the numbered lines inside its last <lessons> block. A reply
 * without the block throws, so that the learner is asked again.
 */
export function parseLessons(text: string): string[] {
  const blocks = [...text.matchAll(/<lessons>([\s\S]*?)<\/lessons>/gi)];
  if (blocks.length === 0) throw new Error("contrast reply holds no <lessons>…</lessons> block");
  return blocks[blocks.length - 1]![1]!.split("\n")
    .map((l) =>
      l
        .trim()
        .replace(/^(?:\d+[.)]|[-*•])\s*/, "")
        .trim(),
    )
    .filter((l) => l !== "" && !/^\(?none\)?\.?$/i.test(l));
}
