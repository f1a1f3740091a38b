/**
 * Model files, whatever the model: `loadModel(dir)` reads the project's own GPT checkpoints and
 * Hugging Face causal-LM directories alike, dispatching on config.json, with a LoRA adapter
 * (adapter_config.json) over its base when the directory holds one; `saveModel` writes a model
 * in its own layout. The safetensors format itself lives in ./safetensors-format.ts (re-exported
 * here for callers that read and write tensors directly).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Rng } from "../core/rng.ts";
import { FileFormatError, readJsonFile } from "../io/files.ts";
import type { CausalLM } from "./causal-lm.ts";
import { GPT } from "./gpt.ts";
import { isGptConfig, loadGpt, type SaveModelOptions, saveGpt } from "./gpt-files.ts";
import { ADAPTER_CONFIG_FILE, loadAdapter, readAdapterConfig, saveAdapter } from "./hf/adapter.ts";
import { CONFIG_FILE } from "./hf/config.ts";
import { PretrainedLM } from "./hf/model.ts";
import { loadPretrained, type SavePretrainedOptions, savePretrained } from "./hf/weights.ts";

export {
  parseSafetensors,
  type SafeTensor,
  type SafetensorsDtype,
  SafetensorsError,
  serializeSafetensors,
} from "./safetensors-format.ts";
export type { SaveModelOptions };

export interface LoadOptions {
  /** LoRA initialisation and dropout seeds (default 0). */
  rng?: Rng;
  /** An adapter directory to apply over the model in `dir`. */
  adapter?: string;
}

function readConfig(dir: string): Record<string, unknown> {
  const file = join(dir, CONFIG_FILE);
  const j = readJsonFile(file);
  if (typeof j !== "object" || j === null || Array.isArray(j))
    throw new FileFormatError(file, undefined, undefined, "expected a JSON object");
  return j as Record<string, unknown>;
}

/**
 * The base directory of an adapter: base_model_name_or_path resolved against the adapter's
 * directory. A hub id that is no directory here needs `loadModel(baseDir, { adapter })`.
 */
function adapterBase(dir: string): string {
  const cfg = readAdapterConfig(dir);
  const base = resolve(dir, cfg.baseModelNameOrPath ?? ".");
  if (!existsSync(join(base, CONFIG_FILE))) {
    throw new FileFormatError(
      join(dir, ADAPTER_CONFIG_FILE),
      undefined,
      "base_model_name_or_path",
      `${JSON.stringify(cfg.baseModelNameOrPath)} is not a model directory here (${join(base, CONFIG_FILE)} not found); load the base with loadModel(baseDir, { adapter: "${dir}" })`,
    );
  }
  return base;
}

/**
 * Loads a model directory: the project's GPT (config.json model_type "grpo-ts-gpt") or a
 * Hugging Face causal LM (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
 * GPT2LMHeadModel). A directory with adapter_config.json loads its base and the adapter.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): CausalLM {
  const rng = opts.rng ?? new Rng(0);
  // A directory holding adapter_config.json is an adapter over base_model_name_or_path.
  const ownAdapter = opts.adapter === undefined && existsSync(join(dir, ADAPTER_CONFIG_FILE));
  const adapterDir = opts.adapter ?? (ownAdapter ? dir : undefined);
  const baseDir = ownAdapter ? adapterBase(dir) : dir;
  const config = readConfig(baseDir);
  let model: CausalLM;
  if (isGptConfig(config)) {
    if (opts.adapter !== undefined)
      throw new Error(`loadModel(${dir}): adapters of the project's GPT load from their own directory`);
    // The GPT's own loader handles its adapters (base_model_name_or_path beside or elsewhere).
    model = loadGpt(dir, rng);
  } else {
    const m = loadPretrained(baseDir);
    if (adapterDir !== undefined) {
      try {
        loadAdapter(m, adapterDir, rng);
      } catch (err) {
        m.dispose();
        throw err;
      }
    }
    model = m;
  }
  return model;
}

export interface SaveOptions extends SaveModelOptions, SavePretrainedOptions {}

/**
 * Writes a model in its own layout. The project's GPT: see ./gpt-files.ts. A Hugging Face
 * model: with `lora`, only the PEFT adapter (base_model_name_or_path = `baseModelPath`);
 * otherwise the full weights (adapters merged) in the checkpoint's dtype.
 */
export function saveModel(dir: string, model: CausalLM, opts: SaveOptions = {}): void {
  if (model instanceof GPT) {
    saveGpt(dir, model, opts);
    return;
  }
  if (!(model instanceof PretrainedLM)) throw new Error(`saveModel(${dir}): unknown model type`);
  if (opts.lora) {
    if (!model.loraConfig)
      throw new Error(`saveModel(${dir}): lora: true but the model has no LoRA adapters enabled`);
    saveAdapter(dir, model, { baseModelNameOrPath: opts.baseModelPath ?? null });
    return;
  }
  savePretrained(dir, model, opts);
}
