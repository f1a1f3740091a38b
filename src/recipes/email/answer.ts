/**
 * Answer normalisation for the email task. The expected answer decides how a reply is read:
 * a date is compared as a calendar day whatever its format, an amount as a number, anything
 * else as lower-cased words without punctuation.
 */

const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december",
];
const MONTH_ALT =
  "(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
const WEEKDAYS = /\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\b/g;

function monthIndex(name: string): number {
  const prefix = name.slice(0, 3);
  return MONTHS.findIndex((m) => m.startsWith(prefix));
}

function isoDay(year: number, month: number, day: number): string | null {
  if (month < 1 || month > 12 || day < 1 || day > 31) return null;
  const d = new Date(Date.UTC(year, month - 1, day));
  if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return null;
  return d.toISOString().slice(0, 10);
}

/**
 * A whole string read as a date: ISO (with or without time), 2024/05/03, US 05/03/2024,
 * "May 3, 2024", "Friday, May 3rd 2024", "3 May 2024", "3rd of May, 2024". Null otherwise.
 */
export function parseDate(text: string): string | null {
  let s = text.trim().toLowerCase();
  const iso = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:t[\d:.]+z?)?$/.exec(s);
  if (iso) return isoDay(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  const us = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(s);
  if (us) return isoDay(Number(us[3]), Number(us[1]), Number(us[2]));
  s = s
    .replace(WEEKDAYS, " ")
    .replace(/(\d+)(?:st|nd|rd|th)\b/g, "$1")
    .replace(/\bof\b/g, " ")
    .replace(/[,.]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  const mdy = new RegExp(`^${MONTH_ALT} (\\d{1,2}) (\\d{4})$`).exec(s);
  if (mdy) return isoDay(Number(mdy[3]), monthIndex(mdy[1]!) + 1, Number(mdy[2]));
  const dmy = new RegExp(`^(\\d{1,2}) ${MONTH_ALT} (\\d{4})$`).exec(s);
  if (dmy) return isoDay(Number(dmy[3]), monthIndex(dmy[2]!) + 1, Number(dmy[1]));
  return null;
}

/** "$1,200", "1200", "USD 1,200.00", "$1.2k" → 1200. Null when the string is not an amount. */
export function parseAmount(text: string): number | null {
  const s = text.trim().toLowerCase().replace(/\s+/g, " ");
  const m =
    /^(?:usd ?|us\$ ?|\$ ?)?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?( ?(?:k|thousand|m|million))?(?: ?(?:usd|dollars))?$/.exec(
      s,
    );
  if (!m) return null;
  let value = Number(m[1]!.replace(/,/g, "") + (m[2] ?? ""));
  const scale = (m[3] ?? "").trim();
  if (scale === "k" || scale === "thousand") value *= 1e3;
  if (scale === "m" || scale === "million") value *= 1e6;
  return Number.isFinite(value) ? Math.round(value * 100) / 100 : null;
}

/** Lower case, punctuation to spaces, collapsed whitespace, no leading article. */
export function normaliseText(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim()
    .replace(/^(?:the|a|an) /, "");
}

const DONT_KNOW = new Set(["i dont know", "i don t know", "i do not know", "idk", "unknown", "dont know"]);

export function isIDontKnow(answer: string): boolean {
  return DONT_KNOW.has(normaliseText(answer.replace(/['’]/g, "")));
}

/** Whether `given` states the same answer as `expected` (the canonical answer of a question). */
export function answersMatch(expected: string, given: string): boolean {
  const expectedDate = parseDate(expected);
  if (expectedDate !== null) return parseDate(given) === expectedDate;
  const expectedAmount = parseAmount(expected);
  if (expectedAmount !== null) return parseAmount(given) === expectedAmount;
  const e = normaliseText(expected);
  return e.length > 0 && normaliseText(given) === e;
}

const DATE_IN_TEXT = new RegExp(
  [
    "\\d{4}-\\d{2}-\\d{2}",
    "\\d{1,2}/\\d{1,2}/\\d{4}",
    `(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day,? )?${MONTH_ALT} \\d{1,2}(?:st|nd|rd|th)?,? \\d{4}`,
    `\\d{1,2}(?:st|nd|rd|th)? (?:of )?${MONTH_ALT},? \\d{4}`,
  ].join("|"),
  "gi",
);

/** Whether the answer is stated somewhere in `text`, in any format `answersMatch` accepts. */
export function answerAppearsIn(answer: string, text: string): boolean {
  const date = parseDate(answer);
  if (date !== null) return (text.match(DATE_IN_TEXT) ?? []).some((d) => parseDate(d) === date);
  const amount = parseAmount(answer);
  if (amount !== null) {
    return (text.match(/\$\s?\d[\d,]*(?:\.\d+)?/g) ?? []).some((a) => parseAmount(a) === amount);
  }
  return ` ${normaliseText(text)} `.includes(` ${normaliseText(answer)} `);
}

/**
 * The first piece of `text` that states `answer`, as it is written there ("March 5, 2024" for
 * 2024-03-05), or null. A policy that copies this span is read as answering `answer`.
 */
export function findAnswerSpan(answer: string, text: string): string | null {
  const date = parseDate(answer);
  if (date !== null) return (text.match(DATE_IN_TEXT) ?? []).find((d) => parseDate(d) === date) ?? null;
  const amount = parseAmount(answer);
  if (amount !== null)
    return (text.match(/\$\s?\d[\d,]*(?:\.\d+)?/g) ?? []).find((a) => parseAmount(a) === amount) ?? null;
  return answerAppearsIn(answer, text) ? answer : null;
}
