/**
 * Hugging Face causal LMs in the engine: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM
 * (RMSNorm, RoPE, SwiGLU, grouped-query attention) and GPT2LMHeadModel (LayerNorm, learned
 * positions, fused c_attn, gelu_new), following transformers' modeling files.
 *
 * In memory every projection weight is [d_in, d_out] (x·W, the fast untransposed product of
 * the wasm backend): torch Linear weights ([d_out, d_in] in the file) are transposed on load
 * and on save, GPT-2's Conv1D weights are already in that layout. Embeddings and the head stay
 * [V, d] (the head multiplies by the transpose). `namedWeights` uses the checkpoint's names
 * with this in-memory layout; ./weights.ts converts to and from the files.
 *
 * Hidden states are 2-D [B·T, d] between blocks. Grouped-query attention never repeats keys:
 * the g = H/H_kv query heads that share a key head are laid out as g·T rows of one product.
 */
import * as tf from "@tensorflow/tfjs-core";
import { rowKernelsActive } from "../blas.ts";
import "../gradients.ts";
import { Rng } from "../../core/rng.ts";
import { assignNamedWeights, type CausalLM, causalMaskData, type KVCache } from "../causal-lm.ts";
import {
  attentionSoftmax,
  embedRows,
  frozenLayerNorm,
  frozenLinear,
  gelu,
  geluForward,
  headLogprobs,
  layerNorm,
  layerNormForward,
  linear,
  matMul,
  product,
  rmsNorm,
  rmsNormForward,
  rope,
  rotateHalfMatrix,
  swiglu,
  swigluForward,
} from "../ops.ts";
import { type ArchSpec, ropeInvFreq } from "./config.ts";

/** LoRA settings with PEFT's meaning (alpha/r scaling, or alpha/√r with useRslora). */
export interface HFLoRAConfig {
  r: number;
  alpha: number;
  dropout?: number;
  /** module names matched as PEFT does: the full module path or its last component(s). */
  targetModules: string[];
  useRslora?: boolean;
}

/** The module names LoRA may target, per family. */
export const HF_LORA_TARGETS = {
  llama: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
  gpt2: ["c_attn", "c_proj", "c_fc"],
} as const;

interface LoRA {
  /** [d_in, r]; PEFT's default init U(−1/√d_in, 1/√d_in). */
  a: tf.Variable;
  /** [r, d_out], zero so the adapted model starts equal to the base. */
  b: tf.Variable;
  scale: number;
  dropout: number;
}

export interface Proj {
  /** module path in the checkpoint, e.g. "model.layers.0.self_attn.q_proj". */
  path: string;
  /** [d_in, d_out]. */
  w: tf.Variable;
  b: tf.Variable | null;
  /** torch Linear (stored [d_out, d_in] in the file) rather than GPT-2's Conv1D. */
  linearLayout: boolean;
  lora?: LoRA;
}

interface Norm {
  path: string;
  g: tf.Variable;
  b: tf.Variable | null;
}

interface Layer {
  ln1: Norm;
  ln2: Norm;
  /** llama: q, k, v; gpt2: the fused c_attn. */
  qkv: Proj[];
  o: Proj;
  qNorm?: Norm;
  kNorm?: Norm;
  /** llama: gate, up; gpt2: c_fc. */
  mlpIn: Proj[];
  down: Proj;
}

/** RoPE tables [c, c] and [s, s] at the positions of a batch, [N, 1, hd]; q's carry the 1/√hd score scale. */
interface Rotation {
  cos: tf.Tensor3D;
  sin: tf.Tensor3D;
  qCos: tf.Tensor3D;
  qSin: tf.Tensor3D;
}

/** One tensor the model is built from: its checkpoint name and shape as stored in the file. */
export interface WeightSpec {
  name: string;
  fileShape: number[];
  /** torch Linear weight: transposed between file and memory. */
  linearLayout: boolean;
}

