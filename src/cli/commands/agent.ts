import { type Command, InvalidArgumentError, Option } from "commander";
import type { BackendName } from "../../model/backend.ts";
import { AGENT_EXAMPLE } from "../../recipes/email/presets.ts";
import { intFlag } from "../flags.ts";

interface AgentCliOptions {
  model: string;
  question?: string;
  seed: number;
  temperature: number;
  backend: BackendName;
}

/** `grpo agent`: runs a trained email agent on a synthetic inbox and prints its turns. */
export function register(program: Command): void {
  program
    .command("agent")
    .description(
      "Run a trained email agent (from grpo train email) on a synthetic inbox and print each tool call and result.\n\n" +
        "The inbox is drawn from --seed with the settings the model was trained with (metadata.json). Without " +
        "--question the agent gets the inbox's first generated question, whose answer is known, and the verdict is printed.",
    )
    .requiredOption(
      "--model <dir>",
      "A checkpoint: best_model/, final/ or checkpoint-N/ (adapter or full model)",
    )
    .option("--question <text>", "The question to ask about the inbox (without it: the inbox's own question)")
    .option("--seed <n>", "Which synthetic inbox", intFlag("--seed", 0), 1)
    .option(
      "--temperature <t>",
      "Sampling temperature (0: greedy)",
      (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0)
          throw new InvalidArgumentError(`--temperature must be ≥ 0, got "${v}"`);
        return n;
      },
      0,
    )
    .addOption(new Option("--backend <name>", "Tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo agent --model outputs/grpo_masked/best_model\n" +
        `  grpo agent --model outputs/grpo_masked/best_model --seed ${AGENT_EXAMPLE.seed} --question "${AGENT_EXAMPLE.question}"`,
    )
    .action(async (opts: AgentCliOptions) => {
      // The engine loads only when the command runs, so that --help stays fast.
      const [{ initBackend }, { loadStartingModel }, { agentSettings, runAgent }, { emailVocab }] =
        await Promise.all([
          import("../../model/backend.ts"),
          import("../../rl/prepare.ts"),
          import("../../recipes/email/agent.ts"),
          import("../../recipes/email/tokenizer.ts"),
        ]);
      await initBackend(opts.backend);
      const settings = agentSettings(opts.model);
      const model = loadStartingModel(opts.model, opts.seed, { name: "email", vocabSize: emailVocab().size });
      try {
        const run = runAgent(model, {
          question: opts.question,
          seed: opts.seed,
          inbox: settings.inbox,
          maxTurns: settings.maxTurns,
          maxTurnTokens: settings.maxTurnTokens,
          temperature: opts.temperature,
        });
        console.log(`Inbox ${run.inboxId}`);
        console.log(`Question: ${run.question}`);
        run.turns.forEach((t, i) => {
          console.log(`\nTurn ${i + 1}: ${t.call}`);
          if (t.result !== null) console.log(t.result.replace(/^/gm, "  "));
        });
        if (run.verdict !== null)
          console.log(
            `\nVerdict: ${run.verdict} (expected ${run.expected}; reward ${run.reward?.toFixed(3)})`,
          );
        else
          console.log(
            `\n${run.turns.length} turns; this question is not one the generator wrote for inbox ${run.inboxId}, ` +
              `so its answer is unknown. Questions of this inbox: ${run.inboxQuestions.map((q) => `"${q}"`).join(", ")}`,
          );
      } finally {
        model.dispose();
      }
    });
}
