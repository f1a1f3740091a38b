/**
 * `merge`: a base model directory plus a PEFT LoRA adapter → a full model directory in the
 * base's own layout and dtype (W += (alpha/r)·A·B for every adapted module), with the base's
 * tokenizer and generation files beside it, loadable by transformers and vLLM without PEFT.
 */
import { Rng } from "../../core/rng.ts";
import { loadAdapter } from "./adapter.ts";
import { type FloatDtype, loadPretrained, savePretrained } from "./weights.ts";

export function mergeAdapter(
  baseDir: string,
  adapterDir: string,
  outDir: string,
  opts: { dtype?: FloatDtype; maxShardBytes?: number } = {},
): string[] {
  const model = loadPretrained(baseDir);
  try {
    loadAdapter(model, adapterDir, new Rng(0));
    return savePretrained(outDir, model, { ...opts, companionsFrom: baseDir });
  } finally {
    model.dispose();
  }
}