/** Every tensor of the architecture in the checkpoint's names and shapes (no LoRA). */
export function weightSpecs(spec: ArchSpec): WeightSpec[] {
  const out: WeightSpec[] = [];
  const add = (name: string, fileShape: number[], linearLayout = false) =>
    out.push({ name, fileShape, linearLayout });
  const { hidden: d, vocabSize: V, intermediate: ff } = spec;
  if (spec.family === "gpt2") {
    add("transformer.wte.weight", [V, d]);
    add("transformer.wpe.weight", [spec.contextLength, d]);
    for (let i = 0; i < spec.layers; i++) {
      const p = `transformer.h.${i}`;
      add(`${p}.ln_1.weight`, [d]);
      add(`${p}.ln_1.bias`, [d]);
      add(`${p}.attn.c_attn.weight`, [d, 3 * d]);
      add(`${p}.attn.c_attn.bias`, [3 * d]);
      add(`${p}.attn.c_proj.weight`, [d, d]);
      add(`${p}.attn.c_proj.bias`, [d]);
      add(`${p}.ln_2.weight`, [d]);
      add(`${p}.ln_2.bias`, [d]);
      add(`${p}.mlp.c_fc.weight`, [d, ff]);
      add(`${p}.mlp.c_fc.bias`, [ff]);
      add(`${p}.mlp.c_proj.weight`, [ff, d]);
      add(`${p}.mlp.c_proj.bias`, [d]);
    }
    add("transformer.ln_f.weight", [d]);
    add("transformer.ln_f.bias", [d]);
  } else {
    const q = spec.heads * spec.headDim;
    const kv = spec.kvHeads * spec.headDim;
    add("model.embed_tokens.weight", [V, d]);
    for (let i = 0; i < spec.layers; i++) {
      const p = `model.layers.${i}`;
      add(`${p}.input_layernorm.weight`, [d]);
      for (const [m, n] of [
        ["q_proj", q],
        ["k_proj", kv],
        ["v_proj", kv],
      ] as const) {
        add(`${p}.self_attn.${m}.weight`, [n, d], true);
        if (spec.qkvBias) add(`${p}.self_attn.${m}.bias`, [n]);
      }
      add(`${p}.self_attn.o_proj.weight`, [d, q], true);
      if (spec.oBias) add(`${p}.self_attn.o_proj.bias`, [d]);
      if (spec.qkNorm) {
        add(`${p}.self_attn.q_norm.weight`, [spec.headDim]);
        add(`${p}.self_attn.k_norm.weight`, [spec.headDim]);
      }
      add(`${p}.post_attention_layernorm.weight`, [d]);
      for (const [m, shape] of [
        ["gate_proj", [ff, d]],
        ["up_proj", [ff, d]],
        ["down_proj", [d, ff]],
      ] as const) {
        add(`${p}.mlp.${m}.weight`, [...shape], true);
        if (spec.mlpBias) add(`${p}.mlp.${m}.bias`, [shape[0]]);
      }
    }
    add("model.norm.weight", [d]);
  }
  if (!spec.tiedHead) add("lm_head.weight", [V, d]);
  return out;
}

/** Supplies a weight in memory layout (already transposed for linear weights), float32. */
export type WeightSource = (w: WeightSpec, memoryShape: number[]) => Float32Array;

function memoryShape(w: WeightSpec): number[] {
  return w.linearLayout ? [w.fileShape[1]!, w.fileShape[0]!] : w.fileShape;
}

/** A random model of `spec` (weights N(0, std²), norms 1, biases 0), for tests and benchmarks. */
export function randomWeights(rng: Rng, std = 0.02): WeightSource {
  return (w, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /(layernorm|norm|ln_\d|ln_f)\.weight$/.test(w.name);
    if (isNorm) data.fill(1);
    else if (!w.name.endsWith(".bias")) for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    return data;
  };
}

