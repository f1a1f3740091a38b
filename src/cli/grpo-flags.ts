/**
 * The command-line flags of GrpoConfig, one per field in TRL's kebab case (numGenerations →
 * --num-generations), so that every parametric recipe spells a knob the same way. A recipe adds
 * the fields it lets the user set, with its own defaults, and its own flags beside them.
 */
import { type Command, Option } from "commander";
import {
  type GrpoConfig,
  type GrpoFlagKey,
  IMPORTANCE_SAMPLING_LEVELS,
  KL_ESTIMATORS,
  LOSS_TYPES,
  LR_SCHEDULER_TYPES,
  SCALE_REWARDS,
} from "../core/config.ts";
import { floatFlag, intFlag } from "./flags.ts";

export type GrpoKey = GrpoFlagKey;

interface FlagSpec {
  description: string;
  /** The value's placeholder in the help: <n> for counts, <x> for numbers, <name> for choices. */
  arg?: "<n>" | "<x>" | "<name>";
  /** Parses and checks the text; commander reports a failure with the flag's name. */
  parse?: (flag: string) => (value: string) => unknown;
  choices?: readonly string[];
  /** A switch without a value. */
  boolean?: true;
}

const FLAGS: Record<GrpoKey, FlagSpec> = {
  numGenerations: {
    arg: "<n>",
    description: "Completions per prompt (G); advantages are relative to the group",
    parse: (f) => intFlag(f, 2),
  },
  maxCompletionLength: {
    arg: "<n>",
    description: "Tokens a completion may generate (also dr_grpo's normaliser)",
    parse: (f) => intFlag(f, 1),
  },
  temperature: { arg: "<x>", description: "Sampling temperature", parse: (f) => floatFlag(f, 0, 5, true) },
  topP: {
    arg: "<x>",
    description: "Nucleus sampling: keep the likeliest tokens up to this mass (1: all)",
    parse: (f) => floatFlag(f, 0, 1, true),
  },
  topK: { arg: "<n>", description: "Keep only the k likeliest tokens (0: all)", parse: (f) => intFlag(f, 0) },
  learningRate: { arg: "<x>", description: "Adam learning rate", parse: (f) => floatFlag(f, 0, 1, true) },
  lrSchedulerType: {
    arg: "<name>",
    description: "Learning rate over the run: held, or decayed to 0 at the last step",
    choices: LR_SCHEDULER_TYPES,
  },
  maxGradNorm: {
    arg: "<x>",
    description: "Global gradient-norm clip (0: none)",
    parse: (f) => floatFlag(f, 0),
  },
  maxSteps: { arg: "<n>", description: "GRPO steps", parse: (f) => intFlag(f, 1) },
  numIterations: {
    arg: "<n>",
    description: "Optimisation passes over each sampled batch (μ); above 1 the clip binds",
    parse: (f) => intFlag(f, 1),
  },
  seed: {
    arg: "<n>",
    description: "Random seed; the same seed gives the same run",
    parse: (f) => intFlag(f, 0),
  },
  beta: {
    arg: "<x>",
    description: "Weight of the KL penalty to the frozen reference",
    parse: (f) => floatFlag(f, 0),
  },
  klEstimator: { arg: "<name>", description: "KL estimator per token", choices: KL_ESTIMATORS },
  epsilon: {
    arg: "<x>",
    description: "Clip range ε of the importance ratio",
    parse: (f) => floatFlag(f, 0, 1),
  },
  epsilonHigh: {
    arg: "<x>",
    description: "Upper clip range (default: --epsilon; DAPO's clip-higher: 0.28)",
    parse: (f) => floatFlag(f, 0),
  },
  entropyCoef: { arg: "<x>", description: "Weight of the entropy bonus", parse: (f) => floatFlag(f, 0) },
  lossType: { arg: "<name>", description: "Aggregation of the token losses", choices: LOSS_TYPES },
  importanceSamplingLevel: {
    arg: "<name>",
    description: "One importance ratio per token, or per sequence (GSPO)",
    choices: IMPORTANCE_SAMPLING_LEVELS,
  },
  scaleRewards: {
    arg: "<name>",
    description: "Divide advantages by the group's std, the batch's, or not at all (Dr. GRPO)",
    choices: SCALE_REWARDS,
  },
  maskTruncatedCompletions: {
    description: "Leave completions cut by the length limit out of the loss",
    boolean: true,
  },
  dynamicSampling: {
    description: "Drop the groups whose rewards are all equal from the update (DAPO)",
    boolean: true,
  },
};

