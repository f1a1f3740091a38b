import { relative, resolve } from "node:path";
import type { Command } from "commander";
import { intFlag } from "../flags.ts";
import { printSummary, reportCommand } from "../summary.ts";

interface MergeCliOptions {
  workdir: string;
  shards?: number;
}

/** `grpo merge-shards`: the final step of a training-free run spread over shards (grpo slurm --array). */
export function register(program: Command): void {
  program
    .command("merge-shards")
    .description(
      "Fold the shards of a training-free run (grpo_training/shards/<i>-of-<N>/, written by --shard i/N) back " +
        "into the working directory: rollout and critic caches (the last line of a problem wins, the problem " +
        "keeps the position of its first line), experience libraries (each shard's operations replayed in shard " +
        "order) and usage records. Running it again changes nothing.",
    )
    .option("--workdir <dir>", "root of grpo_training/ and data/", process.cwd())
    .option(
      "--shards <n>",
      "merge the n shards of one array (default: every shard there)",
      intFlag("--shards", 1),
    )
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo generator --id 1 --dataset toy-math --dataset-config examples/dataset_config.json --shard 1/2\n" +
        "  grpo generator --id 1 --dataset toy-math --dataset-config examples/dataset_config.json --shard 2/2\n" +
        "  grpo merge-shards --shards 2",
    )
    .action(async (opts: MergeCliOptions) => {
      const { mergeShards } = await import("../../recipes/causal-scaffold/shards.ts");
      const workdir = resolve(opts.workdir);
      const r = mergeShards(workdir, opts.shards);
      for (const w of r.warnings) console.error(`warning: ${w}`);
      for (const f of r.files) {
        for (const t of f.torn)
          console.error(`warning: ${t}: its last line was torn (a killed run); skipped`);
      }
      const shown = relative(process.cwd(), workdir) || ".";
      printSummary({
        done: `merged ${r.shards.length} shard${r.shards.length > 1 ? "s" : ""} (${r.shards.join(", ")})`,
        changes: [
          ...r.files.map((f) => `${f.file}: ${f.keys} problem lines`),
          ...r.libraries
            .filter((l) => l.added + l.modified + l.deleted + l.kept > 0)
            .map((l) => `${l.owner} library: ${l.added} added, ${l.modified} modified, ${l.deleted} deleted`),
          `${r.usageRecords} usage records added to grpo_training/run_summary.json`,
        ],
        results: shown,
        next: [reportCommand(shown)],
      });
    });
}