export class PretrainedLM implements CausalLM {
  readonly spec: ArchSpec;
  private wte!: tf.Variable;
  private wpe: tf.Variable | null = null;
  private lmHead: tf.Variable | null = null;
  private layers: Layer[] = [];
  private lnf!: Norm;
  private readonly vars = new Map<string, tf.Variable>();
  private lora: HFLoRAConfig | null = null;
  private masks = new Map<number, tf.Tensor2D>();
  private rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; length: number } | null = null;
  private rotMatrix: tf.Tensor2D | null = null;
  private readonly invFreq: Float64Array | null;
  private readonly qScale: number;
  private inference = false;
  private training = false;
  /** seed of the next dropout mask; a recomputed block rewinds it to draw the same masks. */
  private dropoutSeed = 0;
  private checkpointing: boolean | "auto" = "auto";
  private readonly merged = new Map<
    Proj,
    { a: object; b: object; base: object; transposed: boolean; w: tf.Tensor2D }
  >();
  /** checkpointing: frozen base products kept by a block's forward pass for its recomputation. */
  private capture: Map<Proj, tf.Tensor2D> | null = null;
  private capturable = new Set<Proj>();
  private replay: Map<Proj, tf.Tensor2D> | null = null;
  private readonly outstanding = new Set<Map<Proj, tf.Tensor2D>>();
  private capturedBytes = 0;
  private mergedSize = 0;
  private disposed = false;

  constructor(spec: ArchSpec, source: WeightSource) {
    this.spec = spec;
    this.invFreq = spec.family === "llama" ? ropeInvFreq(spec) : null;
    this.qScale = 1 / Math.sqrt(spec.headDim);
    try {
      for (const w of weightSpecs(spec)) {
        const shape = memoryShape(w);
        const data = source(w, shape);
        const n = shape.reduce((a, b) => a * b, 1);
        if (data.length !== n)
          throw new Error(`weight "${w.name}": expected ${n} values for [${shape}], got ${data.length}`);
        const init = tf.tensor(data, shape, "float32");
        this.vars.set(w.name, tf.variable(init, true, `${w.name}#${nextId()}`));
        init.dispose();
      }
    } catch (err) {
      for (const v of this.vars.values()) v.dispose();
      throw err;
    }
    this.wire();
  }

  get vocabSize(): number {
    return this.spec.vocabSize;
  }

  get contextLength(): number {
    return this.spec.contextLength;
  }

  get loraConfig(): HFLoRAConfig | null {
    return this.lora ? { ...this.lora, targetModules: [...this.lora.targetModules] } : null;
  }

  /** Every projection (LoRA candidates), in layer order. */
  projections(): Proj[] {
    return this.layers.flatMap((l) => [...l.qkv, l.o, ...l.mlpIn, l.down]);
  }

  private v(name: string): tf.Variable {
    const x = this.vars.get(name);
    if (!x) throw new Error(`PretrainedLM: no weight "${name}"`);
    return x;
  }

  private opt(name: string): tf.Variable | null {
    return this.vars.get(name) ?? null;
  }

  private wire(): void {
    const s = this.spec;
    const proj = (path: string, linearLayout: boolean): Proj => ({
      path,
      w: this.v(`${path}.weight`),
      b: this.opt(`${path}.bias`),
      linearLayout,
    });
    const norm = (path: string): Norm => ({ path, g: this.v(`${path}.weight`), b: this.opt(`${path}.bias`) });
    if (s.family === "gpt2") {
      this.wte = this.v("transformer.wte.weight");
      this.wpe = this.v("transformer.wpe.weight");
      for (let i = 0; i < s.layers; i++) {
        const p = `transformer.h.${i}`;
        this.layers.push({
          ln1: norm(`${p}.ln_1`),
          ln2: norm(`${p}.ln_2`),
          qkv: [proj(`${p}.attn.c_attn`, false)],
          o: proj(`${p}.attn.c_proj`, false),
          mlpIn: [proj(`${p}.mlp.c_fc`, false)],
          down: proj(`${p}.mlp.c_proj`, false),
        });
      }
      this.lnf = norm("transformer.ln_f");
    } else {
      this.wte = this.v("model.embed_tokens.weight");
      for (let i = 0; i < s.layers; i++) {
        const p = `model.layers.${i}`;
        this.layers.push({
          ln1: norm(`${p}.input_layernorm`),
          ln2: norm(`${p}.post_attention_layernorm`),
          qkv: ["q_proj", "k_proj", "v_proj"].map((m) => proj(`${p}.self_attn.${m}`, true)),
          o: proj(`${p}.self_attn.o_proj`, true),
          qNorm: s.qkNorm ? norm(`${p}.self_attn.q_norm`) : undefined,
          kNorm: s.qkNorm ? norm(`${p}.self_attn.k_norm`) : undefined,
          mlpIn: ["gate_proj", "up_proj"].map((m) => proj(`${p}.mlp.${m}`, true)),
          down: proj(`${p}.mlp.down_proj`, true),
        });
      }
      this.lnf = norm("model.norm");
    }
    this.lmHead = s.tiedHead ? null : this.v("lm_head.weight");
  }

  // -------------------------------------------------------------------------------------------
  // Forward passes

  forward(ids: tf.Tensor2D): tf.Tensor3D {
    this.assertAlive();
    const [B, T] = ids.shape;
    this.checkLength(T);
    return tf.tidy(() => {
      const h = this.hidden(ids, this.trainPositions(B, T), this.causalMask(T), null).h;
      return tf.reshape(this.head(h), [B, T, this.spec.vocabSize]) as tf.Tensor3D;
    });
  }

  /**
   * log π(ids[:, t+1] | ids[:, ≤t]) → [B, T-1] (and the entropies). Every row starts at
   * position 0: batch sequences of different lengths by padding on the right and masking the
   * pads out of the loss, as for the project's GPT.
   */
  tokenLogprobs(
    ids: tf.Tensor2D,
    opts?: { withEntropy?: boolean },
  ): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D } {
    this.assertAlive();
    const [B, T] = ids.shape;
    if (T < 2) throw new Error(`tokenLogprobs: need at least 2 tokens per row, got ${T}`);
    this.checkLength(T);
    return tf.tidy(() => {
      const d = this.spec.hidden;
      const h = this.hidden(ids, this.trainPositions(B, T), this.causalMask(T), null).h;
      // Only positions 0..T-2 predict a token: the head (V columns) runs on those rows alone.
      const hs = tf.reshape(tf.slice(tf.reshape(h, [B, T, d]), [0, 0, 0], [B, T - 1, d]), [B * (T - 1), d]);
      const targets = tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [B * (T - 1)]) as tf.Tensor1D;
      const head = this.lmHead ?? this.wte;
      const both = headLogprobs(this.norm(hs as tf.Tensor2D, this.lnf), head as tf.Tensor2D, targets, {
        trainW: head.trainable,
        entropy: opts?.withEntropy === true,
      });
      const M = B * (T - 1);
      const logprobs = tf.reshape(tf.slice(both, [0, 0], [1, M]), [B, T - 1]) as tf.Tensor2D;
      if (!opts?.withEntropy) return { logprobs };
      return { logprobs, entropy: tf.reshape(tf.slice(both, [1, 0], [1, M]), [B, T - 1]) as tf.Tensor2D };
    });
  }

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
      return tf.tidy(() => {
        const d = this.spec.hidden;
        const pos = tf.reshape(positions, [B * Tq]) as tf.Tensor1D;
        const { h, cache: next } = this.hidden(ids, pos, mask, cache);
        const last = tf.reshape(tf.slice(tf.reshape(h, [B, Tq, d]), [0, Tq - 1, 0], [B, 1, d]), [B, d]);
        return { logits: this.head(last as tf.Tensor2D), cache: next };
      });
    } finally {
      this.inference = false;
    }
  }

  /** While on, LoRA dropout is applied in tokenLogprobs/forward (never while sampling). */
  setTraining(on: boolean, seed?: number): void {
    this.training = on;
    if (seed !== undefined) this.dropoutSeed = seed;
  }

  /**
   * Activation checkpointing of the blocks in training passes: each block keeps only its input
   * and recomputes its activations in the backward pass (one more forward pass of the body).
   * tfjs keeps every op's saved tensors and every gradient of a backward pass until it ends and
   * the wasm heap holds 4 GB, so a 135M-parameter model runs out at a few thousand tokens
   * without it. "auto" (default): on when the step's activations would pass ~1 GB.
   */
  setCheckpointing(mode: boolean | "auto"): void {
    this.checkpointing = mode;
  }

  private useCheckpointing(N: number, T: number): boolean {
    if (this.checkpointing !== "auto") return this.checkpointing;
    const { hidden: d, intermediate: ff, heads: H, layers } = this.spec;
    // What a step holds without checkpointing, measured on the wasm backend: ~80 d-wide and ~24
    // MLP-wide float rows per token and layer (saved tensors and gradients together), plus
    // three copies of the attention probabilities.
    const bytes = 4 * layers * (N * (80 * d + 24 * ff) + 3 * (N / T) * H * T * T);
    return bytes > 1.5e9;
  }

  private checkLength(T: number): void {
    if (T > this.spec.contextLength)
      throw new Error(`sequence length ${T} exceeds the model's context length ${this.spec.contextLength}`);
  }

  private trainPositions(B: number, T: number): tf.Tensor1D {
    const p = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = t;
    return tf.tensor1d(p, "int32");
  }

  private hidden(
    ids: tf.Tensor2D,
    positions: tf.Tensor1D,
    mask: tf.Tensor,
    cache: KVCache | null,
  ): { h: tf.Tensor2D; cache: KVCache } {
    const [B, Tq] = ids.shape;
    const flat = tf.reshape(ids, [B * Tq]) as tf.Tensor1D;
    let h = this.inference
      ? (tf.gather(this.wte, flat) as tf.Tensor2D)
      : embedRows(flat, this.wte as tf.Tensor2D, !this.wte.trainable);
    if (this.wpe) {
      const p = this.inference
        ? (tf.gather(this.wpe, positions) as tf.Tensor2D)
        : embedRows(positions, this.wpe as tf.Tensor2D, !this.wpe.trainable);
      h = tf.add(h, p) as tf.Tensor2D;
    }
    const rot = this.invFreq ? this.ropeAt(positions) : null;
    const next: KVCache = { k: [], v: [] };
    // Without a gradient being recorded there is no backward pass to save memory for.
    const checkpoint = !this.inference && recording() && this.useCheckpointing(B * Tq, Tq);
    if (checkpoint) this.releaseCaptures();
    this.layers.forEach((layer, i) => {
      const past = cache ? { k: cache.k[i]!, v: cache.v[i]! } : null;
      if (!this.inference && checkpoint) {
        h = this.checkpointedBlock(layer, h, B, Tq, mask, rot);
        return;
      }
      // One tidy per block: a block's intermediates are freed as soon as it is done (what the
      // backward pass needs was saved by each op), not at the end of the whole forward pass.
      const r = tf.tidy(() => this.block(layer, h, B, Tq, mask, past, rot));
      h = r.h;
      next.k.push(r.k);
      next.v.push(r.v);
    });
    return { h, cache: next };
  }

  private head(h: tf.Tensor2D): tf.Tensor2D {
    const n = this.norm(h, this.lnf);
    const v = this.lmHead ?? this.wte;
    const w = v as tf.Tensor2D;
    if (this.inference) return product(n, w, false, true);
    return v.trainable ? matMul(n, w, false, true) : frozenLinear(n, w, null, true);
  }

  private norm(x: tf.Tensor2D, n: Norm): tf.Tensor2D {
    const eps = this.spec.normEps;
    const g = n.g as tf.Tensor1D;
    if (this.spec.family === "llama") {
      return this.inference ? rmsNormForward(x, g, eps) : rmsNorm(x, g, eps, !n.g.trainable);
    }
    const b = n.b as tf.Tensor1D;
    if (this.inference) return layerNormForward(x, g, b, eps);
    return n.g.trainable ? layerNorm(x, g, b, eps) : frozenLayerNorm(x, g, b, eps);
  }

  private proj(x: tf.Tensor2D, p: Proj): tf.Tensor2D {
    const w = p.w as tf.Tensor2D;
    const b = p.b as tf.Tensor1D | null;
    let y: tf.Tensor2D;
    if (this.inference) {
      const merged = p.lora ? this.mergedWeight(p) : null;
      if (merged) {
        const t = merged.transposed;
        return b
          ? (tf.fused.matMul({ a: x, b: merged.w, bias: b, transposeB: t }) as tf.Tensor2D)
          : (tf.matMul(x, merged.w, false, t) as tf.Tensor2D);
      }
      y = b ? (tf.fused.matMul({ a: x, b: w, bias: b }) as tf.Tensor2D) : (tf.matMul(x, w) as tf.Tensor2D);
    } else if (!p.w.trainable) {
      const kept = this.replay?.get(p);
      if (kept) y = replayedLinear(x, w, kept);
      else {
        y = frozenLinear(x, w, b);
        if (this.capture && this.capturable.has(p)) this.capture.set(p, tf.keep(y));
      }
    } else y = b ? linear(x, w, b) : matMul(x, w);
    const l = p.lora;
    if (!l) return y;
    const mm = this.inference ? tf.matMul : matMul;
    let xin = x;
    if (this.training && !this.inference && l.dropout > 0) {
      const keep = tf.step(tf.sub(tf.randomUniform(x.shape, 0, 1, "float32", this.dropoutSeed++), l.dropout));
      xin = tf.mul(x, tf.mul(keep, 1 / (1 - l.dropout))) as tf.Tensor2D;
    }
    const delta = mm(mm(xin, l.a as tf.Tensor2D), l.b as tf.Tensor2D);
    return tf.add(y, tf.mul(delta, l.scale)) as tf.Tensor2D;
  }

  /**
   * For sampling: W + s·A·B of an adapted projection, one product per token instead of four
   * ops — held transposed ([d_out, d_in]) while the native row kernels run, which stream a
   * transposed weight fastest. Rebuilt when A, B or W changed (an optimizer step or assign
   * swaps a variable's buffer) or the layout did; null when the copies would pass
   * MERGED_BYTES, and the adapter is applied apart.
   */
  private mergedWeight(p: Proj): { w: tf.Tensor2D; transposed: boolean } | null {
    const l = p.lora!;
    const e = this.merged.get(p);
    const transposed = rowKernelsActive();
    if (e && e.a === l.a.dataId && e.b === l.b.dataId && e.base === p.w.dataId && e.transposed === transposed)
      return e;
    if (!e && 4 * (this.mergedSize + p.w.size) > MERGED_BYTES) return null;
    if (e) e.w.dispose();
    else this.mergedSize += p.w.size;
    const w = tf.keep(
      tf.tidy(() => {
        const full = tf.add(p.w, tf.mul(tf.matMul(l.a, l.b), l.scale)) as tf.Tensor2D;
        return transposed ? tf.transpose(full) : full;
      }),
    );
    const entry = { a: l.a.dataId, b: l.b.dataId, base: p.w.dataId, transposed, w };
    this.merged.set(p, entry);
    return entry;
  }

  private dropMerged(): void {
    for (const e of this.merged.values()) e.w.dispose();
    this.merged.clear();
    this.mergedSize = 0;
  }

  /** cos/sin [N, 1, hd] at `positions`, from tables grown on demand. */
  private ropeAt(positions: tf.Tensor1D): Rotation {
    const need = Math.max(...(positions.dataSync() as Int32Array)) + 1;
    if (!this.rope || this.rope.length < need) this.growRope(Math.max(need, 2 * (this.rope?.length ?? 64)));
    const N = positions.shape[0];
    const hd = this.spec.headDim;
    const t = this.rope!;
    const cos = tf.reshape(tf.gather(t.cos, positions), [N, 1, hd]) as tf.Tensor3D;
    const sin = tf.reshape(tf.gather(t.sin, positions), [N, 1, hd]) as tf.Tensor3D;
    return { cos, sin, qCos: tf.mul(cos, this.qScale), qSin: tf.mul(sin, this.qScale) };
  }

  private rotateHalf(): tf.Tensor2D {
    if (!this.rotMatrix) this.rotMatrix = tf.keep(rotateHalfMatrix(this.spec.headDim));
    return this.rotMatrix;
  }

  private growRope(length: number): void {
    const inv = this.invFreq!;
    const h = inv.length;
    const hd = 2 * h;
    // Full-width tables [c, c] and [s, s], as transformers concatenates the frequencies.
    const cos = new Float32Array(length * hd);
    const sin = new Float32Array(length * hd);
    for (let p = 0; p < length; p++) {
      for (let i = 0; i < h; i++) {
        // The angle as transformers computes it, in float32.
        const a = Math.fround(p * Math.fround(inv[i]!));
        cos[p * hd + i] = cos[p * hd + h + i] = Math.cos(a);
        sin[p * hd + i] = sin[p * hd + h + i] = Math.sin(a);
      }
    }
    if (this.rope) tf.dispose([this.rope.cos, this.rope.sin]);
    this.rope = {
      cos: tf.keep(tf.tensor2d(cos, [length, hd])),
      sin: tf.keep(tf.tensor2d(sin, [length, hd])),
      length,
    };
  }

  private causalMask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      m = tf.keep(tf.tensor2d(causalMaskData(T), [T, T]));
      this.masks.set(T, m);
    }
    return m;
  }

  /** The trainable variables one block reads (its LoRA factors, or all its weights). */
  private blockTrainables(layer: Layer): tf.Variable[] {
    const out: tf.Variable[] = [];
    for (const n of [layer.ln1, layer.ln2, layer.qNorm, layer.kNorm]) {
      if (!n) continue;
      for (const v of [n.g, n.b]) if (v?.trainable) out.push(v);
    }
    for (const p of [...layer.qkv, layer.o, ...layer.mlpIn, layer.down]) {
      for (const v of [p.w, p.b]) if (v?.trainable) out.push(v);
      if (p.lora) out.push(p.lora.a, p.lora.b);
    }
    return out;
  }

  /**
   * Starts keeping the frozen base products (q/k/v/o and gate/up/down, or c_attn/c_proj/c_fc)
   * of the block about to run, as many as fit in CAPTURE_BYTES for this pass (the MLP's first:
   * down_proj has the most FLOPs per kept value): the recomputation then reuses them and redoes
   * only the norms, adapters, RoPE and attention products — the base projections are nearly
   * all of a block's FLOPs.
   */
  private startCapture(layer: Layer, N: number): Map<Proj, tf.Tensor2D> {
    const kept = new Map<Proj, tf.Tensor2D>();
    const chosen: Proj[] = [];
    for (const p of [layer.down, ...layer.mlpIn, layer.o, ...layer.qkv]) {
      if (p.w.trainable) continue;
      const bytes = 4 * N * p.w.shape[1]!;
      if (this.capturedBytes + bytes > CAPTURE_BYTES) continue;
      this.capturedBytes += bytes;
      chosen.push(p);
    }
    if (chosen.length > 0) {
      this.capture = kept;
      this.capturable = new Set(chosen);
      this.outstanding.add(kept);
    }
    return kept;
  }

  private dropCapture(kept: Map<Proj, tf.Tensor2D>): void {
    for (const t of kept.values()) t.dispose();
    kept.clear();
    this.outstanding.delete(kept);
  }

  /** Frees what an earlier pass kept for a backward pass that never ran. */
  private releaseCaptures(): void {
    for (const k of [...this.outstanding]) this.dropCapture(k);
    this.capturedBytes = 0;
  }

  /**
   * A block as one op whose backward pass recomputes the block (see setCheckpointing): the
   * forward pass runs untaped and keeps x only; the backward pass differentiates a fresh
   * forward pass, with the same dropout masks, against x and the block's trainable variables.
   */
  private checkpointedBlock(
    layer: Layer,
    x: tf.Tensor2D,
    B: number,
    T: number,
    mask: tf.Tensor,
    rot: Rotation | null,
  ): tf.Tensor2D {
    const vars = this.blockTrainables(layer);
    const seed = this.dropoutSeed;
    const f = tf.customGrad(((...args: unknown[]) => {
      const save = args[args.length - 1] as (t: tf.Tensor[]) => void;
      const xx = args[0] as tf.Tensor2D;
      save(rot ? [xx, mask, rot.cos, rot.sin, rot.qCos, rot.qSin] : [xx, mask]);
      const kept = this.startCapture(layer, x.shape[0]);
      let value: tf.Tensor2D;
      try {
        value = tf.tidy(() => this.block(layer, xx, B, T, mask, null, rot).h);
      } finally {
        this.capture = null;
      }
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, m, cos, sin, qCos, qSin] = saved as [tf.Tensor2D, tf.Tensor, ...tf.Tensor3D[]];
          const r = rot ? { cos: cos!, sin: sin!, qCos: qCos!, qSin: qSin! } : null;
          const after = this.dropoutSeed;
          this.dropoutSeed = seed;
          // A gradient computed inside a backward pass starts a tape of its own and, when done,
          // clears the engine's tape slot, which the outer pass still reads to free its saved
          // tensors: keep the outer tape and put it back.
          const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
          const outerTape = state.activeTape;
          this.replay = kept;
          try {
            const g = tf.grads((xin: tf.Tensor) =>
              tf.sum(tf.mul(this.block(layer, xin as tf.Tensor2D, B, T, m, null, r).h, dy)),
            );
            return g([xs, ...vars]);
          } finally {
            state.activeTape = outerTape;
            this.dropoutSeed = after;
            this.replay = null;
            this.dropCapture(kept);
          }
        },
      };
    }) as never) as unknown as (...t: tf.Tensor[]) => tf.Tensor2D;
    return f(x, ...vars);
  }

  private block(
    layer: Layer,
    x: tf.Tensor2D,
    B: number,
    Tq: number,
    mask: tf.Tensor,
    past: { k: tf.Tensor4D; v: tf.Tensor4D } | null,
    rot: Rotation | null,
  ): { h: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const s = this.spec;
    const { heads: H, kvHeads: Hkv, headDim: hd } = s;
    const N = B * Tq;
    const a = this.norm(x, layer.ln1);
    let q: tf.Tensor2D;
    let k: tf.Tensor2D;
    let v: tf.Tensor2D;
    if (s.family === "gpt2") {
      const qkv = this.proj(a, layer.qkv[0]!);
      const d = s.hidden;
      q = tf.slice(qkv, [0, 0], [N, d]);
      k = tf.slice(qkv, [0, d], [N, d]);
      v = tf.slice(qkv, [0, 2 * d], [N, d]);
    } else {
      q = this.proj(a, layer.qkv[0]!);
      k = this.proj(a, layer.qkv[1]!);
      v = this.proj(a, layer.qkv[2]!);
    }
    if (layer.qNorm && layer.kNorm) {
      q = tf.reshape(this.norm(tf.reshape(q, [N * H, hd]) as tf.Tensor2D, layer.qNorm), [N, H * hd]);
      k = tf.reshape(this.norm(tf.reshape(k, [N * Hkv, hd]) as tf.Tensor2D, layer.kNorm), [N, Hkv * hd]);
    }
    if (rot) {
      const grad = !this.inference;
      // The 1/√hd score scale rides on q's rotation (scaled tables): no separate product of q to keep.
      const R = this.rotateHalf();
      q = tf.reshape(rope(tf.reshape(q, [N, H, hd]) as tf.Tensor3D, rot.qCos, rot.qSin, R, grad), [
        N,
        H * hd,
      ]);
      k = tf.reshape(rope(tf.reshape(k, [N, Hkv, hd]) as tf.Tensor3D, rot.cos, rot.sin, R, grad), [
        N,
        Hkv * hd,
      ]);
    } else q = tf.mul(q, this.qScale) as tf.Tensor2D;
    // With one query position (sampling), [B, 1, H, hd] → [B, H, 1, hd] moves no data.
    const heads = (t: tf.Tensor2D, n: number) =>
      (Tq === 1
        ? tf.reshape(t, [B, n, 1, hd])
        : tf.transpose(tf.reshape(t, [B, Tq, n, hd]), [0, 2, 1, 3])) as tf.Tensor4D;
    const qh = heads(q, H);
    let kh = heads(k, Hkv);
    let vh = heads(v, Hkv);
    if (past) {
      kh = tf.concat([past.k, kh], 2);
      vh = tf.concat([past.v, vh], 2);
    }
    const Tk = kh.shape[2];
    const g = H / Hkv;
    const mm = this.inference ? product : matMul;
    const scores = mm(tf.reshape(qh, [B, Hkv, g * Tq, hd]) as tf.Tensor4D, kh, false, true);
    const att = attentionSoftmax(tf.reshape(scores, [B, H, Tq, Tk]) as tf.Tensor4D, mask, !this.inference);
    const o = mm(tf.reshape(att, [B, Hkv, g * Tq, Tk]) as tf.Tensor4D, vh);
    const ctx = tf.reshape(Tq === 1 ? o : tf.transpose(tf.reshape(o, [B, H, Tq, hd]), [0, 2, 1, 3]), [
      N,
      H * hd,
    ]) as tf.Tensor2D;
    const h1 = tf.add(x, this.proj(ctx, layer.o)) as tf.Tensor2D;
    const m = this.norm(h1, layer.ln2);
    let act: tf.Tensor2D;
    if (s.family === "gpt2") act = (this.inference ? geluForward : gelu)(this.proj(m, layer.mlpIn[0]!));
    else {
      const gate = this.proj(m, layer.mlpIn[0]!);
      const up = this.proj(m, layer.mlpIn[1]!);
      act = this.inference ? swigluForward(gate, up) : swiglu(gate, up);
    }
    const h2 = tf.add(h1, this.proj(act, layer.down)) as tf.Tensor2D;
    return { h: h2, k: kh, v: vh };
  }

  // -------------------------------------------------------------------------------------------
  // Weights, LoRA

  /** Base weights, or only the LoRA A/B matrices while LoRA is enabled (the base is frozen then). */
  trainableVariables(): tf.Variable[] {
    if (this.lora) return this.projections().flatMap((p) => (p.lora ? [p.lora.a, p.lora.b] : []));
    return [...this.vars.values()];
  }

  /**
   * Adds adapters x·W + s·dropout(x)·A·B on every projection whose module name matches a target
   * (s = alpha/r, or alpha/√r with useRslora) and freezes the base.
   */
  enableLoRA(cfg: HFLoRAConfig, rng: Rng): void {
    this.assertAlive();
    if (this.lora) throw new Error("enableLoRA: LoRA is already enabled (merge it first)");
    if (!Number.isInteger(cfg.r) || cfg.r <= 0) throw new Error("LoRA config: r must be a positive integer");
    if (!(cfg.alpha > 0)) throw new Error("LoRA config: lora_alpha must be positive");
    const dropout = cfg.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new Error("LoRA config: lora_dropout must be in [0, 1)");
    const targets = [...new Set(cfg.targetModules)];
    if (targets.length === 0) throw new Error("LoRA config: target_modules is empty");
    const projs = this.projections();
    for (const t of targets) {
      if (!projs.some((p) => moduleMatches(p.path, t))) {
        const known = HF_LORA_TARGETS[this.spec.family].join(", ");
        throw new Error(
          `LoRA config: target module "${t}" matches no projection of ${this.spec.architecture} (known: ${known})`,
        );
      }
    }
    const scale = cfg.useRslora ? cfg.alpha / Math.sqrt(cfg.r) : cfg.alpha / cfg.r;
    this.lora = {
      r: cfg.r,
      alpha: cfg.alpha,
      dropout,
      targetModules: targets,
      useRslora: cfg.useRslora ?? false,
    };
    for (const p of projs) {
      if (!targets.some((t) => moduleMatches(p.path, t))) continue;
      const [din, dout] = p.w.shape as [number, number];
      const bound = 1 / Math.sqrt(din);
      const a = new Float32Array(din * cfg.r);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
      p.lora = {
        a: tf.tidy(() => tf.variable(tf.tensor2d(a, [din, cfg.r]), true, `${p.path}.lora_A#${nextId()}`)),
        b: tf.tidy(() => tf.variable(tf.zeros([cfg.r, dout]), true, `${p.path}.lora_B#${nextId()}`)),
        scale,
        dropout,
      };
    }
    for (const w of this.vars.values()) w.trainable = false;
  }

  /** Folds the adapters into the base weights (W += s·A·B), removes them and unfreezes the base. */
  mergeLoRA(): void {
    this.assertAlive();
    if (!this.lora) throw new Error("mergeLoRA: LoRA is not enabled");
    for (const p of this.projections()) {
      const l = p.lora;
      if (!l) continue;
      tf.tidy(() => p.w.assign(tf.add(p.w, tf.mul(tf.matMul(l.a, l.b), l.scale))));
      l.a.dispose();
      l.b.dispose();
      p.lora = undefined;
    }
    this.lora = null;
    this.dropMerged();
    for (const w of this.vars.values()) w.trainable = true;
  }

  /**
   * Checkpoint names → live variables in memory layout (projection weights [d_in, d_out]);
   * with LoRA, `<module>.lora_A.weight` [d_in, r] and `<module>.lora_B.weight` [r, d_out]
   * (PEFT's files hold their transposes).
   */
  namedWeights(): Record<string, tf.Tensor> {
    this.assertAlive();
    const out: Record<string, tf.Tensor> = {};
    for (const [n, v] of this.vars) out[n] = v;
    for (const p of this.projections()) {
      if (!p.lora) continue;
      out[`${p.path}.lora_A.weight`] = p.lora.a;
      out[`${p.path}.lora_B.weight`] = p.lora.b;
    }
    return out;
  }

  loadNamedWeights(w: Record<string, tf.Tensor>, opts?: { partial?: boolean; source?: string }): void {
    assignNamedWeights(this.namedWeights(), w, opts);
  }

  /** Deep copy (weights, adapters, frozen state). */
  clone(): PretrainedLM {
    this.assertAlive();
    const copy = new PretrainedLM(this.spec, (w) => this.v(w.name).dataSync() as Float32Array);
    if (this.lora) copy.enableLoRA(this.lora, new Rng(0));
    copy.loadNamedWeights(this.namedWeights());
    copy.training = this.training;
    return copy;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.dropMerged();
    this.releaseCaptures();
    for (const v of this.vars.values()) v.dispose();
    for (const p of this.projections()) {
      p.lora?.a.dispose();
      p.lora?.b.dispose();
    }
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    if (this.rope) tf.dispose([this.rope.cos, this.rope.sin]);
    this.rotMatrix?.dispose();
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`${this.spec.architecture}: model has been disposed`);
  }
}

