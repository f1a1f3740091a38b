/**
 * The project's Vocab (./../tokenizer.ts) as a tokenizer.json that transformers, vLLM and
 * @huggingface/tokenizers load. The model is WordPiece without a continuation prefix, which is
 * a greedy longest match over the vocabulary — exactly Vocab's rule — within each pre-tokenized
 * piece:
 * - "word": split on whitespace, each word one token; no decoder, so tokens join with a space.
 * - "char": split into single characters; the Fuse decoder joins them with nothing.
 * - "pieces": no pre-tokenizer (tokens may hold spaces), Fuse decoder. Vocab maps a character
 *   no token starts with to unk alone; WordPiece maps the whole text to unk then. The texts the
 *   recipes' models see are made of their own pieces, where the two agree.
 * pad/bos/eos/unk are added tokens marked special.
 */
import type { Vocab } from "../tokenizer.ts";

export function vocabTokenizerJson(vocab: Vocab): Record<string, unknown> {
  const specials = [vocab.padId, vocab.bosId, vocab.eosId, vocab.unkId].filter(
    (i): i is number => i !== undefined,
  );
  const table: Record<string, number> = {};
  vocab.tokens.forEach((t, i) => {
    table[t] = i;
  });
  const preTokenizer =
    vocab.mode === "word"
      ? { type: "WhitespaceSplit" }
      : vocab.mode === "char"
        ? { type: "Split", pattern: { Regex: "[\\s\\S]" }, behavior: "Isolated", invert: false }
        : null;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [...new Set(specials)].map((id) => ({
      id,
      content: vocab.token(id),
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: vocab.mode === "word" ? null : { type: "Fuse" },
    model: {
      type: "WordPiece",
      unk_token: vocab.unkId === undefined ? null : vocab.token(vocab.unkId),
      continuing_subword_prefix: "",
      max_input_chars_per_word: 1_000_000_000,
      vocab: table,
    },
  };
}

export function vocabTokenizerConfig(vocab: Vocab, contextLength: number): Record<string, unknown> {
  const tok = (id: number | undefined) => (id === undefined ? null : vocab.token(id));
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    model_max_length: contextLength,
    bos_token: tok(vocab.bosId),
    eos_token: tok(vocab.eosId),
    pad_token: tok(vocab.padId),
    unk_token: tok(vocab.unkId),
    clean_up_tokenization_spaces: false,
  };
}
