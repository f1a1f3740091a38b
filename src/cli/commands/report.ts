import type { Command } from "commander";
import { watchReport, writeReport } from "../../report/index.ts";

interface ReportCliOptions {
  out?: string;
  title?: string;
  watch?: boolean;
}

export function register(program: Command): void {
  program
    .command("report")
    .description(
      "Write a self-contained HTML report (curves, tables, configuration) of one run directory, or of several " +
        "compared on the same charts, each run in one colour. Opens from disk, no network.",
    )
    .argument(
      "<run-dirs...>",
      "parametric output directory (history.jsonl) or training-free working directory",
    )
    .option("--out <file>", "output file (default <run-dir>/report.html; ./report.html for several runs)")
    .option("--title <text>", "page title")
    .option("--watch", "re-render whenever the run's files change, until Ctrl-C")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo report outputs/grpo_theory                    # after grpo train theory: outputs/grpo_theory/report.html\n" +
        "  grpo report outputs/grpo_theory outputs/grpo_theory_b --out compare.html\n" +
        "  grpo report outputs/grpo_theory --watch            # re-render while the run goes on\n" +
        "  grpo report .                                      # a training-free working directory",
    )
    .action(async (dirs: string[], opts: ReportCliOptions) => {
      if (!opts.watch) {
        const { path, runs } = writeReport(dirs, opts);
        for (const r of runs) {
          for (const p of r.problems) console.error(`${r.name}: ${p.file}: ${p.reason}`);
        }
        console.log(path);
        return;
      }
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      await watchReport(dirs, {
        ...opts,
        signal: ac.signal,
        onRender: (path) => console.log(`${new Date().toISOString()} ${path}`),
        onError: (err) => console.error(`report: ${(err as Error).message}`),
      });
    });
}
