/** The two read-only tools over an inbox: keyword search with filters, and reading one email. */
import { parseDate } from "./answer.ts";
import type { Email, Inbox } from "./types.ts";

export const MAX_SEARCH_RESULTS = 10;

export interface SearchArgs {
  keywords: string[];
  from?: string;
  to?: string;
  /** Inclusive day (or ISO timestamp). */
  sent_after?: string;
  /** Exclusive day (or ISO timestamp). */
  sent_before?: string;
  max_results?: number;
}

export interface SearchHit {
  id: string;
  date: string;
  from: string;
  subject: string;
  snippet: string;
  /** Distinct keywords matched, then total matches; the ranking key. */
  matchedKeywords: number;
  hits: number;
}

/** Light stemming so that "review"/"reviews" and "approve"/"approved" meet. */
export function stem(word: string): string {
  const w = word.toLowerCase();
  for (const suffix of ["ing", "ed", "es", "s", "e"]) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3) return w.slice(0, -suffix.length);
  }
  return w;
}

export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Keyword arguments may hold phrases ("apollo review"); each word counts on its own. */
export function keywordStems(keywords: string[]): string[] {
  return [...new Set(keywords.flatMap(words).map(stem))];
}

function matchesPerson(field: string, query: string): boolean {
  return field.toLowerCase().includes(query.trim().toLowerCase());
}

/** A date filter as a comparable ISO prefix; throws on text that is not a date. */
export function dateBound(value: string, field: string): string {
  if (/^\d{4}-\d{2}-\d{2}T/.test(value)) return value;
  const day = parseDate(value);
  if (day === null) throw new Error(`${field} must be a date such as 2024-05-03, got "${value}"`);
  return day;
}

function snippet(email: Email, stems: Set<string>, width = 90): string {
  const text = email.body.replace(/\s+/g, " ");
  if (text.length <= width) return text;
  const re = /[\p{L}\p{N}]+/gu;
  let start = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (stems.has(stem(m[0]))) {
      // Back up a little for context, to the start of a word.
      const space = text.lastIndexOf(" ", Math.max(0, m.index - 20));
      start = m.index <= 20 || space < 0 ? 0 : space + 1;
      break;
    }
  }
  const piece = text.slice(start, start + width);
  return `${start > 0 ? "…" : ""}${piece}${start + width < text.length ? "…" : ""}`;
}

/**
 * Emails matching at least one keyword and every filter, best first: more distinct keywords,
 * then more matches, then newer, then lower id. Deterministic for a given inbox.
 */
export function searchEmails(inbox: Inbox, args: SearchArgs): SearchHit[] {
  const stems = keywordStems(args.keywords);
  const stemSet = new Set(stems);
  const limit = Math.min(args.max_results ?? MAX_SEARCH_RESULTS, MAX_SEARCH_RESULTS);
  const after = args.sent_after === undefined ? null : dateBound(args.sent_after, "sent_after");
  const before = args.sent_before === undefined ? null : dateBound(args.sent_before, "sent_before");
  const hits: SearchHit[] = [];
  for (const email of inbox.emails) {
    if (args.from !== undefined && !matchesPerson(email.from, args.from)) continue;
    if (args.to !== undefined && !email.to.some((t) => matchesPerson(t, args.to!))) continue;
    if (after !== null && email.date < after) continue;
    if (before !== null && email.date >= before) continue;
    const counts = new Map<string, number>();
    for (const w of words(`${email.subject} ${email.body}`)) {
      const s = stem(w);
      if (stemSet.has(s)) counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    if (counts.size === 0) continue;
    let total = 0;
    for (const c of counts.values()) total += c;
    hits.push({
      id: email.id,
      date: email.date,
      from: email.from,
      subject: email.subject,
      snippet: snippet(email, stemSet),
      matchedKeywords: counts.size,
      hits: total,
    });
  }
  hits.sort(
    (a, b) =>
      b.matchedKeywords - a.matchedKeywords ||
      b.hits - a.hits ||
      (a.date < b.date ? 1 : a.date > b.date ? -1 : 0) ||
      Number(a.id.slice(1)) - Number(b.id.slice(1)),
  );
  return hits.slice(0, limit);
}

/** Compact output leaves out snippets and addresses: a small model's context is short. */
export interface FormatOptions {
  compact?: boolean;
}

export function formatSearchResults(hits: SearchHit[], options: FormatOptions = {}): string {
  if (hits.length === 0) return "No emails found.";
  return hits
    .map((h) => `${h.id} | ${h.date.slice(0, 10)} | ${h.subject}${options.compact ? "" : ` | ${h.snippet}`}`)
    .join("\n");
}

export function findEmail(inbox: Inbox, id: string): Email | undefined {
  const wanted = id.trim().toLowerCase();
  return inbox.emails.find((e) => e.id === wanted);
}

export function formatEmail(email: Email, options: FormatOptions = {}): string {
  if (options.compact) {
    const name = email.from.replace(/\s*<[^>]*>$/, "");
    return [
      `ID: ${email.id}`,
      `From: ${name}`,
      `Date: ${email.date.slice(0, 10)}`,
      `Subject: ${email.subject}`,
      "",
      email.body,
    ].join("\n");
  }
  return [
    `ID: ${email.id}`,
    `From: ${email.from}`,
    `To: ${email.to.join(", ")}`,
    `Date: ${email.date}`,
    `Subject: ${email.subject}`,
    "",
    email.body,
  ].join("\n");
}
