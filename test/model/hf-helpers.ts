import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../../src/core/rng.ts";
import { type Architecture, parseArchConfig } from "../../src/model/hf/config.ts";
import { PretrainedLM, type WeightSource } from "../../src/model/hf/model.ts";
import { type FloatDtype, savePretrained } from "../../src/model/hf/weights.ts";

/** Tiny configs in each architecture's own config.json vocabulary, exercising its particulars. */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  // grouped-query attention, llama3 rope scaling, untied head
  llama: {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: 61,
    hidden_size: 32,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
    hidden_act: "silu",
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: [2, 3],
    torch_dtype: "float32",
  },
  // q/k/v biases, tied head
  qwen2: {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: 53,
    hidden_size: 24,
    intermediate_size: 36,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    hidden_act: "silu",
    tie_word_embeddings: true,
    use_sliding_window: false,
    eos_token_id: 4,
    torch_dtype: "bfloat16",
  },
  // per-head q/k RMSNorm, head_dim independent of hidden_size / heads
  qwen3: {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    vocab_size: 47,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 12,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    hidden_act: "silu",
    attention_bias: false,
    tie_word_embeddings: true,
    eos_token_id: 5,
    torch_dtype: "float16",
  },
  // learned positions, LayerNorm, fused c_attn (Conv1D), gelu_new, untied head
  gpt2: {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: 59,
    n_embd: 24,
    n_layer: 2,
    n_head: 3,
    n_inner: null,
    n_positions: 64,
    n_ctx: 64,
    layer_norm_epsilon: 1e-5,
    activation_function: "gelu_new",
    tie_word_embeddings: false,
    bos_token_id: 0,
    eos_token_id: 0,
    torch_dtype: "float32",
  },
};

/**
 * Every tensor random — norms 1 + N(0, 0.2²), biases N(0, 0.2²), the rest N(0, std²) — so that
 * a mixed-up gain, bias or layout shows in the logits.
 */
export function allRandom(seed: number, std = 0.25): WeightSource {
  const rng = new Rng(seed);
  return (w, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const isNorm = /(layernorm|norm|ln_\d|ln_f)\.weight$/.test(w.name);
    for (let i = 0; i < n; i++)
      out[i] = isNorm ? 1 + 0.2 * rng.normal() : (w.name.endsWith(".bias") ? 0.2 : std) * rng.normal();
    return out;
  };
}

export function tinyModel(name: string, seed = 1): PretrainedLM {
  const cfg = TINY_CONFIGS[name]!;
  return new PretrainedLM(parseArchConfig(`${name}/config.json`, cfg), allRandom(seed));
}

/** Writes a tiny random model of `name` as a Hugging Face directory. */
export function writeTinyModel(
  dir: string,
  name: string,
  opts: { seed?: number; dtype?: FloatDtype; maxShardBytes?: number } = {},
): void {
  const m = tinyModel(name, opts.seed ?? 1);
  try {
    savePretrained(dir, m, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes });
  } finally {
    m.dispose();
  }
}

export type Arch = Architecture;

/** The python3 that can import torch (Debian's python3-torch installs for /usr/bin/python3), or null. */
export function torchPython(): string | null {
  for (const py of [process.env.PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string =>
    Boolean(p),
  )) {
    try {
      execFileSync(py, ["-c", "import torch"], { stdio: "ignore" });
      return py;
    } catch {
      // not this one
    }
  }
  return null;
}

const SCRIPT = fileURLToPath(new URL("hf_reference.py", import.meta.url));

/** Runs the PyTorch reference on `jobs` (see hf_reference.py) and returns its per-job results. */
export function runReference<T>(python: string, workDir: string, jobs: unknown[]): T[] {
  const file = join(workDir, "jobs.json");
  writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync(python, [SCRIPT, file], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`hf_reference.py failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as T[];
}
