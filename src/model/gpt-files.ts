/**
 * The project's own GPT checkpoints: `model.safetensors` + `config.json` (model_type
 * "grpo-ts-gpt"), or for LoRA `adapter_model.safetensors` + `adapter_config.json` with PEFT-style
 * names `base_model.model.<module>.lora_A.weight`. PEFT stores A as [r, d_in] and B as
 * [d_out, r] (torch Linear layout); in memory they are [d_in, r] and [r, d_out], so both are
 * transposed on save and load. Base projection weights keep GPT-2's Conv1D layout
 * [d_in, d_out] (hence `fan_in_fan_out: true` in the adapter config).
 *
 * ./hf/export-gpt2.ts writes the same model as a transformers GPT2LMHeadModel directory.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import { FileFormatError, readJsonFile, writeFileAtomic, writeJsonAtomic } from "../io/files.ts";
import {
  GPT,
  type GPTConfig,
  LORA_TARGETS,
  type LoRAConfig,
  type LoRATarget,
  validateConfig,
} from "./gpt.ts";
import { ADAPTER_CONFIG_FILE, ADAPTER_FILE, PEFT_PREFIX } from "./hf/adapter.ts";
import { CONFIG_FILE } from "./hf/config.ts";
import {
  MODEL_FILE,
  readSafetensorsFile as readFile,
  type SafeTensor,
  serializeSafetensors,
} from "./safetensors-format.ts";

export interface SaveModelOptions {
  /** Save only the LoRA adapter (PEFT layout). */
  lora?: boolean;
  /**
   * For LoRA saves: path recorded as base_model_name_or_path (relative to dir or absolute) of
   * an existing base checkpoint. Without it the base weights are written beside the adapter
   * and the path is ".".
   */
  baseModelPath?: string;
  metadata?: Record<string, string>;
}

function toSafe(t: tf.Tensor): SafeTensor {
  if (t.dtype === "int32") return { dtype: "I32", shape: [...t.shape], data: t.dataSync() as Int32Array };
  return { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.dataSync() as Float32Array) };
}

function configJson(c: GPTConfig): Record<string, unknown> {
  const full = validateConfig(c);
  return {
    model_type: "grpo-ts-gpt",
    architectures: ["GPT"],
    vocab_size: full.vocabSize,
    n_positions: full.contextLength,
    n_embd: full.dModel,
    n_layer: full.nLayers,
    n_head: full.nHeads,
    n_inner: full.dFF,
    positional: full.positional,
    tie_word_embeddings: true,
    torch_dtype: "float32",
  };
}

function writeBase(dir: string, model: GPT, metadata?: Record<string, string>): void {
  const src = model.loraConfig ? model.clone() : model;
  try {
    // A full save of an adapted model stores the merged weights.
    if (src !== model) src.mergeLoRA();
    const tensors: Record<string, SafeTensor> = {};
    for (const [name, t] of Object.entries(src.namedWeights())) tensors[name] = toSafe(t);
    writeFileAtomic(join(dir, MODEL_FILE), serializeSafetensors(tensors, { format: "pt", ...metadata }));
    writeJsonAtomic(join(dir, CONFIG_FILE), configJson(model.config));
  } finally {
    if (src !== model) src.dispose();
  }
}

export function saveGpt(dir: string, model: GPT, opts: SaveModelOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  if (!opts.lora) {
    writeBase(dir, model, opts.metadata);
    return;
  }
  const lora = model.loraConfig;
  if (!lora) throw new Error(`saveModel(${dir}): lora: true but the model has no LoRA adapters enabled`);
  const tensors: Record<string, SafeTensor> = {};
  tf.tidy(() => {
    for (const [name, t] of Object.entries(model.namedWeights())) {
      if (!name.includes(".lora_")) continue;
      tensors[PEFT_PREFIX + name] = toSafe(tf.transpose(t));
    }
  });
  // The base is written without the adapter, or loading would apply it twice.
  if (opts.baseModelPath === undefined) writeUnadapted(dir, model, opts.metadata);
  writeFileAtomic(join(dir, ADAPTER_FILE), serializeSafetensors(tensors, { format: "pt", ...opts.metadata }));
  writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: lora.r,
    lora_alpha: lora.alpha,
    target_modules: lora.targetModules,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: true,
    inference_mode: false,
    modules_to_save: null,
    base_model_name_or_path: opts.baseModelPath ?? ".",
  });
}

/** Writes the base weights of an adapted model, without the adapters. */
function writeUnadapted(dir: string, model: GPT, metadata?: Record<string, string>): void {
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(model.namedWeights())) {
    if (!name.includes(".lora_")) tensors[name] = toSafe(t);
  }
  writeFileAtomic(join(dir, MODEL_FILE), serializeSafetensors(tensors, { format: "pt", ...metadata }));
  writeJsonAtomic(join(dir, CONFIG_FILE), configJson(model.config));
}

