/**
 * Why an episode failed, from how far it got: each wrong held-out episode falls in exactly one
 * class, so that counts before and after training say which skill GRPO improved and which one
 * still holds the agent back.
 *
 * A malformed ending comes first (a tool call the environment could not run, or an answer that
 * is no value of the question's kind: a date mixing two formats, half a name); otherwise the
 * furthest step the episode reached decides: no search, a search that never showed a source
 * email, a source shown but never read, a source read and then a wrong value, or no answer at all.
 */
import { answerAppearsIn, isIDontKnow, normaliseText, parseAmount, parseDate } from "./answer.ts";
import type { EpisodeStats } from "./episode.ts";
import type { Inbox, Question } from "./types.ts";
import { FIRST_NAMES, LAST_NAMES, ROOMS } from "./vocabulary.ts";

export const ERROR_CLASSES = [
  "no_search",
  "bad_search",
  "wrong_email",
  "wrong_field",
  "no_answer",
  "formatting",
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

/**
 * What the bench and the run print for each class. no_search: no search ran; bad_search: no
 * search showed a source email; wrong_email: a source was among the hits but never read;
 * wrong_field: a source was read and the answer is a value of the right kind, but not the right
 * one; no_answer: a source was read and the episode ended without an answer; formatting: a call
 * the environment could not run ended the episode, or the answer is no value of its kind.
 */
export const ERROR_LABELS: Record<ErrorClass, string> = {
  no_search: "did not search",
  bad_search: "searched badly",
  wrong_email: "read the wrong email",
  wrong_field: "read the right one, copied the wrong field",
  no_answer: "read the right one, gave no answer",
  formatting: "formatting",
};

const lower = (words: readonly string[]) => new Set(words.map(normaliseText));
const FIRST = lower(FIRST_NAMES);
const LAST = lower(LAST_NAMES);
const ROOM_NAMES = lower(ROOMS);

/**
 * Whether `answer` has the form of an answer to `q`: a date for a date question, an amount for
 * an amount, a first and a last name for a person, a room's name for a room. A well-formed
 * wrong value is a wrong field (copied from the wrong place, or half copied), not formatting.
 */
export function wellFormedAnswer(answer: string, q: Pick<Question, "kind">): boolean {
  if (q.kind === "meeting_date" || q.kind === "deadline") return parseDate(answer) !== null;
  if (q.kind === "approval") return parseAmount(answer) !== null;
  const text = normaliseText(answer);
  if (q.kind === "room") return ROOM_NAMES.has(text);
  const [first, last, ...rest] = text.split(" ");
  return rest.length === 0 && FIRST.has(first!) && last !== undefined && LAST.has(last);
}

/** Whether some email of the inbox states `answer` (a value copied from somewhere, not invented). */
export function answerInInbox(answer: string, inbox: Inbox): boolean {
  return inbox.emails.some((e) => answerAppearsIn(answer, `${e.subject} ${e.body}`));
}

/** The class of a finished episode that did not end correct; null for a correct one. */
export function classifyEpisode(stats: EpisodeStats, q: Question): ErrorClass | null {
  const v = stats.verdict;
  if (v === "correct") return null;
  if (v === "unparseable" || v === "unknown_tool" || v === "bad_arguments") return "formatting";
  const answered = stats.answer !== null && !isIDontKnow(stats.answer);
  if (answered && !wellFormedAnswer(stats.answer!, q)) return "formatting";
  if (stats.readSource) return answered ? "wrong_field" : "no_answer";
  if (stats.foundSource) return "wrong_email";
  return stats.searches > 0 ? "bad_search" : "no_search";
}

export type ErrorCounts = Record<ErrorClass, number>;

export function countErrors(classes: readonly (ErrorClass | null)[]): ErrorCounts {
  const counts = Object.fromEntries(ERROR_CLASSES.map((c) => [c, 0])) as ErrorCounts;
  for (const c of classes) if (c !== null) counts[c]++;
  return counts;
}
