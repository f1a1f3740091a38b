/**
 * tokenizer.json files built here (small but real vocabularies in each family's layout) through
 * HFTokenizer: byte-level BPE as GPT-2, Llama 3 and Qwen write it, SentencePiece-style BPE with
 * byte fallback as Llama 2 writes it, special tokens, chat templates, eos ids.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { HFTokenizer } from "../../src/model/hf/tokenizer.ts";
import { byteChars, LLAMA3_PATTERN } from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-hf-tok-")();

/** A byte-level BPE vocabulary: the 256 byte characters, then one token per merge, then specials. */
function byteLevelBpe(merges: [string, string][], specials: string[]) {
  const vocab: Record<string, number> = {};
  for (const c of byteChars()) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const added = specials.map((content, i) => ({
    id: Object.keys(vocab).length + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return { vocab, merges: merges.map(([a, b]) => `${a} ${b}`), added };
}

const G = "Ġ"; // the byte-level character of a space

function gpt2Json() {
  const { vocab, merges, added } = byteLevelBpe(
    [
      ["h", "e"],
      ["t", "h"],
      [G, "c"],
      [`${G}c`, "a"],
      [`${G}ca`, "t"],
      ["th", "e"],
      [G, "t"],
      [`${G}t`, "he"],
    ],
    ["<|endoftext|>"],
  );
  return {
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: "",
        end_of_word_suffix: "",
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    },
    vocab,
  };
}

function llama3Json() {
  const { vocab, merges, added } = byteLevelBpe(
    [
      ["H", "i"],
      [G, "t"],
      [`${G}t`, "h"],
      [`${G}th`, "e"],
      ["r", "e"],
      [`${G}the`, "re"],
    ],
    ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
  );
  const bos = added[0]!;
  return {
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: LLAMA3_PATTERN }, behavior: "Isolated", invert: false },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: {
        type: "Sequence",
        processors: [
          { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
          {
            type: "TemplateProcessing",
            single: [
              { SpecialToken: { id: bos.content, type_id: 0 } },
              { Sequence: { id: "A", type_id: 0 } },
            ],
            pair: [
              { SpecialToken: { id: bos.content, type_id: 0 } },
              { Sequence: { id: "A", type_id: 0 } },
              { SpecialToken: { id: bos.content, type_id: 1 } },
              { Sequence: { id: "B", type_id: 1 } },
            ],
            special_tokens: { [bos.content]: { id: bos.content, ids: [bos.id], tokens: [bos.content] } },
          },
        ],
      },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: true,
        vocab,
        merges,
      },
    },
    vocab,
    added,
  };
}

/** Llama 2's layout: "▁" for spaces via the normalizer, BPE with byte fallback, <s> prepended. */
function llama2Json() {
  const S = "▁";
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const pieces = [
    S,
    "h",
    "e",
    "l",
    "o",
    "w",
    "r",
    "d",
    "ll",
    `${S}h`,
    "ello",
    `${S}hello`,
    "or",
    `${S}w`,
    `${S}wor`,
    "ld",
    `${S}world`,
    "el",
    "ell",
  ];
  for (const p of pieces) vocab[p] = Object.keys(vocab).length;
  // Ranks matter: "l l" ranked first would leave "▁h e ll o" stuck, so it comes last.
  const merges = [
    [S, "h"],
    ["e", "l"],
    ["el", "l"],
    ["ell", "o"],
    [`${S}h`, "ello"],
    ["o", "r"],
    [S, "w"],
    [`${S}w`, "or"],
    ["l", "d"],
    [`${S}wor`, "ld"],
    ["l", "l"],
  ].map(([a, b]) => `${a} ${b}`);
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    json: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
      normalizer: {
        type: "Sequence",
        normalizers: [
          { type: "Prepend", prepend: S },
          { type: "Replace", pattern: { String: " " }, content: S },
        ],
      },
      pre_tokenizer: null,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [
          { SpecialToken: { id: "<s>", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { SpecialToken: { id: "<s>", type_id: 1 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
      },
      decoder: {
        type: "Sequence",
        decoders: [
          { type: "Replace", pattern: { String: S }, content: " " },
          { type: "ByteFallback" },
          { type: "Fuse" },
          { type: "Strip", content: " ", start: 1, stop: 0 },
        ],
      },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: "<unk>",
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        vocab,
        merges,
      },
    },
    vocab,
  };
}

function writeDir(name: string, files: Record<string, unknown>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, v] of Object.entries(files))
    writeFileSync(join(dir, f), typeof v === "string" ? v : JSON.stringify(v));
  return dir;
}

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

