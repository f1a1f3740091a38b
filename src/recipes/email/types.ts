/** Data model of the synthetic email task: inboxes, emails and the questions asked about them. */

export interface Person {
  name: string;
  first: string;
  address: string;
}

export interface Email {
  /** Unique within its inbox, e.g. "e17". */
  id: string;
  /** Formatted as `Name <address>`. */
  from: string;
  to: string[];
  /** ISO 8601 timestamp in UTC, e.g. "2024-05-01T09:30:00Z". */
  date: string;
  subject: string;
  body: string;
}

export interface Inbox {
  id: string;
  owner: Person;
  people: Person[];
  projects: string[];
  /** Sorted by date; ids follow that order. */
  emails: Email[];
}

/** One turn of an episode: the policy's text and the tool's answer to it. */
export interface EpisodeTurn {
  policy: string;
  /** Null on the turn that ended the episode. */
  toolResult: string | null;
}

export type FactKind = "meeting_date" | "approval" | "room" | "owner" | "deadline";

export interface Question {
  id: string;
  question: string;
  /** Canonical form: ISO date, "$12,500", a full name or a room name. */
  answer: string;
  /** The one or two emails that together hold the answer. */
  sourceIds: string[];
  inboxId: string;
  kind: FactKind;
  /** Keywords a competent searcher would use; scripted demonstrations start from these. */
  keywords: string[];
  /** Plausible wrong answers taken from distractor emails (same project, other facts). */
  decoys: string[];
}
