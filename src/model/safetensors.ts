/**
 * safetensors read/write and model checkpoints.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON
 * `{"__metadata__": {..}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}` padded
 * with spaces so the data starts on an 8-byte boundary, then the raw little-endian tensor
 * bytes, tensors in sorted-name order without gaps (offsets relative to the data start).
 *
 * Checkpoints: `model.safetensors` + `config.json`, or for LoRA `adapter_model.safetensors` +
 * `adapter_config.json` with PEFT names `base_model.model.<module>.lora_A.weight`. PEFT stores
 * A as [r, d_in] and B as [d_out, r] (torch Linear layout); in memory they are [d_in, r] and
 * [r, d_out], so both are transposed on save and load. Base projection weights keep GPT-2's
 * Conv1D layout [d_in, d_out] (hence `fan_in_fan_out: true` in the adapter config).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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

export type SafetensorsDtype = "F32" | "I32";

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

const DTYPES: Record<SafetensorsDtype, { bytes: number; array: typeof Float32Array | typeof Int32Array }> = {
  F32: { bytes: 4, array: Float32Array },
  I32: { bytes: 4, array: Int32Array },
};

export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "SafetensorsError";
  }
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function serializeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") throw new Error(`safetensors: "__metadata__" cannot be a tensor name`);
    const t = tensors[name]!;
    const spec = DTYPES[t.dtype];
    if (!spec)
      throw new Error(`safetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)}`);
    if (!(t.data instanceof spec.array))
      throw new Error(`safetensors: tensor "${name}" data does not match dtype ${t.dtype}`);
    if (numel(t.shape) !== t.data.length) {
      throw new Error(
        `safetensors: tensor "${name}" shape [${t.shape}] needs ${numel(t.shape)} values, got ${t.data.length}`,
      );
    }
    const size = t.data.length * spec.bytes;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

export function parseSafetensors(
  bytes: Uint8Array,
  file = "<safetensors>",
): { tensors: Record<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new SafetensorsError(file, msg);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, the header length alone needs 8`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8))
    fail(`header length ${n} goes beyond the end of the file (${bytes.length} bytes)`);
  const hlen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (err) {
    fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    fail("header is not a JSON object");
  const dataStart = 8 + hlen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null) fail(`__metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) fail(`tensor "${name}": entry is not an object`);
    const spec = DTYPES[e.dtype as SafetensorsDtype];
    if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPES, e.dtype) || !spec) {
      fail(
        `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(DTYPES).join(", ")})`,
      );
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isInteger(s) && s >= 0)) {
      fail(`tensor "${name}": shape must be an array of non-negative integers`);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((o) => Number.isInteger(o) && o >= 0) ||
      off[0] > off[1]
    ) {
      fail(`tensor "${name}": data_offsets must be [begin, end] with 0 ≤ begin ≤ end`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen)
      fail(`tensor "${name}": data_offsets end ${end} is beyond the data section (${dataLen} bytes)`);
    const want = numel(shape as number[]) * spec!.bytes;
    if (end - begin !== want) {
      fail(
        `tensor "${name}": shape [${shape}] ${e.dtype} needs ${want} bytes, data_offsets span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    // Copy: the data may not be 4-byte aligned inside the file buffer.
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    tensors[name] = {
      dtype: e.dtype as SafetensorsDtype,
      shape: shape as number[],
      data: new spec!.array(copy.buffer),
    };
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const s of spans) {
    if (s.begin < cursor)
      fail(`tensor "${s.name}": data_offsets [${s.begin}, ${s.end}] overlap the previous tensor`);
    if (s.begin > cursor) fail(`tensor "${s.name}": gap in the data section before offset ${s.begin}`);
    cursor = s.end;
  }
  if (cursor !== dataLen) fail(`data section has ${dataLen} bytes but the tensors cover ${cursor}`);
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// Model checkpoints

export const MODEL_FILE = "model.safetensors";
export const CONFIG_FILE = "config.json";
export const ADAPTER_FILE = "adapter_model.safetensors";
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
const PEFT_PREFIX = "base_model.model.";

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

export function saveModel(dir: string, model: GPT, opts: SaveModelOptions = {}): void {
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
  return parseSafetensors(new Uint8Array(readFileSync(file)), file).tensors;
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

/**
 * Loads `dir` as a full checkpoint, or — when adapter_config.json is present — its base
 * (base_model_name_or_path, resolved against dir) plus the adapter.
 */
export function loadModel(dir: string, rng: Rng): GPT {
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
