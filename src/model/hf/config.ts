/**
 * config.json of a Hugging Face causal LM → the architecture description the engine runs.
 * Field names and defaults are transformers' (LlamaConfig, Qwen2Config, Qwen3Config,
 * GPT2Config); a value the engine does not implement is an error naming the file and field,
 * never silently ignored.
 */
import { join } from "node:path";
import { FileFormatError, readJsonFile } from "../../io/files.ts";

export const ARCHITECTURES = [
  "LlamaForCausalLM",
  "Qwen2ForCausalLM",
  "Qwen3ForCausalLM",
  "GPT2LMHeadModel",
] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export type RopeScaling =
  | { type: "default" }
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface ArchSpec {
  architecture: Architecture;
  /** "llama": RMSNorm, RoPE, SwiGLU, separate q/k/v (Llama, Qwen2, Qwen3); "gpt2": the rest. */
  family: "llama" | "gpt2";
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  /** max_position_embeddings / n_positions. */
  contextLength: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  /** biases on q/k/v (Qwen2 always; Llama/Qwen3 with attention_bias). */
  qkvBias: boolean;
  /** bias on o_proj (Llama/Qwen3 attention_bias). */
  oBias: boolean;
  /** biases on gate/up/down (Llama mlp_bias). */
  mlpBias: boolean;
  /** Qwen3: RMSNorm over each head of q and k before RoPE. */
  qkNorm: boolean;
  tiedHead: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
  padTokenId?: number;
  /** the file as read, written back (with its own fields) when the model is saved. */
  raw: Record<string, unknown>;
}

export const CONFIG_FILE = "config.json";
export const GENERATION_CONFIG_FILE = "generation_config.json";

function readObject(file: string): Record<string, unknown> {
  const v = readJsonFile(file);
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new FileFormatError(file, undefined, undefined, "expected a JSON object");
  return v as Record<string, unknown>;
}

/** Token ids as one number or a list (eos_token_id is either in transformers' files). */
export function tokenIdList(file: string, field: string, v: unknown): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) {
    if (!Number.isInteger(x) || (x as number) < 0)
      throw new FileFormatError(
        file,
        undefined,
        field,
        `must be a token id or a list of token ids, got ${JSON.stringify(v)}`,
      );
  }
  return list as number[];
}

/** The architecture named by a config object (its first `architectures` entry). */
export function architectureOf(file: string, j: Record<string, unknown>): Architecture {
  const archs = j.architectures;
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== "string") {
    throw new FileFormatError(file, undefined, "architectures", "must be a non-empty list of class names");
  }
  const a = archs[0] as string;
  if (!(ARCHITECTURES as readonly string[]).includes(a)) {
    throw new FileFormatError(
      file,
      undefined,
      "architectures",
      `"${a}" is not supported (supported: ${ARCHITECTURES.join(", ")})`,
    );
  }
  return a as Architecture;
}

