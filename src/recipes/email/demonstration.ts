/**
 * Scripted demonstrations for a supervised warm start: a competent searcher that uses the
 * question's keywords, reads the source emails among the hits, and answers citing them. Noise
 * injects the mistakes a weak policy makes (a search with a wrong keyword, reading a distractor
 * first, a wrong answer taken from a distractor) so that the warm-started policy is not already
 * perfect and RL has something to improve. Turns are produced by a real EmailEpisode, so the
 * tool results are exactly what the environment returns.
 */
import type { Rng } from "../../core/rng.ts";
import { findAnswerSpan } from "./answer.ts";
import { EmailEpisode, type EpisodeOptions } from "./episode.ts";
import { searchEmails } from "./search.ts";
import { formatToolCall } from "./tool-call.ts";
import type { EpisodeTurn, Inbox, Question } from "./types.ts";

export interface DemonstrationOptions {
  /** Probability of each of: a wrong-keyword search first, reading a distractor first. */
  noise?: number;
  /** Probability of answering with a distractor's value; defaults to noise / 2. */
  wrongAnswerRate?: number;
  /** Passed as max_results to the searches, so that results stay short. */
  maxResults?: number;
  /**
   * Answer with the answer as an email writes it (" March 5, 2024") rather than its canonical
   * form, so that answering is copying: a small model cannot be expected to convert formats.
   * A space the email writes before the value comes with it (the parser trims it), so that
   * the answer's first token is the email's own (" 15", " Jonas"), not another token ("15",
   * "Jonas") that nothing in the context points to: most wrong answers had the first token
   * wrong and the rest copied (bench/README.md, email-modes).
   */
  answerAsWritten?: boolean;
  episode?: EpisodeOptions;
}

function wrongKeywords(question: Question, inbox: Inbox, rng: Rng): string[] {
  const project = question.keywords[0]!;
  const others = inbox.projects.map((p) => p.toLowerCase()).filter((p) => p !== project);
  // Either the right topic under another project, or the project alone (too vague).
  if (others.length > 0 && rng.next() < 0.5) return [rng.pick(others), ...question.keywords.slice(1)];
  return [project];
}

export function demonstration(
  question: Question,
  inbox: Inbox,
  rng: Rng,
  options: DemonstrationOptions = {},
): EpisodeTurn[] {
  const noise = options.noise ?? 0;
  if (!(noise >= 0 && noise <= 1)) throw new Error(`noise must be in [0, 1], got ${noise}`);
  const wrongRate = options.wrongAnswerRate ?? noise / 2;
  const episode = new EmailEpisode(inbox, question, options.episode);
  const act = (text: string): boolean => !episode.step(text).done;

  const limit = options.maxResults === undefined ? {} : { max_results: options.maxResults };
  const search = (keywords: string[]) =>
    formatToolCall({ tool: "search_emails", args: { keywords, ...limit } });
  if (rng.next() < noise) {
    if (!act(search(wrongKeywords(question, inbox, rng)))) return episode.history;
  }
  if (!act(search(question.keywords))) return episode.history;
  const ranked = searchEmails(inbox, { keywords: question.keywords, ...limit }).map((h) => h.id);
  const sources = new Set(question.sourceIds);
  const toRead = ranked.filter((id) => sources.has(id));
  for (const id of question.sourceIds) if (!toRead.includes(id)) toRead.push(id);
  const distractor = ranked.find((id) => !sources.has(id));
  if (distractor !== undefined && rng.next() < noise) toRead.unshift(distractor);
  for (const id of toRead) {
    if (!act(formatToolCall({ tool: "read_email", args: { id } }))) return episode.history;
  }
  const wrong = question.decoys.length > 0 && rng.next() < wrongRate;
  let answer = wrong ? rng.pick(question.decoys) : question.answer;
  if (options.answerAsWritten) {
    // The stated span from the sources for the right answer, from any email for a decoy.
    const where = wrong ? inbox.emails : inbox.emails.filter((e) => sources.has(e.id));
    for (const e of where) {
      const span = findAnswerSpan(answer, e.body);
      if (span !== null) {
        answer = e.body[e.body.indexOf(span) - 1] === " " ? ` ${span}` : span;
        break;
      }
    }
  }
  episode.step(
    formatToolCall({ tool: "return_final_answer", args: { answer, sources: question.sourceIds } }),
  );
  return episode.history;
}