describe("HFTokenizer: byte-level BPE (GPT-2)", () => {
  const { json, vocab } = gpt2Json();
  const tok = new HFTokenizer(json, { eos_token: "<|endoftext|>", bos_token: "<|endoftext|>" });

  it("applies merges in rank order within each pre-tokenized word", () => {
    // "the": (h,e) ranks before (t,h), so it is t + he, and " the" merges through "Ġt" + "he".
    assert.deepEqual(tok.tokenize("the cat the"), ["t", "he", `${G}cat`, `${G}the`]);
    assert.deepEqual(tok.encode("the cat"), [vocab.t, vocab.he, vocab[`${G}cat`]]);
  });

  it("spells bytes outside the merges with the byte alphabet and decodes them back", () => {
    const ids = tok.encode("café ☕");
    // é is two UTF-8 bytes, ☕ three: each byte one token.
    assert.equal(ids.length, 3 + 2 + 1 + 3);
    assert.equal(tok.decode(ids), "café ☕");
  });

  it("keeps special tokens whole; eos and bos are the same token here", () => {
    const ids = tok.encode("cat<|endoftext|>");
    assert.deepEqual(ids, [vocab.c, vocab.a, vocab.t, tok.tokenToId("<|endoftext|>")]);
    assert.deepEqual(tok.eosTokenIds, [tok.tokenToId("<|endoftext|>")]);
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "cat");
    assert.equal(tok.vocabSize, Object.keys(vocab).length + 1);
  });
});

describe("HFTokenizer: Llama 3 / Qwen style (split regex + byte level, bos post-processor, chat template)", () => {
  const { json, vocab, added } = llama3Json();
  const idOf = (s: string) => added.find((a) => a.content === s)!.id;
  const template =
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
  const dir = writeDir("llama3", {
    "tokenizer.json": json,
    "tokenizer_config.json": {
      bos_token: "<|begin_of_text|>",
      eos_token: "<|eot_id|>",
      clean_up_tokenization_spaces: true,
      chat_template: template,
    },
    "generation_config.json": {
      bos_token_id: idOf("<|begin_of_text|>"),
      eos_token_id: [idOf("<|end_of_text|>"), idOf("<|eot_id|>")],
    },
  });
  const tok = HFTokenizer.load(dir);

  it("adds bos through the post-processor unless told not to", () => {
    const ids = tok.encode("Hi there");
    assert.deepEqual(ids, [idOf("<|begin_of_text|>"), vocab.Hi, vocab[`${G}there`]]);
    assert.deepEqual(tok.encode("Hi there", { addSpecialTokens: false }), [vocab.Hi, vocab[`${G}there`]]);
  });

  it("eos ids: tokenizer_config's eos token and generation_config.json's list", () => {
    assert.deepEqual([...tok.eosTokenIds].sort(), [idOf("<|end_of_text|>"), idOf("<|eot_id|>")].sort());
    assert.equal(tok.bosTokenId, idOf("<|begin_of_text|>"));
  });

  it("renders the chat template and encodes it without a second bos", () => {
    const messages = [
      { role: "system", content: "Hi" },
      { role: "user", content: " Hi there " },
    ];
    const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    assert.equal(
      text,
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    const ids = tok.encodeChat(messages, { addGenerationPrompt: true });
    assert.equal(ids.filter((i) => i === idOf("<|begin_of_text|>")).length, 1);
    assert.equal(ids[0], idOf("<|begin_of_text|>"));
    assert.equal(ids.filter((i) => i === idOf("<|eot_id|>")).length, 2);
    assert.equal(tok.decode(ids), text);
  });
});

describe("HFTokenizer: SentencePiece-style BPE with byte fallback (Llama 2)", () => {
  const { json, vocab } = llama2Json();
  const tok = new HFTokenizer(json, {
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    chat_template: CHATML,
  });

  it("marks spaces with ▁, merges, prepends <s>", () => {
    assert.deepEqual(tok.encode("hello world"), [1, vocab["▁hello"], vocab["▁world"]]);
  });

  it("falls back to byte tokens for characters outside the vocabulary and decodes them", () => {
    const ids = tok.encode("hello ñ", { addSpecialTokens: false });
    assert.deepEqual(ids, [vocab["▁hello"], vocab["▁"], vocab["<0xC3>"], vocab["<0xB1>"]]);
    assert.equal(tok.decode(ids), "hello ñ");
  });

  it("a tokenizer without a template of that name says which exist", () => {
    assert.throws(
      () => tok.applyChatTemplate([{ role: "user", content: "x" }], { templateName: "tool_use" }),
      /no chat template named "tool_use" \(have: default\)/,
    );
    assert.equal(
      tok.applyChatTemplate([{ role: "user", content: "hi" }]),
      "<|im_start|>user\nhi<|im_end|>\n",
    );
  });
});

describe("HFTokenizer.load errors", () => {
  it("names the missing file", () => {
    assert.throws(() => HFTokenizer.load(join(tmp, "nowhere")), /nowhere\/tokenizer.json: file not found/);
  });
});