function readJsonObject(file: string): Record<string, unknown> {
  const v = readJsonFile(file);
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new FileFormatError(file, undefined, undefined, "expected a JSON object");
  return v as Record<string, unknown>;
}

function readSafetensorsFile(file: string): Record<string, SafeTensor> {
  if (!existsSync(file)) throw new Error(`${file}: file not found`);
  return readFile(file).tensors;
}

function parseConfig(file: string): GPTConfig {
  const j = readJsonObject(file);
  const num = (k: string): number => {
    const v = j[k];
    if (typeof v !== "number")
      throw new Error(`${file}: field "${k}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const positional = j.positional ?? "learned";
  const cfg: GPTConfig = {
    vocabSize: num("vocab_size"),
    contextLength: num("n_positions"),
    dModel: num("n_embd"),
    nLayers: num("n_layer"),
    nHeads: num("n_head"),
    dFF: num("n_inner"),
    positional: positional as GPTConfig["positional"],
  };
  validateConfig(cfg, file);
  return cfg;
}

function loadTensors(model: GPT, tensors: Record<string, SafeTensor>, file: string, partial: boolean): void {
  tf.tidy(() => {
    const w: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(tensors))
      w[name] = tf.tensor(t.data, t.shape, t.dtype === "I32" ? "int32" : "float32");
    model.loadNamedWeights(w, { partial, source: file });
  });
}

function loadBase(dir: string, rng: Rng): GPT {
  const cfg = parseConfig(join(dir, CONFIG_FILE));
  const file = join(dir, MODEL_FILE);
  const tensors = readSafetensorsFile(file);
  const model = new GPT(cfg, rng);
  try {
    loadTensors(model, tensors, file, false);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Whether config.json describes the project's GPT (rather than a transformers architecture). */
export function isGptConfig(config: Record<string, unknown>): boolean {
  return (
    config.model_type === "grpo-ts-gpt" ||
    (Array.isArray(config.architectures) && config.architectures[0] === "GPT")
  );
}

/**
 * Loads `dir` as a full checkpoint, or — when adapter_config.json is present — its base
 * (base_model_name_or_path, resolved against dir) plus the adapter.
 */
export function loadGpt(dir: string, rng: Rng): GPT {
  const adapterCfgFile = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(adapterCfgFile)) return loadBase(dir, rng);
  const ac = readJsonObject(adapterCfgFile);
  if (ac.peft_type !== "LORA") throw new Error(`${adapterCfgFile}: field "peft_type" must be "LORA"`);
  const r = ac.r;
  const alpha = ac.lora_alpha;
  const targets = ac.target_modules;
  if (typeof r !== "number") throw new Error(`${adapterCfgFile}: field "r" must be a number`);
  if (typeof alpha !== "number") throw new Error(`${adapterCfgFile}: field "lora_alpha" must be a number`);
  if (!Array.isArray(targets) || !targets.every((t) => LORA_TARGETS.includes(t as LoRATarget))) {
    throw new Error(
      `${adapterCfgFile}: field "target_modules" must list modules among ${LORA_TARGETS.join(", ")}`,
    );
  }
  const basePath = typeof ac.base_model_name_or_path === "string" ? ac.base_model_name_or_path : ".";
  const adapterFile = join(dir, ADAPTER_FILE);
  const raw = readSafetensorsFile(adapterFile);
  const model = loadBase(resolve(dir, basePath), rng);
  try {
    const lora: LoRAConfig = { r, alpha, targetModules: targets as LoRATarget[] };
    model.enableLoRA(lora, rng);
    const expected = Object.keys(model.namedWeights()).filter((n) => n.includes(".lora_"));
    const tensors: Record<string, SafeTensor> = {};
    for (const [name, t] of Object.entries(raw)) {
      if (!name.startsWith(PEFT_PREFIX))
        throw new Error(`${adapterFile}: tensor "${name}" lacks the "${PEFT_PREFIX}" prefix`);
      if (t.shape.length !== 2)
        throw new Error(`${adapterFile}: tensor "${name}" must be 2-D, got [${t.shape}]`);
      tensors[name.slice(PEFT_PREFIX.length)] = transpose2d(t);
    }
    const missing = expected.filter((n) => !(n in tensors));
    if (missing.length > 0)
      throw new Error(`${adapterFile}: missing adapter tensors: ${missing.slice(0, 4).join(", ")}`);
    loadTensors(model, tensors, adapterFile, true);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

function transpose2d(t: SafeTensor): SafeTensor {
  const [rows, cols] = t.shape as [number, number];
  const out = new (t.data.constructor as typeof Float32Array)(t.data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = t.data[i * cols + j]!;
  return { dtype: t.dtype, shape: [cols, rows], data: out };
}
