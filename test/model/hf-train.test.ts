/**
 * Training passes of the Hugging Face architectures: activation checkpointing gives the same
 * gradients as keeping every activation (with LoRA dropout drawing the same masks again), and
 * LoRA dropout acts only in training mode.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { blasActive, setBlasKernels } from "../../src/model/blas.ts";
import type { PretrainedLM } from "../../src/model/hf/model.ts";
import { sample } from "../../src/model/sampler.ts";
import { maxAbsDiff, randomIds } from "./helpers.ts";
import { tinyModel } from "./hf-helpers.ts";

before(async () => {
  await initBackend("wasm");
});

function gradsOf(m: PretrainedLM, ids: tf.Tensor2D): { loss: number; grads: Float32Array[] } {
  const vars = m.trainableVariables();
  const { value, grads } = tf.variableGrads(() => {
    const { logprobs, entropy } = m.tokenLogprobs(ids, { withEntropy: true });
    return tf.add(tf.mean(logprobs), tf.mul(0.1, tf.mean(entropy!))) as tf.Scalar;
  }, vars);
  const out = {
    loss: value.dataSync()[0]!,
    grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

describe("training passes", () => {
  for (const name of ["llama", "qwen3", "gpt2"]) {
    it(`${name}: checkpointed blocks give the same loss and gradients (LoRA with dropout, and full fine-tuning)`, () => {
      const ids = tf.tensor2d(randomIds(new Rng(2), 3, 9, 40), undefined, "int32");
      const targets = name === "gpt2" ? ["c_attn", "c_fc"] : ["q_proj", "v_proj", "up_proj", "down_proj"];
      for (const lora of [true, false]) {
        const m = tinyModel(name, 3);
        if (lora) m.enableLoRA({ r: 2, alpha: 4, dropout: 0.2, targetModules: targets }, new Rng(1));
        m.setTraining(true, 77);
        m.setCheckpointing(false);
        const plain = gradsOf(m, ids);
        m.setTraining(true, 77);
        m.setCheckpointing(true);
        const ckpt = gradsOf(m, ids);
        assert.ok(Math.abs(plain.loss - ckpt.loss) < 1e-6, `${name} loss`);
        assert.equal(ckpt.grads.length, plain.grads.length);
        plain.grads.forEach((g, i) => {
          assert.ok(maxAbsDiff(g, ckpt.grads[i]!) < 1e-5, `${name} lora=${lora} gradient ${i}`);
        });
        m.dispose();
      }
      ids.dispose();
    });
  }

  it("LoRA dropout changes training passes only, and the seed reproduces them", () => {
    const m = tinyModel("llama", 4);
    m.enableLoRA({ r: 2, alpha: 4, dropout: 0.5, targetModules: ["q_proj", "o_proj"] }, new Rng(1));
    // Non-zero B so the adapters (and their dropout) matter.
    tf.tidy(() => {
      const w: Record<string, tf.Tensor> = {};
      for (const [n, t] of Object.entries(m.namedWeights()))
        if (n.includes("lora_B")) w[n] = tf.fill(t.shape, 0.5);
      m.loadNamedWeights(w, { partial: true });
    });
    const ids = tf.tensor2d(randomIds(new Rng(5), 2, 7, 61), undefined, "int32");
    const lp = () => tf.tidy(() => m.tokenLogprobs(ids).logprobs.dataSync() as Float32Array);
    const evalA = lp();
    m.setTraining(true, 5);
    const trainA = lp();
    m.setTraining(true, 5);
    const trainB = lp();
    m.setTraining(false);
    assert.ok(maxAbsDiff(evalA, trainA) > 1e-3, "dropout acts in training mode");
    assert.equal(maxAbsDiff(trainA, trainB), 0, "the same seed draws the same masks");
    assert.equal(maxAbsDiff(lp(), evalA), 0, "evaluation has no dropout");
    ids.dispose();
    m.dispose();
  });

  it("sampling an adapted model matches its tokenLogprobs, also after the adapter changes", () => {
    const m = tinyModel("qwen2", 6);
    m.enableLoRA({ r: 2, alpha: 4, targetModules: ["q_proj", "v_proj", "down_proj"] }, new Rng(1));
    const setB = (v: number) =>
      tf.tidy(() => {
        const w: Record<string, tf.Tensor> = {};
        for (const [n, t] of Object.entries(m.namedWeights()))
          if (n.includes("lora_B")) w[n] = tf.fill(t.shape, v);
        m.loadNamedWeights(w, { partial: true });
      });
    const prompt = [3, 9, 4];
    // With the BLAS kernels the merged sampling weights are held transposed, without them not;
    // switching rebuilds them.
    const blas = blasActive();
    try {
      for (const kernels of blas ? [true, false] : [false]) {
        setBlasKernels(kernels);
        for (const v of [0.3, -0.4]) {
          setB(v);
          const r = sample(m, [prompt, [7, 1]], { maxNewTokens: 6, rng: new Rng(2) });
          const seq = [...prompt, ...r.tokens[0]!];
          const lp = tf.tidy(() =>
            m.tokenLogprobs(tf.tensor2d([seq], undefined, "int32")).logprobs.dataSync(),
          );
          assert.ok(
            maxAbsDiff(lp.slice(prompt.length - 1), r.logprobs[0]!) < 1e-4,
            `B = ${v}, BLAS ${kernels}`,
          );
        }
      }
    } finally {
      setBlasKernels(blas);
    }
    m.dispose();
  });
});
