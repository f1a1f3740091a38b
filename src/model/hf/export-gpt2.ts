/**
 * The project's GPT as a transformers GPT2LMHeadModel directory, so that what grpo-ts trains
 * loads in transformers and vLLM. The GPT is GPT-2's architecture: pre-LN blocks with
 * LayerNorm eps 1e-5, learned positions, the tanh GELU (transformers' gelu_new), a tied head,
 * attention scores scaled by 1/√head_dim; its q/k/v projections become the fused c_attn
 * ([d, 3d], Conv1D layout, q then k then v), o_proj attn.c_proj, up_proj mlp.c_fc and
 * down_proj mlp.c_proj. Its vocabulary becomes a tokenizer.json (./vocab-tokenizer.ts).
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { writeJsonAtomic } from "../../io/files.ts";
import type { GPT } from "../gpt.ts";
import type { Vocab } from "../tokenizer.ts";
import { parseArchConfig } from "./config.ts";
import { PretrainedLM } from "./model.ts";
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from "./tokenizer.ts";
import { vocabTokenizerConfig, vocabTokenizerJson } from "./vocab-tokenizer.ts";
import { savePretrained } from "./weights.ts";

/** GPT2Config fields describing `gpt` (and its vocabulary's special ids). */
export function gpt2Config(gpt: GPT, vocab?: Vocab): Record<string, unknown> {
  const c = gpt.config;
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: c.vocabSize,
    n_positions: c.contextLength,
    n_ctx: c.contextLength,
    n_embd: c.dModel,
    n_layer: c.nLayers,
    n_head: c.nHeads,
    n_inner: c.dFF ?? 4 * c.dModel,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    use_cache: true,
    bos_token_id: vocab?.bosId ?? null,
    eos_token_id: vocab?.eosId ?? null,
    pad_token_id: vocab?.padId ?? null,
    torch_dtype: "float32",
  };
}

/** The same model as a GPT2LMHeadModel in the engine (adapters merged into the weights). */
export function gptAsPretrained(gpt: GPT, vocab?: Vocab): PretrainedLM {
  const src = gpt.loraConfig ? gpt.clone() : gpt;
  try {
    if (src !== gpt) src.mergeLoRA();
    const w = src.namedWeights();
    const data = (n: string) => w[n]!.dataSync() as Float32Array;
    const spec = parseArchConfig("GPT2LMHeadModel config", gpt2Config(gpt, vocab));
    return new PretrainedLM(spec, (ws) => {
      const m = /^transformer\.h\.(\d+)\.(.+)$/.exec(ws.name);
      if (!m) return data(ws.name);
      const p = `transformer.h.${m[1]}`;
      switch (m[2]) {
        case "attn.c_attn.weight":
          return tf.tidy(
            () =>
              tf
                .concat(
                  ["q_proj", "k_proj", "v_proj"].map((q) => w[`${p}.attn.${q}.weight`]!),
                  1,
                )
                .dataSync() as Float32Array,
          );
        case "attn.c_attn.bias":
          return tf.tidy(
            () =>
              tf
                .concat(["q_proj", "k_proj", "v_proj"].map((q) => w[`${p}.attn.${q}.bias`]!))
                .dataSync() as Float32Array,
          );
        case "attn.c_proj.weight":
          return data(`${p}.attn.o_proj.weight`);
        case "attn.c_proj.bias":
          return data(`${p}.attn.o_proj.bias`);
        case "mlp.c_fc.weight":
          return data(`${p}.mlp.up_proj.weight`);
        case "mlp.c_fc.bias":
          return data(`${p}.mlp.up_proj.bias`);
        case "mlp.c_proj.weight":
          return data(`${p}.mlp.down_proj.weight`);
        case "mlp.c_proj.bias":
          return data(`${p}.mlp.down_proj.bias`);
        default:
          return data(ws.name);
      }
    });
  } finally {
    if (src !== gpt) src.dispose();
  }
}

/**
 * Writes `gpt` as a GPT2LMHeadModel directory: config.json, model.safetensors (F32) and, with
 * a vocabulary, tokenizer.json + tokenizer_config.json.
 */
export function saveGptAsPretrained(dir: string, gpt: GPT, vocab?: Vocab): void {
  const m = gptAsPretrained(gpt, vocab);
  try {
    savePretrained(dir, m, { dtype: "F32" });
  } finally {
    m.dispose();
  }
  if (vocab) {
    writeJsonAtomic(join(dir, TOKENIZER_FILE), vocabTokenizerJson(vocab));
    writeJsonAtomic(join(dir, TOKENIZER_CONFIG_FILE), vocabTokenizerConfig(vocab, gpt.config.contextLength));
  }
}
