/**
 * The options and argument parsers of the training-free commands, and the runtime they run on.
 * Kept free of the solver's modules (mathjs alone takes most of a second to load) so that
 * `grpo --help` and every other command start fast; `createRuntime` loads the solver when a
 * command actually runs.
 */
import { join, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_DATASET_CONFIG } from "../data/datasets.ts";
import { DEFAULT_CONFIG_PATH } from "../llm/config.ts";
import { SOLVER_DEFAULTS } from "../recipes/causal-scaffold/defaults.ts";
import type { GeneratorId } from "../recipes/causal-scaffold/rewards.ts";
import type { Runtime, SolverOptions } from "../recipes/causal-scaffold/runtime.ts";
import type { Shard } from "../recipes/causal-scaffold/shards.ts";
import type { RunStatus } from "../recipes/causal-scaffold/usage-log.ts";
import { MAX_EXPERIENCE_CHARS, MAX_EXPERIENCE_WORDS } from "../training-free/experience-library.ts";
import { DEFAULT_TAU } from "../training-free/triggers.ts";
import { floatFlag, intFlag } from "./flags.ts";
import { createProgress } from "./progress.ts";

export type { Runtime, SolverOptions } from "../recipes/causal-scaffold/runtime.ts";

/** A comma list of generator ids such as "1,3", for the flag named; duplicates collapse. */
export function parseGeneratorList(flag: string) {
  return (v: string): GeneratorId[] => {
    const ids = v.split(",").map((s) => s.trim());
    if (ids.some((s) => s !== "1" && s !== "2" && s !== "3")) {
      throw new InvalidArgumentError(`${flag} must be a comma list of 1, 2, 3, got "${v}"`);
    }
    return [...new Set(ids.map(Number))] as GeneratorId[];
  };
}

/** "2/4" → shard 2 of 4, for the flag named. */
export function parseShard(flag: string) {
  return (v: string): Shard => {
    const m = /^(\d+)\/(\d+)$/.exec(v.trim());
    const index = Number(m?.[1]);
    const count = Number(m?.[2]);
    if (!m || count < 1 || index < 1 || index > count)
      throw new InvalidArgumentError(`${flag} must be i/N with 1 ≤ i ≤ N, e.g. 2/4, got "${v}"`);
    return { index, count };
  };
}

/**
 * --max-problems and --start-problem, the window of a data set every per-problem command walks,
 * and (unless `shard` is false) --shard, which takes one block of that window.
 */
export function addProblemRangeOptions(cmd: Command, verb: string, opts: { shard?: boolean } = {}): Command {
  cmd
    .option("--max-problems <n>", `${verb} at most this many problems`, intFlag("--max-problems", 1))
    .option(
      "--start-problem <i>",
      "index (0-based) of the first problem in the data set",
      intFlag("--start-problem", 0),
      0,
    );
  if (opts.shard === false) return cmd;
  return cmd.option(
    "--shard <i/N>",
    "take the i-th of N blocks of the problems, in <workdir>/grpo_training/shards/<i>-of-<N>/; " +
      "grpo merge-shards folds the blocks back (grpo slurm --array runs one per array task)",
    parseShard("--shard"),
  );
}

/** What the generator commands share: the data sets, the group size and the sampling temperature. */
export function addGeneratorOptions(cmd: Command, rolloutsHelp: string): Command {
  return cmd
    .requiredOption("--dataset <names...>", "data set name(s) from the dataset config, or full")
    .option("--rollouts <n>", rolloutsHelp, intFlag("--rollouts", 1), SOLVER_DEFAULTS.rolloutsPerGenerator)
    .option(
      "--temperature <t>",
      "sampling temperature of the scaffold requests",
      floatFlag("--temperature", 0, 2),
      SOLVER_DEFAULTS.generatorTemperature,
    );
}

