import { type Command, Option } from "commander";
import type { BackendName } from "../../model/backend.ts";
import { floatFlag, intFlag } from "../flags.ts";

interface GenerateCliOptions {
  model: string;
  adapter?: string;
  prompt: string[];
  chat?: boolean;
  system?: string;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed: number;
  json?: boolean;
  backend: BackendName;
}

export function register(program: Command): void {
  program
    .command("generate")
    .description(
      "Generate text with a model directory (Hugging Face layout: config.json, safetensors, tokenizer.json),\n" +
        "in process, with a KV cache; several --prompt flags are sampled together in one batch.\n" +
        "Sampling defaults come from the model's generation_config.json; --temperature 0 is greedy.",
    )
    .requiredOption("--model <dir>", "the model directory (or an adapter directory over its base)")
    .option("--adapter <dir>", "a PEFT LoRA adapter to apply over --model")
    .requiredOption("--prompt <text>", "the prompt; repeat for a batch", (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .option("--chat", "render the prompt as a user turn with the model's chat template")
    .option("--system <text>", "with --chat: a system message before the prompt")
    .option(
      "--max-new-tokens <n>",
      "tokens to generate (default: generation_config.json's max_new_tokens, else 256)",
      intFlag("--max-new-tokens", 1),
    )
    .option("--temperature <t>", "sampling temperature; 0 is greedy", floatFlag("--temperature", 0, 5))
    .option("--top-p <p>", "nucleus sampling mass", floatFlag("--top-p", 0, 1, true))
    .option("--top-k <k>", "keep the k likeliest tokens (0: all)", intFlag("--top-k", 0))
    .option("--seed <n>", "random seed; the same seed gives the same text", intFlag("--seed", 0), 0)
    .option("--json", 'print one JSON object per prompt: {"prompt_ids", "completion_ids", "text"}')
    .addOption(new Option("--backend <name>", "tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        '  grpo generate --model SmolLM2-135M-Instruct --chat --prompt "What is GRPO?" --max-new-tokens 64\n' +
        '  grpo generate --model SmolLM2-135M-Instruct --adapter outputs/my-run/final --chat --prompt "Hi" --temperature 0 --json',
    )
    .action(async (o: GenerateCliOptions) => {
      // The engine loads only when the command runs, so that --help stays fast.
      const [{ initBackend }, { generateText, loadTextModel }] = await Promise.all([
        import("../../model/backend.ts"),
        import("../../model/generate.ts"),
      ]);
      await initBackend(o.backend);
      const m = loadTextModel(o.model, o.adapter === undefined ? {} : { adapter: o.adapter });
      try {
        const out = generateText(m, {
          prompts: o.prompt,
          chat: Boolean(o.chat),
          ...(o.system === undefined ? {} : { system: o.system }),
          ...(o.maxNewTokens === undefined ? {} : { maxNewTokens: o.maxNewTokens }),
          ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
          ...(o.topP === undefined ? {} : { topP: o.topP }),
          ...(o.topK === undefined ? {} : { topK: o.topK }),
          seed: o.seed,
        });
        for (const g of out) {
          if (o.json)
            console.log(
              JSON.stringify({ prompt_ids: g.promptIds, completion_ids: g.completionIds, text: g.text }),
            );
          else console.log(g.text);
        }
      } finally {
        m.model.dispose();
      }
    });
}
