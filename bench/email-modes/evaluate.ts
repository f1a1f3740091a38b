/**
 * Held-out accuracy of saved email-agent models on a larger question set than the training
 * runs evaluate on, so that a difference between modes is not a handful of questions.
 *
 *   npx tsx bench/email-modes/evaluate.ts [--eval-size 240] [--seed 42] <model dir>...
 *
 * A model dir is a full checkpoint (the warm-started sft_base) or an adapter (a mode's final/
 * or best_model/) over its base. The questions come from the same held-out inboxes as the
 * bench's (the same seed draws them; a larger size adds inboxes), answered by greedy episodes.
 */
import { parseArgs } from "node:util";
import { initBackend } from "../../src/model/backend.ts";
import { EMAIL_RECIPE_DEFAULTS, emailDefaults } from "../../src/recipes/email/presets.ts";
import { emailTask } from "../../src/recipes/email/run.ts";
import { loadPolicy } from "../../src/rl/checkpoint.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "eval-size": { type: "string", default: "240" },
    seed: { type: "string", default: "42" },
    backend: { type: "string", default: "wasm" },
  },
});
if (positionals.length === 0) throw new Error("give at least one model directory");
const evalSize = Number(values["eval-size"]);
const seed = Number(values.seed);
if (!Number.isInteger(evalSize) || evalSize < 1) throw new Error(`--eval-size: expected a positive integer`);
await initBackend(values.backend as "wasm" | "cpu");

const task = emailTask({
  ...emailDefaults("masked"),
  ...EMAIL_RECIPE_DEFAULTS,
  evalDatasetSize: evalSize,
  mode: "masked",
  seed,
  resume: false,
});

console.log(`| model | held-out accuracy (${evalSize} questions) | correct | reward |`);
console.log("|---|---:|---:|---:|");
for (const dir of positionals) {
  const model = loadPolicy(dir, seed);
  const h = task.heldOutEpisodes(model, 0, seed);
  model.dispose();
  console.log(
    `| ${dir} | ${h.accuracy.toFixed(3)} | ${Math.round(h.accuracy * evalSize)} | ${h.reward.toFixed(3)} |`,
  );
}
