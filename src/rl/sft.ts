import * as tf from "@tensorflow/tfjs-core";
import "../model/gradients.ts";
import type { Rng } from "../core/rng.ts";
import { clipByGlobalNorm } from "./grpo-step.ts";
import type { PolicyModel } from "./types.ts";

export interface SftOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  /** pads the shorter sequences of a batch; positions after the first eos are not trained. */
  eosId: number;
  maxGradNorm?: number;
  /**
   * Per sequence, 1 on the tokens to learn to predict; others are context only (the prompt and
   * tool results of a multi-turn episode). Default: every token up to the first eos.
   */
  targets?: number[][];
  rng: Rng;
  onStep?: (step: number, loss: number) => void;
}

/**
 * Supervised warm start: next-token cross-entropy on whole sequences (prompt + completion +
 * eos), averaged over the trained positions. Returns the loss of every step.
 */
export function sftTrain(model: PolicyModel, sequences: number[][], opts: SftOptions): number[] {
  if (sequences.length === 0) throw new Error("sft: no demonstration sequences");
  for (const [i, s] of sequences.entries()) {
    if (s.length < 2) throw new Error(`sft: sequence ${i} has fewer than 2 tokens`);
    const t = opts.targets?.[i];
    if (opts.targets && t?.length !== s.length)
      throw new Error(`sft: targets[${i}] has ${t?.length ?? 0} entries for ${s.length} tokens`);
  }
  const optimizer: tf.Optimizer = tf.train.adam(opts.learningRate);
  const losses: number[] = [];
  try {
    for (let step = 0; step < opts.steps; step++) {
      const picked = Array.from({ length: Math.min(opts.batchSize, sequences.length) }, () =>
        opts.rng.int(sequences.length),
      );
      const batch = picked.map((i) => sequences[i]!);
      const T = Math.max(...batch.map((s) => s.length));
      const ids: number[] = [];
      const mask: number[] = [];
      batch.forEach((s, b) => {
        for (let t = 0; t < T; t++) ids.push(t < s.length ? s[t]! : opts.eosId);
        const targets = opts.targets?.[picked[b]!];
        const eos = s.indexOf(opts.eosId, 1);
        const last = eos >= 0 ? eos : s.length - 1;
        // mask[t] trains the prediction of token t+1.
        for (let t = 0; t < T - 1; t++) mask.push(t + 1 <= last && (!targets || targets[t + 1]) ? 1 : 0);
      });
      const idsT = tf.tensor2d(ids, [batch.length, T], "int32");
      const maskT = tf.tensor2d(mask, [batch.length, T - 1]);
      const { value, grads } = tf.variableGrads(() => {
        const lp = model.tokenLogprobs(idsT).logprobs;
        return tf.neg(tf.div(tf.sum(tf.mul(lp, maskT)), tf.maximum(tf.sum(maskT), 1))) as tf.Scalar;
      }, model.trainableVariables());
      const clipped = clipByGlobalNorm(grads, opts.maxGradNorm ?? 1);
      optimizer.applyGradients(clipped.grads);
      const loss = value.dataSync()[0]!;
      tf.dispose([idsT, maskT, value, ...Object.values(clipped.grads)]);
      losses.push(loss);
      opts.onStep?.(step + 1, loss);
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}
