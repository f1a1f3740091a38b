import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import type { GPT, GPTConfig } from "../../src/model/gpt.ts";

export const TINY: GPTConfig = { vocabSize: 7, contextLength: 12, dModel: 8, nLayers: 2, nHeads: 2, dFF: 12 };

/** Replaces every weight with N(0, std²) draws so gradients and logits are far from uniform. */
export function randomizeWeights(model: GPT, seed: number, std = 0.5): void {
  const rng = new Rng(seed);
  tf.tidy(() => {
    const w: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(model.namedWeights())) {
      const data = new Float32Array(t.size);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
      w[name] = tf.tensor(data, t.shape);
    }
    model.loadNamedWeights(w);
  });
}

export function randomIds(rng: Rng, B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
