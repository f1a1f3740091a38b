/**
 * Decoder-only transformer policy: pre-norm (LayerNorm) blocks of causal multi-head attention
 * and a GELU MLP, learned absolute positions, output head tied to the token embedding
 * (logits = h · wteᵀ). Optional LoRA adapters on any of the six projections.
 *
 * Weight layout follows GPT-2's Conv1D convention: a projection weight is [d_in, d_out] and a
 * layer computes x·W + b. Hidden states are kept as 2-D [B·T, d] between blocks so each
 * projection is a single fused matMul with bias; only attention reshapes to [B, H, T, hd].
 */
import * as tf from "@tensorflow/tfjs-core";
import "./gradients.ts";
import { Rng } from "../core/rng.ts";
import { assignNamedWeights, type CausalLM, type KVCache } from "./causal-lm.ts";
import {
  attentionSoftmax,
  embed,
  gelu,
  geluForward,
  layerNorm,
  layerNormForward,
  linear,
  matMul,
  product,
} from "./ops.ts";

export interface GPTConfig {
  vocabSize: number;
  contextLength: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  /** MLP width; default 4·dModel. */
  dFF?: number;
  /** Learned absolute positions, as GPT-2; rotary models are the Hugging Face architectures in model/hf. */
  positional?: "learned";
  dropout?: 0;
}

export type LoRATarget = "q_proj" | "k_proj" | "v_proj" | "o_proj" | "up_proj" | "down_proj";

export interface LoRAConfig {
  r: number;
  alpha: number;
  targetModules: LoRATarget[];
}

export const LORA_TARGETS: readonly LoRATarget[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "up_proj",
  "down_proj",
];

interface LoRAPair {
  /** [d_in, r], small random init. */
  a: tf.Variable;
  /** [r, d_out], zero init so the adapted model starts equal to the base. */
  b: tf.Variable;
  scale: tf.Scalar;
}

interface Linear {
  w: tf.Variable;
  b: tf.Variable;
  lora?: LoRAPair;
}

interface Block {
  ln1g: tf.Variable;
  ln1b: tf.Variable;
  proj: Record<LoRATarget, Linear>;
  ln2g: tf.Variable;
  ln2b: tf.Variable;
}

export type { KVCache };

const LN_EPS = 1e-5;
const MASK_NEG = -1e9;

function moduleGroup(m: LoRATarget): "attn" | "mlp" {
  return m === "up_proj" || m === "down_proj" ? "mlp" : "attn";
}

