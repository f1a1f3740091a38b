import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { GPT } from "../../src/model/gpt.ts";
import { randomIds, randomizeWeights, TINY } from "./helpers.ts";

async function gradsOn(backend: "cpu" | "wasm"): Promise<{ grads: Float32Array[]; tensors: number[] }> {
  assert.equal(await initBackend(backend), backend);
  const model = new GPT(TINY, new Rng(1));
  randomizeWeights(model, 2, 0.4);
  const ids = tf.tensor2d(randomIds(new Rng(3), 3, 7, TINY.vocabSize), undefined, "int32");
  const opt = tf.train.adam(1e-2);
  const vars = model.trainableVariables();
  const grads = tf.tidy(() => {
    const { grads: g } = tf.variableGrads(
      () => tf.neg(tf.sum(model.tokenLogprobs(ids, { withEntropy: true }).logprobs)) as tf.Scalar,
      vars,
    );
    return vars.map((v) => g[v.name]!.dataSync() as Float32Array);
  });
  const tensors: number[] = [];
  for (let s = 0; s < 4; s++) {
    opt.minimize(() => tf.neg(tf.mean(model.tokenLogprobs(ids).logprobs)) as tf.Scalar);
    tensors.push(tf.memory().numTensors);
  }
  opt.dispose();
  ids.dispose();
  model.dispose();
  return { grads, tensors };
}

describe("training on the wasm backend", () => {
  it("computes the same gradients as cpu and keeps the tensor count flat", async () => {
    const cpu = await gradsOn("cpu");
    const wasm = await gradsOn("wasm");
    assert.equal(wasm.grads.length, cpu.grads.length);
    cpu.grads.forEach((g, i) => {
      for (let j = 0; j < g.length; j++) {
        assert.ok(
          Math.abs(g[j]! - wasm.grads[i]![j]!) < 1e-3 + 1e-3 * Math.abs(g[j]!),
          `variable ${i} entry ${j}`,
        );
      }
    });
    // Adam creates its slots on the first step; afterwards the count must not move.
    assert.deepEqual(wasm.tensors.slice(1), Array(3).fill(wasm.tensors[1]));
  });
});