/** The parser maker of each option addGrpoFlags made, so that an alias's errors name the alias. */
const parsers = new WeakMap<Option, (flag: string) => (value: string) => unknown>();

/** numGenerations → --num-generations. */
export function grpoFlag(key: GrpoKey): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Adds the flags of `keys` to `cmd`, defaulting to `defaults` (a field absent there has no
 * default: the recipe's config decides). `describe` replaces a flag's generic description.
 */
export function addGrpoFlags(
  cmd: Command,
  keys: readonly GrpoKey[],
  defaults: Partial<GrpoConfig>,
  describe: Partial<Record<GrpoKey, string>> = {},
): Command {
  for (const key of keys) {
    const spec = FLAGS[key];
    const flag = grpoFlag(key);
    const opt = new Option(spec.boolean ? flag : `${flag} ${spec.arg}`, describe[key] ?? spec.description);
    if (spec.parse) {
      opt.argParser(spec.parse(flag));
      parsers.set(opt, spec.parse);
    }
    if (spec.choices) opt.choices(spec.choices);
    if (defaults[key] !== undefined) opt.default(defaults[key]);
    cmd.addOption(opt);
  }
  return cmd;
}

/** `grpo train theory`'s spellings of earlier versions, still accepted: old flag → the attribute it sets. */
export const OLD_FLAG_NAMES: Readonly<Record<string, GrpoKey>> = {
  "--kl-coef": "beta",
  "--clip-range": "epsilon",
  "--num-episodes": "maxSteps",
  "--group-size": "numGenerations",
};

/**
 * Accepts each `alias` in place of the option whose attribute it names (those `cmd` has). The
 * alias is parsed and checked like the option, stays out of the help except as "(alias …)" in
 * the option's line, and counts as given on the command line; giving both is an error.
 */
export function addFlagAliases(cmd: Command, aliases: Readonly<Record<string, string>>): Command {
  const pairs: { alias: Option; target: Option }[] = [];
  const named = new Map<Option, string[]>();
  for (const [flag, attribute] of Object.entries(aliases)) {
    const target = cmd.options.find((o) => o.attributeName() === attribute);
    if (!target) continue;
    const alias = new Option(target.required ? `${flag} <value>` : flag).hideHelp();
    const parser = parsers.get(target)?.(flag) ?? target.parseArg;
    if (parser) alias.argParser(parser);
    if (target.argChoices) alias.choices(target.argChoices);
    cmd.addOption(alias);
    pairs.push({ alias, target });
    named.set(target, [...(named.get(target) ?? []), flag]);
  }
  for (const [target, flags] of named)
    target.description = `${target.description} (${flags.length > 1 ? "aliases" : "alias"} ${flags.join(", ")})`;
  cmd.hook("preAction", (c) => {
    for (const { alias, target } of pairs) {
      const value = c.getOptionValue(alias.attributeName());
      if (value === undefined) continue;
      if (c.getOptionValueSource(target.attributeName()) === "cli")
        c.error(`error: ${target.long} and ${alias.long} are the same option; give one of them`);
      c.setOptionValueWithSource(target.attributeName(), value, "cli");
      c.setOptionValue(alias.attributeName(), undefined);
    }
  });
  return cmd;
}
