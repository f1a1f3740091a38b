/**
 * Hugging Face model directories ↔ PretrainedLM: config.json, model.safetensors or the sharded
 * model.safetensors.index.json, F32/F16/BF16 (held as float32 in memory, written back in the
 * checkpoint's own dtype).
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { writeJsonAtomic } from "../../io/files.ts";
import {
  fromFloat32,
  SAFETENSORS_INDEX_SUFFIX,
  type SafeTensor,
  SafetensorsError,
  ShardedReader,
  toFloat32,
  writeShardedSafetensors,
} from "../safetensors-format.ts";
import { type ArchSpec, CONFIG_FILE, GENERATION_CONFIG_FILE, readArchConfig } from "./config.ts";
import { PretrainedLM, type WeightSpec, weightSpecs } from "./model.ts";

export type FloatDtype = "F32" | "F16" | "BF16";

const TORCH_DTYPES: Record<string, FloatDtype> = { float32: "F32", float16: "F16", bfloat16: "BF16" };
const DTYPE_NAMES: Record<FloatDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** Tensors a checkpoint may carry that the model does not use (buffers of older transformers). */
const IGNORED = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /\.rotary_emb\.inv_freq$/];

/** The checkpoint's own dtype, from config.json (`torch_dtype`, or `dtype` in transformers 5). */
export function configDtype(spec: ArchSpec): FloatDtype | undefined {
  const d = spec.raw.torch_dtype ?? spec.raw.dtype;
  return typeof d === "string" ? TORCH_DTYPES[d] : undefined;
}

/** Tensor names to try for a weight: GPT-2 checkpoints exist with and without "transformer.". */
function candidates(spec: ArchSpec, name: string): string[] {
  if (spec.family === "gpt2" && name.startsWith("transformer."))
    return [name, name.slice("transformer.".length)];
  return [name];
}

function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = data[r + j]!;
  }
  return out;
}

const loadedDtypes = new WeakMap<PretrainedLM, Map<string, FloatDtype>>();

/** The dtype each weight had in the files it was loaded from (empty for a model built in memory). */
export function dtypesOf(model: PretrainedLM): Map<string, FloatDtype> {
  return loadedDtypes.get(model) ?? new Map();
}

/**
 * Loads a Hugging Face causal-LM directory. A missing or mis-shaped tensor is an error naming
 * the file and the key; so is a tensor the architecture has no place for.
 */
export function loadPretrained(dir: string): PretrainedLM {
  const spec = readArchConfig(dir);
  const reader = new ShardedReader(dir);
  const indexOrFile = existsSync(join(dir, `model.safetensors${SAFETENSORS_INDEX_SUFFIX}`))
    ? join(dir, `model.safetensors${SAFETENSORS_INDEX_SUFFIX}`)
    : join(dir, "model.safetensors");
  const dtypes = new Map<string, FloatDtype>();
  const used = new Set<string>();
  try {
    const specs = weightSpecs(spec);
    const model = new PretrainedLM(spec, (w: WeightSpec) => {
      const key = candidates(spec, w.name).find((k) => reader.has(k));
      if (key === undefined) throw new SafetensorsError(indexOrFile, `missing tensor "${w.name}"`);
      used.add(key);
      const file = reader.fileOf(key)!;
      const t = reader.read(key);
      if (!tf.util.arraysEqual(t.shape, w.fileShape)) {
        throw new SafetensorsError(
          file,
          `tensor "${key}" has shape [${t.shape}], ${spec.architecture} with this config.json needs [${w.fileShape}]`,
        );
      }
      if (t.dtype === "I32")
        throw new SafetensorsError(file, `tensor "${key}" is I32, expected a float dtype`);
      dtypes.set(w.name, t.dtype);
      const data = toFloat32(t, `${file}: tensor "${key}"`);
      return w.linearLayout ? transpose2d(data, w.fileShape[0]!, w.fileShape[1]!) : data;
    });
    const known = new Set(specs.flatMap((s) => candidates(spec, s.name)));
    for (const n of reader.names()) {
      if (used.has(n) || IGNORED.some((re) => re.test(n))) continue;
      // Tied heads are sometimes saved as well; transformers ties them whatever the file holds.
      if (spec.tiedHead && n === "lm_head.weight") continue;
      if (!known.has(n)) {
        model.dispose();
        throw new SafetensorsError(reader.fileOf(n)!, `tensor "${n}" has no place in ${spec.architecture}`);
      }
    }
    loadedDtypes.set(model, dtypes);
    return model;
  } finally {
    reader.close();
  }
}

/** Files copied beside saved weights, so the directory loads as a whole (tokenizer, chat template). */
export const COMPANION_FILES = [
  GENERATION_CONFIG_FILE,
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "vocab.json",
  "merges.txt",
];

export interface SavePretrainedOptions {
  /** dtype of the written tensors; default: each tensor's dtype when loaded, else config.json's torch_dtype, else F32. */
  dtype?: FloatDtype;
  /** copy tokenizer and generation files from this directory. */
  companionsFrom?: string;
  maxShardBytes?: number;
}

/**
 * Writes the model's base weights (LoRA adapters merged in when present, in a copy) in the
 * checkpoint layout: torch Linear weights transposed back, the tied head left out, the
 * config.json it was loaded with.
 */
export function savePretrained(dir: string, model: PretrainedLM, opts: SavePretrainedOptions = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const src = model.loraConfig ? model.clone() : model;
  try {
    if (src !== model) src.mergeLoRA();
    const dtypes = dtypesOf(model);
    const fallback = opts.dtype ?? configDtype(model.spec) ?? "F32";
    const tensors: Record<string, SafeTensor> = {};
    const weights = src.namedWeights();
    for (const w of weightSpecs(model.spec)) {
      const t = weights[w.name]!;
      let data = t.dataSync() as Float32Array;
      if (w.linearLayout) data = transpose2d(data, w.fileShape[1]!, w.fileShape[0]!);
      tensors[w.name] = fromFloat32(data, w.fileShape, opts.dtype ?? dtypes.get(w.name) ?? fallback, true);
    }
    const files = writeShardedSafetensors(dir, tensors, {
      metadata: { format: "pt" },
      maxShardBytes: opts.maxShardBytes,
    });
    const config = { ...model.spec.raw };
    const written = opts.dtype ?? (dtypes.size > 0 ? [...dtypes.values()][0] : fallback);
    if (written) config.torch_dtype = DTYPE_NAMES[written];
    writeJsonAtomic(join(dir, CONFIG_FILE), config);
    if (opts.companionsFrom) {
      for (const f of COMPANION_FILES) {
        const from = join(opts.companionsFrom, f);
        if (existsSync(from) && basename(from) !== CONFIG_FILE) copyFileSync(from, join(dir, f));
      }
    }
    return [...files, CONFIG_FILE];
  } finally {
    if (src !== model) src.dispose();
  }
}