export function addSolverOptions(cmd: Command): Command {
  return cmd
    .option("--config <path>", `LLM endpoint config (default <workdir>/${DEFAULT_CONFIG_PATH})`)
    .option("--dataset-config <path>", `dataset registry (default <workdir>/${DEFAULT_DATASET_CONFIG})`)
    .option("--workdir <dir>", "root of grpo_training/ and data/", process.cwd())
    .option(
      "--concurrency <n>",
      "LLM requests in flight per agent (overrides max_concurrency)",
      intFlag("--concurrency", 1),
    )
    .option(
      "--transport-threads <n>",
      "send the LLM requests from n worker threads, leaving the main thread to the solver " +
        "(for runs with a hundred or more requests in flight; 0: the main thread sends them)",
      intFlag("--transport-threads", 0),
      0,
    )
    .option("--seed <n>", "seed of retry jitter", intFlag("--seed", 0), 0)
    .option("--prompts-dir <dir>", "folder with prompt templates overriding the built-in ones")
    .addOption(
      new Option(
        "--mode <mode>",
        "when to learn: variance (σ > τ) or mixed (correct and wrong answers in the group)",
      )
        .choices(["variance", "mixed"])
        .default("variance"),
    )
    .option("--tau <x>", "σ threshold of the variance mode", floatFlag("--tau", 0, 1), DEFAULT_TAU)
    .option("--llm-equivalence", "ask the LLM when answers differ textually and numerically")
    .option(
      "--reward-weights <path>",
      'JSON file of weights per agent, e.g. {"generator_1": {"ans": 0.5, "logic": 0.25, "graph": 0.25}}',
    )
    .option(
      "--max-failures <n>",
      "stop the run after this many failures in a row of one agent (the endpoint looks broken)",
      intFlag("--max-failures", 1),
      SOLVER_DEFAULTS.maxFailures,
    )
    .option(
      "--max-lesson-words <n>",
      "longest lesson the libraries accept, in words",
      intFlag("--max-lesson-words", 1),
      MAX_EXPERIENCE_WORDS,
    )
    .option(
      "--max-lesson-chars <n>",
      "longest lesson the libraries accept, in characters",
      intFlag("--max-lesson-chars", 1),
      MAX_EXPERIENCE_CHARS,
    );
}

/**
 * The exit status of a run that ended without an error but did not complete every requested
 * problem (failures recorded, or stopped early): 2, where an error (a bad config, a fatal
 * endpoint error, a lock held by another process) exits 1.
 */
export const EXIT_INCOMPLETE = 2;

export class IncompleteRunError extends Error {
  readonly exitCode = EXIT_INCOMPLETE;
  constructor(message: string) {
    super(message);
    this.name = "IncompleteRunError";
  }
}

/**
 * Runs a training-free command: the runtime, then `body`, which says whether every requested
 * problem completed and why not. A run stopped by a fatal endpoint error fails with that error's
 * one line; one stopped by too many failures, or ending with failures, exits EXIT_INCOMPLETE.
 * The usage is closed and the locks released whatever happens.
 */
export async function runSolverCommand(
  command: string,
  opts: SolverOptions & { shard?: Shard },
  temperatures: { generator?: number; critic?: number },
  display: { plainProgress?: boolean },
  body: (rt: Runtime) => Promise<{ complete: boolean; incomplete?: string }>,
): Promise<void> {
  const rt = await createRuntime(command, opts, temperatures, display);
  let status: RunStatus = "failed";
  try {
    const outcome = await body(rt);
    const stop = rt.guard.stopReason;
    if (stop?.fatal) throw new Error(stop.message);
    status = outcome.complete && !stop ? "finished" : "incomplete";
    if (stop) throw new IncompleteRunError(`${stop.message}`);
    if (!outcome.complete)
      throw new IncompleteRunError(
        `${outcome.incomplete ?? "not every problem completed"}; rerun the same command to redo exactly the failed parts`,
      );
  } finally {
    rt.finish(status);
  }
}

/**
 * Progress goes to stderr, so that stdout holds only each command's result lines.
 * `plainProgress`: one log line per problem instead of a bar, for commands that run several
 * agents at once (bars of parallel agents would overdraw each other on one terminal).
 */
export async function createRuntime(
  command: string,
  opts: SolverOptions & { shard?: Shard },
  temperatures: { generator?: number; critic?: number } = {},
  display: { plainProgress?: boolean } = {},
): Promise<Runtime> {
  const [{ buildRuntime }, shards] = await Promise.all([
    import("../recipes/causal-scaffold/runtime.ts"),
    import("../recipes/causal-scaffold/shards.ts"),
  ]);
  const shard = opts.shard;
  const workdir = resolve(opts.workdir);
  // A shard works in a directory of its own, on the endpoints and data sets of the main one.
  const solver: SolverOptions = shard
    ? {
        ...opts,
        workdir: shards.prepareShardWorkdir(workdir, shard),
        config: resolve(opts.config ?? join(workdir, DEFAULT_CONFIG_PATH)),
        datasetConfig: resolve(opts.datasetConfig ?? join(workdir, DEFAULT_DATASET_CONFIG)),
      }
    : opts;
  const rt = buildRuntime(command, solver, temperatures, (label, total) =>
    createProgress({
      label,
      total,
      stream: process.stderr,
      unit: "Problem",
      // lines of agents running side by side tell whose they are
      ...(display.plainProgress ? { tty: false, tagLines: true } : {}),
    }),
  );
  if (!shard) return rt;
  return {
    ...rt,
    loadProblems(datasets, range) {
      const all = rt.loadProblems(datasets, range);
      const mine = shards.shardSlice(all, shard);
      const first = all.indexOf(mine[0]!) + 1;
      process.stderr.write(
        `shard ${shard.index}/${shard.count}: ${mine.length === 0 ? "no problems" : `problems ${first}–${first + mine.length - 1}`} of ${all.length} → ${rt.workdir}\n`,
      );
      return mine;
    },
  };
}