export function parseArchConfig(file: string, j: Record<string, unknown>): ArchSpec {
  const architecture = architectureOf(file, j);
  const fail = (field: string, msg: string): never => {
    throw new FileFormatError(file, undefined, field, msg);
  };
  const int = (k: string, dflt?: number): number => {
    const v = j[k] ?? dflt;
    if (!Number.isInteger(v) || (v as number) <= 0)
      fail(k, `must be a positive integer, got ${JSON.stringify(j[k])}`);
    return v as number;
  };
  const num = (k: string, dflt: number): number => {
    const v = j[k] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      fail(k, `must be a positive number, got ${JSON.stringify(j[k])}`);
    return v as number;
  };
  const bool = (k: string, dflt: boolean): boolean => {
    const v = j[k] ?? dflt;
    if (typeof v !== "boolean") fail(k, `must be true or false, got ${JSON.stringify(j[k])}`);
    return v as boolean;
  };
  const ids = {
    bosTokenId: tokenIdList(file, "bos_token_id", j.bos_token_id)[0],
    eosTokenIds: tokenIdList(file, "eos_token_id", j.eos_token_id),
    padTokenId: tokenIdList(file, "pad_token_id", j.pad_token_id)[0],
  };
  if (architecture === "GPT2LMHeadModel") {
    const hidden = int("n_embd", 768);
    const heads = int("n_head", 12);
    if (hidden % heads !== 0) fail("n_head", `n_embd (${hidden}) must be divisible by n_head (${heads})`);
    const act = j.activation_function ?? "gelu_new";
    // gelu_pytorch_tanh is the same function as gelu_new.
    if (act !== "gelu_new" && act !== "gelu_pytorch_tanh")
      fail("activation_function", `"${act}" is not supported (only gelu_new)`);
    if (bool("scale_attn_by_inverse_layer_idx", false))
      fail("scale_attn_by_inverse_layer_idx", "is not supported");
    if (!bool("scale_attn_weights", true)) fail("scale_attn_weights", "false is not supported");
    if (bool("add_cross_attention", false)) fail("add_cross_attention", "is not supported");
    return {
      architecture,
      family: "gpt2",
      vocabSize: int("vocab_size", 50257),
      hidden,
      layers: int("n_layer", 12),
      heads,
      kvHeads: heads,
      headDim: hidden / heads,
      intermediate: (j.n_inner ?? null) === null ? 4 * hidden : int("n_inner"),
      contextLength: int("n_positions", 1024),
      normEps: num("layer_norm_epsilon", 1e-5),
      ropeTheta: 0,
      ropeScaling: { type: "default" },
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      qkNorm: false,
      tiedHead: bool("tie_word_embeddings", true),
      ...ids,
      raw: j,
    };
  }
  const hidden = int("hidden_size");
  const heads = int("num_attention_heads");
  const kvHeads = int("num_key_value_heads", heads);
  if (heads % kvHeads !== 0)
    fail("num_key_value_heads", `num_attention_heads (${heads}) must be a multiple of it (${kvHeads})`);
  const headDim = (j.head_dim ?? null) === null ? hidden / heads : int("head_dim");
  if (!Number.isInteger(headDim))
    fail("num_attention_heads", `hidden_size (${hidden}) must be divisible by it`);
  if (headDim % 2 !== 0) fail("head_dim", `must be even for rotary embeddings, got ${headDim}`);
  const act = j.hidden_act ?? "silu";
  if (act !== "silu") fail("hidden_act", `"${act}" is not supported (only silu)`);
  if (architecture === "Qwen2ForCausalLM" && bool("use_sliding_window", false))
    fail("use_sliding_window", "sliding-window attention is not supported");
  const prf = j.partial_rotary_factor ?? 1;
  if (prf !== 1) fail("partial_rotary_factor", "only 1 is supported");
  const attentionBias = architecture === "Qwen2ForCausalLM" ? false : bool("attention_bias", false);
  // transformers 5 moved rope_theta and the scaling into rope_parameters; read either.
  const rp = (j.rope_parameters ?? null) as Record<string, unknown> | null;
  const scalingField = rp ? "rope_parameters" : "rope_scaling";
  const scaling = (rp ?? j.rope_scaling ?? null) as Record<string, unknown> | null;
  const ropeTheta =
    rp && typeof rp.rope_theta === "number" ? (rp.rope_theta as number) : num("rope_theta", 10000);
  return {
    architecture,
    family: "llama",
    vocabSize: int("vocab_size"),
    hidden,
    layers: int("num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    intermediate: int("intermediate_size"),
    contextLength: int("max_position_embeddings", 2048),
    normEps: num("rms_norm_eps", 1e-6),
    ropeTheta,
    ropeScaling: parseRopeScaling(file, scalingField, scaling),
    qkvBias: architecture === "Qwen2ForCausalLM" ? true : attentionBias,
    oBias: attentionBias,
    mlpBias: bool("mlp_bias", false),
    qkNorm: architecture === "Qwen3ForCausalLM",
    tiedHead: bool("tie_word_embeddings", false),
    ...ids,
    raw: j,
  };
}

function parseRopeScaling(file: string, field: string, s: Record<string, unknown> | null): RopeScaling {
  if (s === null) return { type: "default" };
  if (typeof s !== "object" || Array.isArray(s))
    throw new FileFormatError(file, undefined, field, "must be an object or null");
  const type = (s.rope_type ?? s.type ?? "default") as string;
  const n = (k: string, dflt?: number): number => {
    const v = s[k] ?? dflt;
    if (typeof v !== "number" || !(v > 0))
      throw new FileFormatError(
        file,
        undefined,
        `${field}.${k}`,
        `must be a positive number, got ${JSON.stringify(s[k])}`,
      );
    return v;
  };
  if (type === "default") return { type: "default" };
  if (type === "linear") return { type, factor: n("factor") };
  if (type === "llama3") {
    return {
      type,
      factor: n("factor"),
      lowFreqFactor: n("low_freq_factor"),
      highFreqFactor: n("high_freq_factor"),
      originalMaxPositions: n("original_max_position_embeddings"),
    };
  }
  throw new FileFormatError(
    file,
    undefined,
    `${field}.rope_type`,
    `"${type}" is not supported (supported: default, linear, llama3)`,
  );
}

/**
 * RoPE inverse frequencies θ^(−2i/hd) for i < hd/2, with transformers' scaling rules: linear
 * divides by the factor; llama3 divides low frequencies by it, keeps high ones and
 * interpolates between the two bands.
 */
export function ropeInvFreq(spec: Pick<ArchSpec, "headDim" | "ropeTheta" | "ropeScaling">): Float64Array {
  const hd = spec.headDim;
  const out = new Float64Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) out[i] = 1 / spec.ropeTheta ** ((2 * i) / hd);
  const s = spec.ropeScaling;
  if (s.type === "linear") for (let i = 0; i < out.length; i++) out[i] = out[i]! / s.factor;
  if (s.type === "llama3") {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < out.length; i++) {
      const f = out[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) out[i] = f / s.factor;
      else if (wavelen >= highWavelen) {
        const smooth =
          (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        out[i] = ((1 - smooth) * f) / s.factor + smooth * f;
      }
    }
  }
  return out;
}