export function validateConfig(config: GPTConfig, where = "GPT config"): Required<GPTConfig> {
  const ints: (keyof GPTConfig)[] = ["vocabSize", "contextLength", "dModel", "nLayers", "nHeads"];
  for (const k of ints) {
    const v = config[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: field "${k}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (config.dModel % config.nHeads !== 0) {
    throw new Error(`${where}: dModel (${config.dModel}) must be divisible by nHeads (${config.nHeads})`);
  }
  const dFF = config.dFF ?? 4 * config.dModel;
  if (!Number.isInteger(dFF) || dFF <= 0) throw new Error(`${where}: field "dFF" must be a positive integer`);
  // A config file may name another scheme; say so rather than train with the wrong positions.
  const positional: string = config.positional ?? "learned";
  if (positional !== "learned") {
    throw new Error(`${where}: positional "${positional}" is not supported (only "learned")`);
  }
  if (config.dropout !== undefined && config.dropout !== 0) {
    throw new Error(`${where}: dropout must be 0 (dropout is not implemented)`);
  }
  return { ...config, dFF, positional: "learned", dropout: 0 };
}

function randn(shape: number[], std: number, rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
  return tf.tensor(data, shape, "float32");
}

export class GPT implements CausalLM {
  readonly config: GPTConfig;
  private readonly cfg: Required<GPTConfig>;
  private wte!: tf.Variable; // [V, d]
  private wpe!: tf.Variable; // [contextLength, d]
  private blocks: Block[] = [];
  private lnfg!: tf.Variable;
  private lnfb!: tf.Variable;
  private lora: LoRAConfig | null = null;
  private masks = new Map<number, tf.Tensor2D>();
  private readonly consts: Record<"attnScale", tf.Scalar>;
  private disposed = false;
  /** Set while sampling: plain ops, skipping the custom-gradient wrappers' extra kernels. */
  private inference = false;

  constructor(config: GPTConfig, rng: Rng) {
    this.cfg = validateConfig(config);
    this.config = { ...config };
    const { vocabSize: V, contextLength: C, dModel: d, nLayers: L, dFF } = this.cfg;
    const hd = d / this.cfg.nHeads;
    this.consts = {
      attnScale: tf.keep(tf.scalar(1 / Math.sqrt(hd))),
    };
    const v = (t: tf.Tensor) => tf.variable(t, true);
    tf.tidy(() => {
      this.wte = v(randn([V, d], 0.02, rng));
      this.wpe = v(randn([C, d], 0.01, rng));
      const residStd = 0.02 / Math.sqrt(2 * L);
      const lin = (din: number, dout: number, std: number): Linear => ({
        w: v(randn([din, dout], std, rng)),
        b: v(tf.zeros([dout])),
      });
      for (let i = 0; i < L; i++) {
        this.blocks.push({
          ln1g: v(tf.ones([d])),
          ln1b: v(tf.zeros([d])),
          proj: {
            q_proj: lin(d, d, 0.02),
            k_proj: lin(d, d, 0.02),
            v_proj: lin(d, d, 0.02),
            o_proj: lin(d, d, residStd),
            up_proj: lin(d, dFF, 0.02),
            down_proj: lin(dFF, d, residStd),
          },
          ln2g: v(tf.ones([d])),
          ln2b: v(tf.zeros([d])),
        });
      }
      this.lnfg = v(tf.ones([d]));
      this.lnfb = v(tf.zeros([d]));
    });
  }

  get vocabSize(): number {
    return this.cfg.vocabSize;
  }

  get contextLength(): number {
    return this.cfg.contextLength;
  }

  get loraConfig(): LoRAConfig | null {
    return this.lora ? { ...this.lora, targetModules: [...this.lora.targetModules] } : null;
  }

  /** logits [B, T, V] for int32 ids [B, T] (causal). Call inside tf.tidy. */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    this.assertAlive();
    const [B, T] = ids.shape;
    if (T > this.cfg.contextLength) {
      throw new Error(`GPT.forward: sequence length ${T} exceeds contextLength ${this.cfg.contextLength}`);
    }
    return tf.tidy(() => {
      const { vocabSize: V, dModel: d } = this.cfg;
      // oneHot·matMul instead of gather: the wasm backend has no kernel for gather's gradient.
      // (The wasm OneHot kernel ignores a float dtype and writes integer bits, hence the cast.)
      const oh = tf.cast(tf.oneHot(tf.reshape(ids, [B * T]), V), "float32");
      const tok = embed(oh as tf.Tensor2D, this.wte as tf.Tensor2D);
      const pos = tf.slice(this.wpe, [0, 0], [T, d]);
      let h = tf.reshape(tf.add(tf.reshape(tok, [B, T, d]), pos), [B * T, d]) as tf.Tensor2D;
      const mask = this.causalMask(T);
      for (const blk of this.blocks) h = this.block(blk, h, B, T, mask, null).h;
      return tf.reshape(this.head(h), [B, T, V]) as tf.Tensor3D;
    });
  }

  /**
   * log π(ids[:, t+1] | ids[:, ≤t]) for t = 0..T-2 → [B, T-1], and optionally the entropy of
   * the full next-token distribution at each of those positions. Every row starts at position
   * 0, so batch sequences of different lengths by padding on the right: under the causal mask
   * trailing pads change nothing before them (mask their positions out of the loss). This
   * matches the sampler, whose positions count from each row's first real token.
   */
  tokenLogprobs(
    ids: tf.Tensor2D,
    opts?: { withEntropy?: boolean },
  ): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D } {
    const [B, T] = ids.shape;
    if (T < 2) throw new Error(`GPT.tokenLogprobs: need at least 2 tokens per row, got ${T}`);
    return tf.tidy(() => {
      const V = this.cfg.vocabSize;
      const logits = this.forward(ids);
      const logp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [B, T - 1, V]));
      const targets = tf.slice(ids, [0, 1], [B, T - 1]);
      const oh = tf.cast(tf.oneHot(targets, V), "float32");
      const logprobs = tf.sum(tf.mul(logp, oh), -1) as tf.Tensor2D;
      if (!opts?.withEntropy) return { logprobs };
      const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor2D;
      return { logprobs, entropy };
    });
  }

  /**
   * Incremental forward for sampling. `ids`/`positions` are [B, Tq]; `mask` is an additive
   * [B, 1, Tq, Tk] mask where Tk = cached length + Tq. Returns last-position logits [B, V] and
   * the grown cache (new tensors; the caller disposes the old cache).
   */
  forwardCached(
    ids: tf.Tensor2D,
    positions: tf.Tensor2D,
    mask: tf.Tensor4D,
    cache: KVCache | null,
  ): { logits: tf.Tensor2D; cache: KVCache } {
    this.assertAlive();
    const [B, Tq] = ids.shape;
    this.inference = true;
    try {
      return this.cachedStep(ids, positions, mask, cache, B, Tq);
    } finally {
      this.inference = false;
    }
  }

  private cachedStep(
    ids: tf.Tensor2D,
    positions: tf.Tensor2D,
    mask: tf.Tensor4D,
    cache: KVCache | null,
    B: number,
    Tq: number,
  ): { logits: tf.Tensor2D; cache: KVCache } {
    return tf.tidy(() => {
      const d = this.cfg.dModel;
      const tok = tf.gather(this.wte, tf.reshape(ids, [B * Tq]));
      const pos = tf.gather(this.wpe, tf.reshape(positions, [B * Tq]));
      let h = tf.add(tok, pos) as tf.Tensor2D;
      const next: KVCache = { k: [], v: [] };
      this.blocks.forEach((blk, i) => {
        const past = cache ? { k: cache.k[i]!, v: cache.v[i]! } : null;
        const r = this.block(blk, h, B, Tq, mask, past);
        h = r.h;
        next.k.push(r.k);
        next.v.push(r.v);
      });
      const last = tf.reshape(tf.slice(tf.reshape(h, [B, Tq, d]), [0, Tq - 1, 0], [B, 1, d]), [B, d]);
      return { logits: this.head(last as tf.Tensor2D), cache: next };
    });
  }

  /** Base weights, or only the LoRA A/B matrices while LoRA is enabled (the base is frozen then). */
  trainableVariables(): tf.Variable[] {
    if (this.lora) {
      const out: tf.Variable[] = [];
      for (const blk of this.blocks) {
        for (const m of LORA_TARGETS) {
          const l = blk.proj[m].lora;
          if (l) out.push(l.a, l.b);
        }
      }
      return out;
    }
    return this.baseVariables();
  }

  /**
   * Adds adapters x·W + (alpha/r)·x·A·B on the target projections (A ~ N(0, 1/d_in), B = 0 so
   * the adapted model starts equal to the base) and freezes the base (trainable = false, so optimizers that collect all trainable
   * variables leave it alone too).
   */
  enableLoRA(cfg: LoRAConfig, rng: Rng): void {
    this.assertAlive();
    if (this.lora) throw new Error("GPT.enableLoRA: LoRA is already enabled (merge it first)");
    if (!Number.isInteger(cfg.r) || cfg.r <= 0) throw new Error(`LoRA config: r must be a positive integer`);
    if (!(cfg.alpha > 0)) throw new Error(`LoRA config: alpha must be positive`);
    if (cfg.targetModules.length === 0) throw new Error("LoRA config: targetModules is empty");
    for (const m of cfg.targetModules) {
      if (!LORA_TARGETS.includes(m)) {
        throw new Error(`LoRA config: unknown target module "${m}" (known: ${LORA_TARGETS.join(", ")})`);
      }
    }
    this.lora = { r: cfg.r, alpha: cfg.alpha, targetModules: [...new Set(cfg.targetModules)] };
    for (const blk of this.blocks) {
      for (const m of this.lora.targetModules) {
        const lin = blk.proj[m];
        const [din, dout] = lin.w.shape as [number, number];
        lin.lora = tf.tidy(() => ({
          a: tf.variable(randn([din, cfg.r], 1 / Math.sqrt(din), rng), true),
          b: tf.variable(tf.zeros([cfg.r, dout]), true),
          scale: tf.keep(tf.scalar(cfg.alpha / cfg.r)),
        }));
      }
    }
    for (const w of this.baseVariables()) w.trainable = false;
  }

  /** Folds the adapters into the base weights (W += (alpha/r)·A·B) and removes them. */
  mergeLoRA(): void {
    this.assertAlive();
    if (!this.lora) throw new Error("GPT.mergeLoRA: LoRA is not enabled");
    for (const blk of this.blocks) {
      for (const m of LORA_TARGETS) {
        const lin = blk.proj[m];
        const l = lin.lora;
        if (!l) continue;
        tf.tidy(() => lin.w.assign(tf.add(lin.w, tf.mul(tf.matMul(l.a, l.b), l.scale))));
        l.a.dispose();
        l.b.dispose();
        l.scale.dispose();
        lin.lora = undefined;
      }
    }
    this.lora = null;
    for (const w of this.baseVariables()) w.trainable = true;
  }

  /**
   * GPT-2/PEFT-like names → the live variables (not copies: do not dispose them). Projection
   * weights are [d_in, d_out]; LoRA entries are `<module>.lora_A.weight` [d_in, r] and
   * `<module>.lora_B.weight` [r, d_out] in this in-memory layout (the adapter file transposes).
   */
  namedWeights(): Record<string, tf.Tensor> {
    this.assertAlive();
    const out: Record<string, tf.Tensor> = {
      "transformer.wte.weight": this.wte,
      "transformer.wpe.weight": this.wpe,
    };
    this.blocks.forEach((blk, i) => {
      const p = `transformer.h.${i}`;
      out[`${p}.ln_1.weight`] = blk.ln1g;
      out[`${p}.ln_1.bias`] = blk.ln1b;
      out[`${p}.ln_2.weight`] = blk.ln2g;
      out[`${p}.ln_2.bias`] = blk.ln2b;
      for (const m of LORA_TARGETS) {
        const lin = blk.proj[m];
        const base = `${p}.${moduleGroup(m)}.${m}`;
        out[`${base}.weight`] = lin.w;
        out[`${base}.bias`] = lin.b;
        if (lin.lora) {
          out[`${base}.lora_A.weight`] = lin.lora.a;
          out[`${base}.lora_B.weight`] = lin.lora.b;
        }
      }
    });
    out["transformer.ln_f.weight"] = this.lnfg;
    out["transformer.ln_f.bias"] = this.lnfb;
    return out;
  }

  /**
   * Copies values into the model. Every name must be known and shape-matched; with
   * `partial: false` (default) every weight of the model must be present as well.
   */
  loadNamedWeights(w: Record<string, tf.Tensor>, opts?: { partial?: boolean; source?: string }): void {
    assignNamedWeights(this.namedWeights(), w, opts);
  }

  /** Deep copy (weights, LoRA adapters and their frozen/trainable state). */
  clone(): GPT {
    this.assertAlive();
    const copy = new GPT(this.config, new Rng(0));
    if (this.lora) copy.enableLoRA(this.lora, new Rng(0));
    copy.loadNamedWeights(this.namedWeights());
    return copy;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.allVariables()) v.dispose();
    for (const blk of this.blocks) for (const m of LORA_TARGETS) blk.proj[m].lora?.scale.dispose();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    for (const c of Object.values(this.consts)) c.dispose();
  }

  private baseVariables(): tf.Variable[] {
    const out: tf.Variable[] = [this.wte, this.wpe];
    for (const blk of this.blocks) {
      out.push(blk.ln1g, blk.ln1b, blk.ln2g, blk.ln2b);
      for (const m of LORA_TARGETS) out.push(blk.proj[m].w, blk.proj[m].b);
    }
    out.push(this.lnfg, this.lnfb);
    return out;
  }

  private allVariables(): tf.Variable[] {
    const out = this.baseVariables();
    for (const blk of this.blocks) {
      for (const m of LORA_TARGETS) {
        const l = blk.proj[m].lora;
        if (l) out.push(l.a, l.b);
      }
    }
    return out;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error("GPT: model has been disposed");
  }

  /** Additive causal mask [T, T], built once per length and kept for the model's lifetime. */
  private causalMask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      const data = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) data[i * T + j] = MASK_NEG;
      m = tf.keep(tf.tensor2d(data, [T, T]));
      this.masks.set(T, m);
    }
    return m;
  }

  private layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
    const f = this.inference ? layerNormForward : layerNorm;
    return f(x, g as tf.Tensor1D, b as tf.Tensor1D, LN_EPS);
  }

  private linear(x: tf.Tensor2D, lin: Linear): tf.Tensor2D {
    const y = this.inference
      ? (tf.fused.matMul({ a: x, b: lin.w, bias: lin.b }) as tf.Tensor2D)
      : linear(x, lin.w as tf.Tensor2D, lin.b as tf.Tensor1D);
    if (!lin.lora) return y;
    const mm = this.inference ? tf.matMul : matMul;
    const delta = mm(mm(x, lin.lora.a as tf.Tensor2D), lin.lora.b as tf.Tensor2D);
    return tf.add(y, tf.mul(delta, lin.lora.scale)) as tf.Tensor2D;
  }

  private head(h: tf.Tensor2D): tf.Tensor2D {
    const n = this.layerNorm(h, this.lnfg, this.lnfb);
    const wte = this.wte as tf.Tensor2D;
    return this.inference ? product(n, wte, false, true) : matMul(n, wte, false, true);
  }

  /** One pre-norm block on [B·Tq, d]; with `past`, keys/values are appended to the cache. */
  private block(
    blk: Block,
    x: tf.Tensor2D,
    B: number,
    Tq: number,
    mask: tf.Tensor,
    past: { k: tf.Tensor4D; v: tf.Tensor4D } | null,
  ): { h: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const { dModel: d, nHeads: H } = this.cfg;
    const hd = d / H;
    // With one query position (sampling), [B, 1, H, hd] → [B, H, 1, hd] moves no data: a
    // reshape does it without a transpose kernel.
    const heads = (t: tf.Tensor2D) =>
      (Tq === 1
        ? tf.reshape(t, [B, H, 1, hd])
        : tf.transpose(tf.reshape(t, [B, Tq, H, hd]), [0, 2, 1, 3])) as tf.Tensor4D;
    const a = this.layerNorm(x, blk.ln1g, blk.ln1b);
    // Scaling q (B·T·d values) is cheaper than scaling the scores (B·H·T·T values).
    const q = heads(tf.mul(this.linear(a, blk.proj.q_proj), this.consts.attnScale) as tf.Tensor2D);
    let k = heads(this.linear(a, blk.proj.k_proj));
    let v = heads(this.linear(a, blk.proj.v_proj));
    if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }
    const mm = this.inference ? product : matMul;
    const att = attentionSoftmax(mm(q, k, false, true), mask, !this.inference);
    const o = mm(att, v);
    const ctx = tf.reshape(Tq === 1 ? o : tf.transpose(o, [0, 2, 1, 3]), [B * Tq, d]) as tf.Tensor2D;
    const h1 = tf.add(x, this.linear(ctx, blk.proj.o_proj)) as tf.Tensor2D;
    const m = this.layerNorm(h1, blk.ln2g, blk.ln2b);
    const up = (this.inference ? geluForward : gelu)(this.linear(m, blk.proj.up_proj));
    const h2 = tf.add(h1, this.linear(up, blk.proj.down_proj)) as tf.Tensor2D;
    return { h: h2, k, v };
  }
}
