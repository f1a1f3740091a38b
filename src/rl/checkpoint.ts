import { existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { FileFormatError, writeFileAtomic, writeJsonAtomic } from "../io/files.ts";
import type { CausalLM } from "../model/causal-lm.ts";
import { GPT } from "../model/gpt.ts";
import {
  loadModel,
  parseSafetensors,
  type SafeTensor,
  saveModel,
  serializeSafetensors,
} from "../model/safetensors.ts";

/**
 * Checkpoint layout (seed-compatible at the top level):
 *   <dir>/model.safetensors, config.json   policy weights (src/model saveModel)
 *   <dir>/metadata.json                     step, accuracy, success_rate, reward, config
 *   <dir>/trainer_state/                    only what resuming needs:
 *       reference/                          the frozen KL reference
 *       optimizer.safetensors               Adam m, v, iteration count, β-power accumulators
 *       state.json                          step, RNG state, curriculum, replay buffer, best score
 */
export const METADATA_FILE = "metadata.json";
export const STATE_DIR = "trainer_state";
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const STATE_FILE = "state.json";

export interface CheckpointMetadata {
  step: number;
  /** success rate of the last evaluation (the seed's field name). */
  accuracy: number | null;
  success_rate: number | null;
  reward: number | null;
  config: unknown;
}

/** Adam's bias-correction accumulators β^t are private fields; restoring them exactly keeps resume bit-for-bit. */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

export async function serializeOptimizer(optimizer: tf.Optimizer): Promise<Uint8Array> {
  const weights = await optimizer.getWeights();
  const tensors: Record<string, SafeTensor> = {};
  weights.forEach((w, i) => {
    const t = w.tensor;
    tensors[`${String(i).padStart(5, "0")}`] = {
      dtype: t.dtype === "int32" ? "I32" : "F32",
      shape: [...t.shape],
      data: t.dtype === "int32" ? Int32Array.from(t.dataSync()) : Float32Array.from(t.dataSync()),
    };
  });
  const internals = optimizer as unknown as Partial<AdamInternals>;
  if (internals.accBeta1 && internals.accBeta2) {
    tensors.acc_beta1 = { dtype: "F32", shape: [], data: Float32Array.from(internals.accBeta1.dataSync()) };
    tensors.acc_beta2 = { dtype: "F32", shape: [], data: Float32Array.from(internals.accBeta2.dataSync()) };
  }
  const names = weights.map((w) => w.name);
  return serializeSafetensors(tensors, { names: JSON.stringify(names), optimizer: optimizer.getClassName() });
}

export async function restoreOptimizer(
  optimizer: tf.Optimizer,
  bytes: Uint8Array,
  file: string,
): Promise<void> {
  const { tensors, metadata } = parseSafetensors(bytes, file);
  let names: unknown;
  try {
    names = JSON.parse(metadata.names ?? "null");
  } catch {
    names = null;
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    throw new FileFormatError(file, undefined, "__metadata__.names", "missing or not a JSON list of strings");
  }
  if (metadata.optimizer !== optimizer.getClassName()) {
    throw new FileFormatError(
      file,
      undefined,
      "__metadata__.optimizer",
      `is ${metadata.optimizer}, expected ${optimizer.getClassName()}`,
    );
  }
  const weights: { name: string; tensor: tf.Tensor }[] = names.map((name, i) => {
    const t = tensors[String(i).padStart(5, "0")];
    if (!t) throw new FileFormatError(file, undefined, `tensor ${i}`, `missing (state of ${name})`);
    return { name, tensor: tf.tensor(t.data, t.shape, t.dtype === "I32" ? "int32" : "float32") };
  });
  await optimizer.setWeights(weights);
  // setWeights copies into new variables; the loaded tensors are ours to free.
  tf.dispose(weights.map((w) => w.tensor));
  const internals = optimizer as unknown as Partial<AdamInternals>;
  if (tensors.acc_beta1 && tensors.acc_beta2 && internals.accBeta1 && internals.accBeta2) {
    internals.accBeta1.assign(tf.scalar(tensors.acc_beta1.data[0]!));
    internals.accBeta2.assign(tf.scalar(tensors.acc_beta2.data[0]!));
  }
}

export function writeMetadata(dir: string, meta: CheckpointMetadata): void {
  writeJsonAtomic(join(dir, METADATA_FILE), meta);
}

export async function writeCheckpoint(
  dir: string,
  parts: {
    policy: CausalLM;
    reference?: CausalLM | null;
    optimizer?: tf.Optimizer;
    state?: unknown;
    metadata: CheckpointMetadata;
    /** see TrainerOptions.baseModelDir */
    baseModelDir?: string;
  },
): Promise<void> {
  const baseFrom = (d: string) =>
    parts.baseModelDir === undefined ? undefined : relative(d, parts.baseModelDir) || ".";
  if (parts.policy.loraConfig) {
    // Only the adapter is trained: store it, over the base it was trained on.
    saveModel(dir, parts.policy, { lora: true, baseModelPath: baseFrom(dir) });
  } else saveModel(dir, parts.policy);
  writeMetadata(dir, parts.metadata);
  if (parts.state !== undefined) {
    const sdir = join(dir, STATE_DIR);
    const ref = parts.reference;
    const refDir = join(sdir, "reference");
    // A pretrained model's frozen copy is its adapter over the same base, not another copy of
    // the base's weights (hundreds of MB per checkpoint).
    if (ref?.loraConfig && !(ref instanceof GPT) && parts.baseModelDir !== undefined)
      saveModel(refDir, ref, { lora: true, baseModelPath: baseFrom(refDir) });
    else if (ref) saveModel(refDir, ref);
    if (parts.optimizer)
      writeFileAtomic(join(sdir, OPTIMIZER_FILE), await serializeOptimizer(parts.optimizer));
    // Written last: its presence marks the checkpoint as resumable.
    writeJsonAtomic(join(sdir, STATE_FILE), parts.state);
  }
}

/** `checkpoint-N` directories of a run, highest N last; only those with a complete trainer state. */
export function listResumableCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: join(outputDir, m[0]) }))
    .filter((c) => existsSync(join(c.dir, STATE_DIR, STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/**
 * Loads the model of a checkpoint directory, whatever it is (the project's GPT, a Hugging Face
 * model, or an adapter over its base), with errors that name the offending file.
 */
export function loadCheckpointModel(dir: string, seed = 0): CausalLM {
  if (!existsSync(dir)) throw new Error(`${dir}: checkpoint directory not found`);
  return loadModel(dir, { rng: new Rng(seed) });
}

/** The project's GPT from a checkpoint directory (what the recipes' own models are). */
export function loadPolicy(dir: string, seed = 0): GPT {
  const model = loadCheckpointModel(dir, seed);
  if (model instanceof GPT) return model;
  model.dispose();
  throw new Error(
    `${join(dir, "config.json")}: expected the project's GPT checkpoint (model_type "grpo-ts-gpt")`,
  );
}
