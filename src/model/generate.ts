/**
 * Text generation from a model directory, for `grpo generate` and `grpo serve`: the model (with
 * an adapter when one is given), its tokenizer and generation_config.json; prompts as text or as
 * a chat rendered by the model's template; batched KV-cache sampling of several prompts (or
 * several completions of one) in one call, with per-row token limits and stop strings.
 */
import { basename, resolve } from "node:path";
import { Rng } from "../core/rng.ts";
import type { CausalLM } from "./causal-lm.ts";
import { type GenerationConfig, readGenerationConfig } from "./hf/config.ts";
import { type ChatMessage, HFTokenizer } from "./hf/tokenizer.ts";
import { loadModel } from "./safetensors.ts";
import { sample } from "./sampler.ts";

export interface TextModel {
  model: CausalLM;
  tokenizer: HFTokenizer;
  /** generation_config.json of the model directory, when it has one. */
  generation?: GenerationConfig;
  /** the model directory (absolute) and adapter directory when one was applied. */
  dir: string;
  adapter?: string;
}

/**
 * Loads a model directory (a Hugging Face causal LM, or an adapter directory over its base),
 * with `adapter` applied when given; the tokenizer and generation config come from the model
 * directory (an adapter directory's base when `dir` is an adapter).
 */
export function loadTextModel(dir: string, opts: { adapter?: string } = {}): TextModel {
  const model = loadModel(dir, opts.adapter === undefined ? {} : { adapter: opts.adapter });
  try {
    const tokenizer = HFTokenizer.load(dir);
    if (tokenizer.vocabSize > model.vocabSize)
      throw new Error(
        `${resolve(dir, "tokenizer.json")}: ${tokenizer.vocabSize} tokens, more than the model's vocab_size ${model.vocabSize}`,
      );
    const generation = readGenerationConfig(dir);
    return {
      model,
      tokenizer,
      ...(generation ? { generation } : {}),
      dir: resolve(dir),
      ...(opts.adapter ? { adapter: resolve(opts.adapter) } : {}),
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** The name a served model goes by: its adapter's directory name, else the model's. */
export function defaultModelName(m: Pick<TextModel, "dir" | "adapter">): string {
  return basename(m.adapter ?? m.dir);
}

/** A text prompt's ids: the tokenizer's post-processor adds what the model expects (e.g. bos). */
export function textPromptIds(m: TextModel, text: string): number[] {
  return m.tokenizer.encode(text);
}

/** A conversation's ids, rendered by the model's chat template with the assistant's turn opened. */
export function chatPromptIds(
  m: TextModel,
  messages: ChatMessage[],
  opts: { tools?: unknown[]; variables?: Record<string, unknown> } = {},
): number[] {
  return m.tokenizer.encodeChat(messages, { addGenerationPrompt: true, ...opts });
}

export interface SamplingSettings {
  /** 0: greedy. Default: generation_config.json's (0 when it says do_sample false), else 1. */
  temperature?: number;
  topP?: number;
  topK?: number;
}

/** The settings a request leaves out, from generation_config.json, as transformers' generate() does. */
export function samplingDefaults(m: TextModel, s: SamplingSettings): Required<SamplingSettings> {
  const g = m.generation;
  const greedy = g?.doSample === false;
  return {
    temperature: s.temperature ?? (greedy ? 0 : (g?.temperature ?? 1)),
    topP: s.topP ?? g?.topP ?? 1,
    topK: s.topK ?? g?.topK ?? 0,
  };
}

export interface GenerationRequest {
  promptIds: number[];
  maxNewTokens: number;
  /** text that ends the completion (not included in it). */
  stop?: readonly string[];
}

export interface Generation {
  promptIds: number[];
  /** generated ids, the eos token included when one was produced, cut after a stop string's token. */
  completionIds: number[];
  /** the completion as text, without special tokens, cut before a stop string. */
  text: string;
  /** "stop": eos or a stop string; "length": the token limit (or the model's context). */
  finishReason: "stop" | "length";
}

/**
 * Samples every request in one batched call (rows of different prompt lengths and limits share
 * it; the sampler keeps rows independent of their batch-mates). Rows draw from `rng`, or row i
 * from `rng[i]` when it is a list (then a row's result depends on nothing else in the batch).
 */
export function generateBatch(
  m: TextModel,
  requests: readonly GenerationRequest[],
  settings: Required<SamplingSettings>,
  rng: Rng | readonly Rng[],
): Generation[] {
  if (requests.length === 0) return [];
  const tok = m.tokenizer;
  const stops = requests.map((r) => (r.stop ?? []).filter((s) => s.length > 0));
  const stopAt = (row: number, ids: readonly number[]): number => {
    if (stops[row]!.length === 0) return -1;
    const text = tok.decode(ids, { skipSpecialTokens: true });
    let at = -1;
    for (const s of stops[row]!) {
      const i = text.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  };
  const out = sample(
    m.model,
    requests.map((r) => r.promptIds),
    {
      maxNewTokens: Math.max(...requests.map((r) => r.maxNewTokens)),
      temperature: settings.temperature,
      topP: settings.topP,
      topK: settings.topK,
      eosId: tok.eosTokenIds,
      ...(Array.isArray(rng) ? { rng: rng[0]!, rowRngs: rng } : { rng: rng as Rng }),
      rowDone: (row, ids) => ids.length >= requests[row]!.maxNewTokens || stopAt(row, ids) >= 0,
    },
  );
  return requests.map((r, i) => {
    const ids = out.tokens[i]!.slice(0, r.maxNewTokens);
    const text = tok.decode(ids, { skipSpecialTokens: true });
    const cut = stopAt(i, ids);
    const ended = ids.length > 0 && tok.eosTokenIds.includes(ids.at(-1)!);
    return {
      promptIds: r.promptIds,
      completionIds: ids,
      text: cut >= 0 ? text.slice(0, cut) : text,
      finishReason: cut >= 0 || ended ? "stop" : "length",
    };
  });
}

export interface TextGeneration extends SamplingSettings {
  prompts: readonly string[];
  /** render each prompt as a user turn with the chat template (after `system`, when given). */
  chat?: boolean;
  system?: string;
  /** default: generation_config.json's max_new_tokens, else 256; never past the context. */
  maxNewTokens?: number;
  seed: number;
}

/** `grpo generate`: every prompt sampled in one batch, from one seeded stream. */
export function generateText(m: TextModel, o: TextGeneration): Generation[] {
  const ids = o.prompts.map((p, i) => {
    const promptIds = o.chat
      ? chatPromptIds(m, [
          ...(o.system === undefined ? [] : [{ role: "system", content: o.system }]),
          { role: "user", content: p },
        ])
      : textPromptIds(m, p);
    if (promptIds.length === 0) throw new Error(`prompt ${i + 1} encodes to no tokens`);
    if (promptIds.length >= m.model.contextLength)
      throw new Error(
        `prompt ${i + 1} has ${promptIds.length} tokens; the model's context is ${m.model.contextLength}`,
      );
    return promptIds;
  });
  const want = o.maxNewTokens ?? m.generation?.maxNewTokens ?? 256;
  const requests = ids.map((promptIds) => ({
    promptIds,
    maxNewTokens: Math.min(want, m.model.contextLength - promptIds.length),
  }));
  return generateBatch(m, requests, samplingDefaults(m, o), new Rng(o.seed));
}
