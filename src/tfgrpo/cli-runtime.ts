/**
 * The options and argument parsers of the training-free commands. Kept free of the solver's
 * modules (mathjs alone takes most of a second to load) so that `grpo --help` and every other
 * command start fast; `createRuntime` loads the solver when a command actually runs.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_DATASET_CONFIG } from "../data/datasets.ts";
import { DEFAULT_CONFIG_PATH } from "../llm/config.ts";
import { DEFAULT_TAU, type ExtractionMode, type GeneratorId } from "./rewards.ts";
import type { Runtime } from "./runtime.ts";

export type { Runtime } from "./runtime.ts";

/** Options every training-free command accepts. */
export interface CommonOptions {
  config?: string;
  datasetConfig?: string;
  workdir: string;
  concurrency?: number;
  seed: number;
  promptsDir?: string;
  mode: ExtractionMode;
  tau: number;
  llmEquivalence?: boolean;
  rewardWeights?: string;
}

export function parsePositiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got "${v}"`);
    return n;
  };
}

export function parseNonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be an integer ≥ 0, got "${v}"`);
    return n;
  };
}

export function parseUnitFloat(name: string, max = 2) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`${name} must be in [0, ${max}], got "${v}"`);
    return n;
  };
}

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

/** --max-problems and --start-problem, the window of a data set every per-problem command walks. */
export function addProblemRangeOptions(cmd: Command, verb: string): Command {
  return cmd
    .option("--max-problems <n>", `${verb} at most this many problems`, parsePositiveInt("--max-problems"))
    .option(
      "--start-problem <i>",
      "index (0-based) of the first problem in the data set",
      parseNonNegativeInt("--start-problem"),
      0,
    );
}

/** What the generator commands share: the data sets, the group size and the sampling temperature. */
export function addGeneratorOptions(cmd: Command, rolloutsHelp: string): Command {
  return cmd
    .requiredOption("--dataset <names...>", "data set name(s) from the dataset config, or full")
    .option("--rollouts <n>", rolloutsHelp, parsePositiveInt("--rollouts"), 3)
    .option(
      "--temperature <t>",
      "sampling temperature of the scaffold requests",
      parseUnitFloat("--temperature"),
      0.7,
    );
}

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option("--config <path>", `LLM endpoint config (default <workdir>/${DEFAULT_CONFIG_PATH})`)
    .option("--dataset-config <path>", `dataset registry (default <workdir>/${DEFAULT_DATASET_CONFIG})`)
    .option("--workdir <dir>", "root of grpo_training/ and data/", process.cwd())
    .option(
      "--concurrency <n>",
      "LLM requests in flight per agent (overrides max_concurrency)",
      parsePositiveInt("--concurrency"),
    )
    .option("--seed <n>", "seed of retry jitter", parseNonNegativeInt("--seed"), 0)
    .option("--prompts-dir <dir>", "folder with prompt templates overriding the built-in ones")
    .addOption(
      new Option(
        "--mode <mode>",
        "when to learn: variance (σ > τ) or mixed (correct and wrong answers in the group)",
      )
        .choices(["variance", "mixed"])
        .default("variance"),
    )
    .option("--tau <x>", "σ threshold of the variance mode", parseUnitFloat("--tau", 1), DEFAULT_TAU)
    .option("--llm-equivalence", "ask the LLM when answers differ textually and numerically")
    .option(
      "--reward-weights <path>",
      'JSON file of weights per agent, e.g. {"generator_1": {"ans": 0.5, "logic": 0.25, "graph": 0.25}}',
    );
}

/**
 * `plainProgress`: one log line per problem instead of a bar, for commands that run several
 * agents at once (bars of parallel agents would overdraw each other on one terminal).
 */
export async function createRuntime(
  opts: CommonOptions,
  temperatures: { generator?: number; critic?: number } = {},
  display: { plainProgress?: boolean } = {},
): Promise<Runtime> {
  const { buildRuntime } = await import("./runtime.ts");
  return buildRuntime(opts, temperatures, display);
}