/** config.json of `dir` parsed, with eos ids from generation_config.json added when it exists. */
export function readArchConfig(dir: string): ArchSpec {
  const file = join(dir, CONFIG_FILE);
  const spec = parseArchConfig(file, readObject(file));
  const gen = readGenerationConfig(dir);
  if (gen) {
    for (const id of gen.eosTokenIds) if (!spec.eosTokenIds.includes(id)) spec.eosTokenIds.push(id);
    spec.bosTokenId ??= gen.bosTokenId;
    spec.padTokenId ??= gen.padTokenId;
  }
  return spec;
}

export interface GenerationConfig {
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  doSample?: boolean;
  maxNewTokens?: number;
  raw: Record<string, unknown>;
}

/** generation_config.json when present (sampling defaults and eos ids the model was released with). */
export function readGenerationConfig(dir: string): GenerationConfig | undefined {
  const file = join(dir, GENERATION_CONFIG_FILE);
  let j: Record<string, unknown>;
  try {
    j = readObject(file);
  } catch (err) {
    if (err instanceof FileFormatError && err.message.endsWith("file not found")) return undefined;
    throw err;
  }
  const opt = (k: string): number | undefined => {
    const v = j[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number")
      throw new FileFormatError(file, undefined, k, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    eosTokenIds: tokenIdList(file, "eos_token_id", j.eos_token_id),
    bosTokenId: tokenIdList(file, "bos_token_id", j.bos_token_id)[0],
    padTokenId: tokenIdList(file, "pad_token_id", j.pad_token_id)[0],
    temperature: opt("temperature"),
    topP: opt("top_p"),
    topK: opt("top_k"),
    maxNewTokens: opt("max_new_tokens"),
    doSample: typeof j.do_sample === "boolean" ? j.do_sample : undefined,
    raw: j,
  };
}
