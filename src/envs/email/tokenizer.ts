/**
 * Character-level tokenizer for the email task. A tiny model cannot afford a large word
 * vocabulary, and every tool call, id, date and amount the environment produces is spelled out
 * of printable ASCII, so one token per character covers the task with about 100 ids.
 *
 * The newline is the policy's end-of-turn token: a policy turn is one line (see render.ts), so
 * the sampler stops at it and the line becomes the tool call.
 */
import { Vocab } from "../../model/tokenizer.ts";
import { type Segment, tokenMask } from "./render.ts";

export const EMAIL_SPECIALS = { pad: "<pad>", bos: "<bos>", eos: "<eos>", unk: "<unk>" } as const;

/** The newline, then printable ASCII, then the two typographic marks search snippets and answers use. */
export const EMAIL_CHARS: readonly string[] = [
  "\n",
  ...Array.from({ length: 127 - 32 }, (_, i) => String.fromCharCode(32 + i)),
  "…",
  "’",
];

export const END_OF_TURN = "\n";

/** Ids: pad 0, bos 1, eos 2, unk 3, newline 4, then the characters in EMAIL_CHARS order. */
export function createEmailVocab(): Vocab {
  return new Vocab([...EMAIL_CHARS], EMAIL_SPECIALS, { mode: "char" });
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
