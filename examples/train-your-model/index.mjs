// GRPO with LoRA on a Hugging Face chat model directory: two reward functions, a PEFT adapter.
// Run: node index.mjs <model dir> [output dir]   (e.g. a downloaded SmolLM2-135M-Instruct)
import { GRPOTrainer } from "grpo-ts";

const modelDir = process.argv[2] ?? "SmolLM2-135M-Instruct";
const outputDir = process.argv[3] ?? "outputs/my-model";
const text = (c) => (typeof c === "string" ? c : c[0].content);

// Each reward function gets the whole batch: prompts, completions, their ids, and every other column.
function mentionsAnswer({ completions, answer }) {
  return completions.map((c, i) => (text(c).toLowerCase().includes(answer[i]) ? 1 : 0));
}
function brevity({ completionIds }) {
  return completionIds.map((ids) => -ids.length / 32);
}

const ask = (content, answer) => ({ prompt: [{ role: "user", content }], answer });
const trainer = new GRPOTrainer({
  model: modelDir,
  rewardFuncs: [mentionsAnswer, brevity],
  trainDataset: [
    ask("What colour is a clear sky? One word.", "blue"),
    ask("What do bees make? One word.", "honey"),
    ask("What is frozen water called? One word.", "ice"),
    ask("Which planet do we live on? One word.", "earth"),
  ],
  config: {
    maxSteps: Number(process.env.MAX_STEPS ?? 20),
    numGenerations: 4,
    perDeviceTrainBatchSize: 8, // completions per step: 2 prompts × 4
    maxCompletionLength: 32,
    learningRate: 1e-4,
    rewardWeights: [1, 0.2],
    lora: {
      r: 16,
      loraAlpha: 32,
      loraDropout: 0.05,
      targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    },
    loggingSteps: 1,
    saveSteps: 10,
  },
  outputDir,
  onLog: (e) =>
    console.log(
      `step ${e.step}: reward ${e.reward.toFixed(3)}, ` +
        `mentionsAnswer ${e["rewards/mentionsAnswer/mean"].toFixed(2)}, length ${e["completions/mean_length"].toFixed(1)}`,
    ),
});
const out = await trainer.train();
await trainer.saveModel(`${outputDir}/adapter`); // adapter_model.safetensors + adapter_config.json
console.log(
  `${out.globalStep} steps, training loss ${out.trainingLoss.toFixed(4)}; adapter in ${outputDir}/adapter`,
);
trainer.dispose();
