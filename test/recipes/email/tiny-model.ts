import { Rng } from "../../../src/core/rng.ts";
import { GPT } from "../../../src/model/gpt.ts";
import { emailVocab } from "../../../src/recipes/email/tokenizer.ts";

/** The smallest policy over the email vocabulary, with room for whole episodes. */
export function tinyEmailGpt(seed: number): GPT {
  return new GPT(
    { vocabSize: emailVocab().size, contextLength: 1024, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 },
    new Rng(seed),
  );
}