/** PEFT's rule: a target names the module itself or a suffix of its path at a dot boundary. */
export function moduleMatches(path: string, target: string): boolean {
  return path === target || path.endsWith(`.${target}`);
}

/**
 * Memory the frozen products kept for checkpointed blocks may take in one pass: all of them for
 * SmolLM2-135M's shape at 8 × 256 tokens (1.3 GB; the step's heap then peaks near 3.1 GB of
 * the wasm heap's 4).
 */
const CAPTURE_BYTES = 1.5e9;

/** Whether a gradient tape is recording (tfjs keeps no public accessor). */
function recording(): boolean {
  return ((tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth ?? 0) > 0;
}

/**
 * A frozen product whose value was kept from an earlier pass: returns it, with the gradient of
 * x·W + b with respect to x.
 */
function replayedLinear(x: tf.Tensor2D, w: tf.Tensor2D, kept: tf.Tensor2D): tf.Tensor2D {
  const f = tf.customGrad(((_x: tf.Tensor) => ({
    value: tf.clone(kept),
    gradFunc: (dy: tf.Tensor) => [product(dy as tf.Tensor2D, w, false, true)],
  })) as never) as unknown as (t: tf.Tensor) => tf.Tensor2D;
  return f(x);
}

/** Memory the merged sampling weights of an adapted model may take. */
const MERGED_BYTES = 1e9;

let ids = 0;
/** Variable names are global in tfjs: two models of one checkpoint need distinct ones. */
function nextId(): number {
  return ids++;
}
