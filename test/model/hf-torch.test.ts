/**
 * The Hugging Face architectures against a plain-PyTorch reference (hf_reference.py, written
 * from transformers' and PEFT's definitions) on tiny random models in the exact Hugging Face
 * layout: logits within 1e-4, the same 32 greedy tokens with and without the KV cache (batched,
 * left-padded prompts of different lengths in the engine), and the gradients of one LoRA loss
 * within 1e-3.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import type { PretrainedLM } from "../../src/model/hf/model.ts";
import { loadModel, saveModel } from "../../src/model/safetensors.ts";
import { sample } from "../../src/model/sampler.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { randomIds } from "./helpers.ts";
import { runReference, TINY_CONFIGS, torchPython, writeTinyModel } from "./hf-helpers.ts";

const tmp = tempDirs("grpo-hf-torch-")();
const python = torchPython();
const STEPS = 32;

interface Ref {
  logits: number[][];
  greedy_cache: [number[], number[]][];
  greedy_full: [number[], number[]][];
  grads: Record<string, number[]>;
  loss: number;
}

const CASES = {
  llama: {
    dtype: "F32",
    maxShardBytes: 20_000,
    targets: ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"],
  },
  qwen2: { dtype: "BF16", targets: ["q_proj", "k_proj", "up_proj"] },
  qwen3: { dtype: "F16", targets: ["k_proj", "v_proj", "o_proj", "up_proj", "down_proj"] },
  gpt2: { dtype: "F32", targets: ["c_attn", "c_proj", "c_fc"] },
} as const;

interface Prepared {
  name: keyof typeof CASES;
  dir: string;
  adapter: string;
  ids: number[][];
  prompts: number[][];
  loraIds: number[][];
  weights: number[][];
}

function prepare(name: keyof typeof CASES, seed: number): Prepared {
  const c = CASES[name];
  const V = TINY_CONFIGS[name]!.vocab_size as number;
  const dir = join(tmp, name);
  writeTinyModel(dir, name, {
    seed,
    dtype: c.dtype,
    maxShardBytes: "maxShardBytes" in c ? c.maxShardBytes : undefined,
  });
  // An adapter with random (non-zero) A and B, saved over the base it was made on.
  const m = loadModel(dir) as PretrainedLM;
  m.enableLoRA({ r: 3, alpha: 6, targetModules: [...c.targets] }, new Rng(seed));
  const rng = new Rng(seed + 100);
  tf.tidy(() => {
    const w: Record<string, tf.Tensor> = {};
    for (const [n, t] of Object.entries(m.namedWeights())) {
      if (!n.includes(".lora_")) continue;
      w[n] = tf.tensor(
        Float32Array.from({ length: t.size }, () => 0.3 * rng.normal()),
        t.shape,
      );
    }
    m.loadNamedWeights(w, { partial: true });
  });
  const adapter = join(tmp, `${name}-adapter`);
  saveModel(adapter, m, { lora: true, baseModelPath: dir });
  m.dispose();
  return {
    name,
    dir,
    adapter,
    ids: randomIds(rng, 2, 11, V),
    prompts: [randomIds(rng, 1, 6, V)[0]!, randomIds(rng, 1, 3, V)[0]!],
    loraIds: randomIds(rng, 2, 9, V),
    weights: Array.from({ length: 2 }, () => Array.from({ length: 8 }, () => rng.normal())),
  };
}

function greedyWithoutCache(m: PretrainedLM, prompt: number[], steps: number): number[] {
  const seq = [...prompt];
  for (let s = 0; s < steps; s++) {
    const row = tf.tidy(() => {
      const l = m.forward(tf.tensor2d([seq], undefined, "int32"));
      return tf.argMax(tf.slice(l, [0, seq.length - 1, 0], [1, 1, m.vocabSize]), -1).dataSync()[0]!;
    });
    seq.push(row);
  }
  return seq.slice(prompt.length);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("Hugging Face architectures against PyTorch", {
  skip: python ? false : "no python3 with torch here",
}, () => {
  const cases: Prepared[] = [];
  let refs: Ref[] = [];

  before(async () => {
    await initBackend("wasm");
    (Object.keys(CASES) as (keyof typeof CASES)[]).forEach((n, i) => {
      cases.push(prepare(n, 11 + i));
    });
    refs = runReference<Ref>(
      python!,
      tmp,
      cases.map((c) => ({
        dir: c.dir,
        ids: c.ids,
        greedy: { prompts: c.prompts, steps: STEPS },
        lora: { adapter: c.adapter, ids: c.loraIds, weights: c.weights, entropy_coef: 0.3 },
      })),
    );
  });

  for (const name of Object.keys(CASES) as (keyof typeof CASES)[]) {
    it(`${TINY_CONFIGS[name]!.architectures}: logits within 1e-4`, () => {
      const i = cases.findIndex((c) => c.name === name);
      const c = cases[i]!;
      const m = loadModel(c.dir) as PretrainedLM;
      try {
        const got = tf.tidy(
          () => m.forward(tf.tensor2d(c.ids, undefined, "int32")).arraySync() as number[][][],
        );
        c.ids.forEach((_, r) => {
          const d = maxDiff(got[r]!.flat(), refs[i]!.logits[r]!);
          assert.ok(d < 1e-4, `row ${r}: max |Δlogit| = ${d}`);
        });
      } finally {
        m.dispose();
      }
    });

    it(`${TINY_CONFIGS[name]!.architectures}: ${STEPS} greedy tokens equal, with and without the KV cache`, () => {
      const i = cases.findIndex((c) => c.name === name);
      const c = cases[i]!;
      const ref = refs[i]!;
      const m = loadModel(c.dir) as PretrainedLM;
      try {
        const cached = sample(m, c.prompts, { maxNewTokens: STEPS, temperature: 0, rng: new Rng(1) });
        c.prompts.forEach((p, r) => {
          const [refTokens, refLogps] = ref.greedy_cache[r]!;
          assert.deepEqual(ref.greedy_full[r]![0], refTokens, "the reference itself: cache vs no cache");
          assert.deepEqual(cached.tokens[r], refTokens, `row ${r}: KV-cache sampling`);
          assert.ok(maxDiff(cached.logprobs[r]!, refLogps) < 1e-4, `row ${r}: sampled logprobs`);
          assert.deepEqual(greedyWithoutCache(m, p, STEPS), refTokens, `row ${r}: without cache`);
        });
      } finally {
        m.dispose();
      }
    });

    it(`${TINY_CONFIGS[name]!.architectures}: LoRA gradients within 1e-3 (adapter loaded from PEFT files)`, () => {
      const i = cases.findIndex((c) => c.name === name);
      const c = cases[i]!;
      const ref = refs[i]!;
      // The adapter directory names its base: loadModel follows base_model_name_or_path.
      const m = loadModel(c.adapter) as PretrainedLM;
      try {
        const vars = m.trainableVariables();
        const ids = tf.tensor2d(c.loraIds, undefined, "int32");
        const w = tf.tensor2d(c.weights);
        const { value, grads } = tf.variableGrads(() => {
          const { logprobs, entropy } = m.tokenLogprobs(ids, { withEntropy: true });
          return tf.add(tf.sum(tf.mul(logprobs, w)), tf.mul(0.3, tf.sum(entropy!))) as tf.Scalar;
        }, vars);
        assert.ok(
          Math.abs(value.dataSync()[0]! - ref.loss) < 1e-3,
          `loss ${value.dataSync()[0]} vs ${ref.loss}`,
        );
        const named = m.namedWeights();
        let compared = 0;
        for (const [key, g] of Object.entries(ref.grads)) {
          const v = named[key] as tf.Variable;
          assert.ok(v, `no LoRA weight ${key} in the engine`);
          // PEFT's layout is the transpose of the in-memory one.
          const ours = tf.tidy(() => tf.transpose(grads[v.name]!).dataSync());
          const scale = Math.max(1, ...g.map(Math.abs));
          const d = maxDiff(ours, g);
          assert.ok(d < 1e-3 * scale, `${key}: max |Δgrad| = ${d} (scale ${scale})`);
          compared++;
        }
        assert.equal(compared, vars.length);
        tf.dispose([ids, w, value, ...Object.values(grads)]);
      } finally {
        m.dispose();
      }
    });
  }
});
