/**
 * Tokenizer for the email task: every printable ASCII character is a token, so any text
 * encodes, and on top of them the words the inbox generator writes and the tool-call syntax
 * are single tokens (longest match first). Whole-word tokens are what make the task learnable
 * for a small model: an episode is under half as long as in characters, and answering is
 * copying two or three tokens out of the email rather than a dozen characters.
 *
 * A space belongs to the word after it, as in GPT-2's tokens (" Ahmed", " booked"), and a
 * number's separator to the number (" 20", "-06", ",400"): a value of several tokens is then
 * copied one token after another, each found as what followed the token before it. With spaces
 * and commas as tokens of their own, the token before "Ahmed" was a space like any other, and
 * the small model copied "Malik Whitfield" for "Malik Ahmed" and "$15,000" for "$15,400".
 *
 * The newline is the policy's end-of-turn token: a policy turn is one line (see render.ts), so
 * the sampler stops at it and the line becomes the tool call. No other token contains it.
 */
import { Vocab } from "../../model/tokenizer.ts";
import { type Segment, tokenMask } from "./render.ts";
import * as words from "./vocabulary.ts";

export const EMAIL_SPECIALS = { pad: "<pad>", bos: "<bos>", eos: "<eos>", unk: "<unk>" } as const;

/** The newline, then printable ASCII, then the two typographic marks search snippets and answers use. */
export const EMAIL_CHARS: readonly string[] = [
  "\n",
  ...Array.from({ length: 127 - 32 }, (_, i) => String.fromCharCode(32 + i)),
  "…",
  "’",
];

export const END_OF_TURN = "\n";

/** The fixed text of tool calls and tool results (see tool-call.ts and episode.ts). */
export const SYNTAX_PIECES: readonly string[] = [
  'search_emails(keywords="',
  'from="',
  'to="',
  'sent_after="',
  'sent_before="',
  '", max_results=',
  '", ',
  "read_email(id=",
  'answer("',
  '", sources="',
  '")',
  "<result>",
  "</result>",
  "Question: ",
  "ID: ",
  "From: ",
  "To: ",
  "Date: ",
  "Subject: ",
  "Re: ",
  " | ",
  "2024",
  "2025",
];

/**
 * Numbers as whole tokens, each also with the separator before it (" 20", "-06", ",400",
 * ", 2024"), so that a day, a month or an amount is copied out of an email as one token per
 * part ("$15,400" is "$", "15", ",400"; "2024-06-20" is "2024", "-06", "-20"). A small model
 * copying "18,200" a digit at a time lost its way among the repeated zeros.
 */
export const NUMBER_PIECES: readonly string[] = (() => {
  const two = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"));
  const one = Array.from({ length: 10 }, (_, i) => String(i));
  const hundreds = one.map((d) => `${d}00`);
  const years = ["2024", "2025"];
  return [
    ...two,
    ...hundreds,
    ...[...one, ...two, ...years].map((n) => ` ${n}`),
    ...two.map((n) => `-${n}`),
    ...hundreds.map((n) => `,${n}`),
    ...years.map((y) => `, ${y}`),
  ];
})();

/** Words of the generator's templates that are not in its word lists (vocabulary.ts). */
export const TEMPLATE_WORDS: readonly string[] = `
  Hi Could How If No Sorry We What When Which Who Write First Update Approved Slides
  January February March April May June July August September October November December
  Monday Tuesday Wednesday Thursday Friday Saturday Sunday
  after ahead all amount approve approved asked booked but call change come could deadline did
  does don draft email emails estimate example fully go has inbox it keep know lead leading me
  merge moved much name not one per prep prepare prepared projector quarter question read
  receipts refine request result rough say scheduled search send sent slides so sources
  starting suggested the them there tool turn updates was with words works you
`
  .trim()
  .split(/\s+/);

/**
 * Every word of the generator's lists and templates, as written and in lower case (search
 * keywords), each also with the space before it.
 */
function wordPieces(): string[] {
  const found = new Set<string>();
  const add = (text: string) => {
    for (const w of text.match(/[A-Za-z]{2,}/g) ?? []) {
      for (const form of [w, w.toLowerCase()]) {
        found.add(form);
        found.add(` ${form}`);
      }
    }
  };
  for (const list of Object.values(words)) for (const item of list) add([item].flat().join(" "));
  for (const w of TEMPLATE_WORDS) add(w);
  return [...found].sort();
}

/**
 * Ids: pad 0, bos 1, eos 2, unk 3, newline 4, then the characters in EMAIL_CHARS order, then
 * the syntax pieces, the numbers and the words. Checkpoints store only the vocabulary's size, so the lists
 * above change only together with a new model.
 */
export function createEmailVocab(): Vocab {
  const chars = new Set(EMAIL_CHARS);
  const pieces = [...new Set([...SYNTAX_PIECES, ...NUMBER_PIECES, ...wordPieces()])].filter(
    (p) => !chars.has(p),
  );
  return new Vocab([...EMAIL_CHARS, ...pieces], EMAIL_SPECIALS, { mode: "pieces" });
}

let shared: Vocab | null = null;

/** One immutable vocabulary for the task, so ids agree between rollouts, checkpoints and tests. */
export function emailVocab(): Vocab {
  shared ??= createEmailVocab();
  return shared;
}

export function endOfTurnId(vocab: Vocab = emailVocab()): number {
  return vocab.id(END_OF_TURN);
}

/**
 * Token ids of a rendered episode and its loss mask: 1 exactly on the tokens of policy
 * segments, 0 on the prompt and on tool results. Characters outside the vocabulary become unk.
 */
export function encodeEpisode(
  segments: readonly Segment[],
  vocab: Vocab = emailVocab(),
): { ids: number[]; mask: number[] } {
  segments.forEach((s, i) => {
    if (s.role !== "prompt" && s.role !== "policy" && s.role !== "tool") {
      throw new Error(`encodeEpisode: segment ${i} has unknown role ${JSON.stringify(s.role)}`);
    }
  });
  return tokenMask(segments, (text) => vocab.encode(text));
}

/** Text of policy-generated ids, without the end-of-turn token and special tokens. */
export function decodeTurn(ids: readonly number[], vocab: Vocab = emailVocab()): string {
  const eot = endOfTurnId(vocab);
  const end = ids.indexOf(eot);
  return vocab.decode(end < 0 ? ids : ids.slice(0, end));
}
