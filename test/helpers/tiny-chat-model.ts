/**
 * A tiny random causal LM in the exact Hugging Face layout, with a real byte-level BPE
 * tokenizer.json (merges learned here from a small corpus, so that English text takes about a
 * third of its bytes in tokens), ChatML special tokens and a chat template in
 * tokenizer_config.json, as Qwen2.5 and SmolLM2 ship them. Its text is nonsense; its files,
 * tokens, template and eos ids are those a downloaded instruct model has.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/core/rng.ts";
import { parseArchConfig } from "../../src/model/hf/config.ts";
import { PretrainedLM, randomWeights } from "../../src/model/hf/model.ts";
import { savePretrained } from "../../src/model/hf/weights.ts";

/** GPT-2's byte → printable character table (bytes_to_unicode). */
export function byteChars(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => {
    out[b] = String.fromCodePoint(cs[i]!);
  });
  return out;
}

/** Llama 3's pre-tokenizer pattern (also Qwen2's in spirit): words, numbers, punctuation, spaces. */
export const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** BPE merges learned greedily from `corpus` (most frequent adjacent pair first, `count` times). */
export function learnMerges(corpus: string, count: number): [string, string][] {
  const chars = byteChars();
  const words = new Map<string, number>();
  const pre = new RegExp(LLAMA3_PATTERN.replace("(?i:", "(?:"), "gu");
  for (const m of corpus.matchAll(pre)) {
    const w = [...new TextEncoder().encode(m[0])].map((b) => chars[b]!).join("\u0000");
    words.set(w, (words.get(w) ?? 0) + 1);
  }
  let seqs = [...words].map(([w, n]) => ({ parts: w.split("\u0000"), n }));
  const merges: [string, string][] = [];
  for (let k = 0; k < count; k++) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of seqs)
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = `${parts[i]}\u0000${parts[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    let best = "";
    let bestN = 1;
    for (const [p, n] of pairs)
      if (n > bestN || (n === bestN && best !== "" && p < best)) [best, bestN] = [p, n];
    if (best === "") break;
    const [a, b] = best.split("\u0000") as [string, string];
    merges.push([a, b]);
    seqs = seqs.map(({ parts, n }) => {
      const out: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(parts[i]!);
      }
      return { parts: out, n };
    });
  }
  return merges;
}

/** ChatML as Qwen2.5 writes it, tool turns included (SmolLM2's template is the same shape). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama 3's header layout: tool results as "ipython" turns would be; here any role is a header. */
export const LLAMA3_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** A template with no tool role: tool results must come back as user turns (as Gemma's and Mistral's do). */
export const NO_TOOL_ROLE_TEMPLATE =
  "{% for message in messages %}{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('roles must be system, user or assistant') }}{% endif %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const DEFAULT_CORPUS = [
  "The quick brown fox jumps over the lazy dog. A train covers 150 km in 2.5 hours.",
  "Solve the problem step by step; end with the answer in \\boxed{}. What is its average speed?",
  'search_emails(keywords="kickoff meeting", max_results=3) read_email(id=e1) answer("the answer", sources="e1")',
  "From: Alice To: Bob Subject: Project Apollo kickoff. The meeting is on Monday at 10 am in room 4.",
  "Question: When is the kickoff meeting of the project? Lessons: check every computation before answering.",
  "You are a careful solver. Write a causal graph of the problem: knowns, target variable, computation plan.",
].join("\n");

export interface TinyChatModelOptions {
  seed?: number;
  /** max_position_embeddings. */
  contextLength?: number;
  /** the chat template; default ChatML. */
  template?: string;
  /** generation_config.json's max_new_tokens (none when undefined). */
  maxNewTokens?: number;
  merges?: number;
  corpus?: string;
  /** "llama": Llama 3's special tokens and a bos post-processor; default ChatML's tokens. */
  specials?: "chatml" | "llama3";
}

export interface TinyChatModel {
  dir: string;
  vocabSize: number;
  /** the ids of the special tokens, by content. */
  special: Record<string, number>;
}

/** Writes the tiny model into `dir` (created). */
export function writeTinyChatModel(dir: string, opts: TinyChatModelOptions = {}): TinyChatModel {
  mkdirSync(dir, { recursive: true });
  const chars = byteChars();
  const vocab: Record<string, number> = {};
  for (const c of chars) vocab[c] = Object.keys(vocab).length;
  const merges = learnMerges(opts.corpus ?? DEFAULT_CORPUS, opts.merges ?? 300);
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
  const llama = opts.specials === "llama3";
  const specialNames = llama
    ? ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    : ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  const special: Record<string, number> = {};
  const added = specialNames.map((content, i) => {
    const id = Object.keys(vocab).length + i;
    special[content] = id;
    return {
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
  });
  const vocabSize = Object.keys(vocab).length + added.length;
  const bos = llama ? "<|begin_of_text|>" : null;
  const tokenizer = {
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
    post_processor: bos
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [special[bos]!], tokens: [bos] } },
        }
      : { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const eos = llama ? "<|eot_id|>" : "<|im_end|>";
  const pad = llama ? "<|end_of_text|>" : "<|endoftext|>";
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      tokenizer_class: "PreTrainedTokenizerFast",
      bos_token: bos,
      eos_token: eos,
      pad_token: pad,
      chat_template: opts.template ?? (llama ? LLAMA3_TEMPLATE : CHATML_TEMPLATE),
      model_max_length: opts.contextLength ?? 2048,
      clean_up_tokenization_spaces: false,
    }),
  );
  const config = {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: vocabSize,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: opts.contextLength ?? 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: "silu",
    tie_word_embeddings: true,
    use_sliding_window: false,
    bos_token_id: bos ? special[bos] : null,
    eos_token_id: special[eos],
    torch_dtype: "float32",
  };
  const model = new PretrainedLM(
    parseArchConfig(join(dir, "config.json"), config),
    randomWeights(new Rng(opts.seed ?? 1), 0.2),
  );
  try {
    savePretrained(dir, model);
  } finally {
    model.dispose();
  }
  writeFileSync(
    join(dir, "generation_config.json"),
    JSON.stringify({
      eos_token_id: [special[eos], special[pad]],
      pad_token_id: special[pad],
      ...(opts.maxNewTokens === undefined ? {} : { max_new_tokens: opts.maxNewTokens }),
    }),
  );
  return { dir, vocabSize, special };
}
