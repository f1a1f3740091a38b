import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { register as registerDemo } from "../../src/cli/commands/demo.ts";
import { register as registerTrain } from "../../src/cli/commands/train.ts";
import { addFlagAliases, addGrpoFlags, grpoFlag, OLD_FLAG_NAMES } from "../../src/cli/grpo-flags.ts";
import { GRPO_DEFAULTS, type GrpoConfig } from "../../src/core/config.ts";
import { THEORY_GRPO_KEYS } from "../../src/recipes/theory/presets.ts";

/** A command with the theory recipe's GrpoConfig flags and the old spellings; parse returns its options. */
function parse(args: string[]) {
  const cmd = new Command("t").exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  addGrpoFlags(cmd, THEORY_GRPO_KEYS, { ...GRPO_DEFAULTS, numGenerations: 64, beta: 0.05 });
  addFlagAliases(cmd, OLD_FLAG_NAMES);
  let seen: { opts: Partial<GrpoConfig>; sources: Record<string, string | undefined> } | undefined;
  cmd.action((opts: Partial<GrpoConfig>, c: Command) => {
    const sources: Record<string, string | undefined> = {};
    for (const k of ["beta", "epsilon", "maxSteps", "numGenerations"]) sources[k] = c.getOptionValueSource(k);
    seen = { opts, sources };
  });
  cmd.parse(args, { from: "user" });
  return seen!;
}

describe("GrpoConfig flags", () => {
  it("are TRL's names in kebab case", () => {
    assert.equal(grpoFlag("numGenerations"), "--num-generations");
    assert.equal(grpoFlag("maxCompletionLength"), "--max-completion-length");
    assert.equal(grpoFlag("importanceSamplingLevel"), "--importance-sampling-level");
    assert.equal(grpoFlag("epsilonHigh"), "--epsilon-high");
  });

  it("parse to GrpoConfig's fields and default to the recipe's values", () => {
    const { opts } = parse([
      "--num-generations",
      "16",
      "--epsilon-high",
      "0.28",
      "--loss-type",
      "dr_grpo",
      "--dynamic-sampling",
    ]);
    assert.equal(opts.numGenerations, 16);
    assert.equal(opts.epsilonHigh, 0.28);
    assert.equal(opts.lossType, "dr_grpo");
    assert.equal(opts.dynamicSampling, true);
    assert.equal(opts.beta, 0.05);
    assert.equal(opts.epsilon, GRPO_DEFAULTS.epsilon);
    assert.equal(opts.maskTruncatedCompletions, false);
  });

  it("accept the old spellings as aliases that count as given on the command line", () => {
    const old = parse([
      "--kl-coef",
      "0.3",
      "--clip-range",
      "0.1",
      "--num-episodes",
      "7",
      "--group-size",
      "5",
    ]);
    const now = parse(["--beta", "0.3", "--epsilon", "0.1", "--max-steps", "7", "--num-generations", "5"]);
    for (const k of ["beta", "epsilon", "maxSteps", "numGenerations"] as const) {
      assert.equal(old.opts[k], now.opts[k], k);
      assert.equal(old.sources[k], "cli", k);
    }
    assert.deepEqual(
      [old.opts.beta, old.opts.epsilon, old.opts.maxSteps, old.opts.numGenerations],
      [0.3, 0.1, 7, 5],
    );
  });

  it("check an alias like its flag and refuse both spellings at once", () => {
    assert.throws(() => parse(["--group-size", "1"]), /--group-size must be an integer ≥ 2, got "1"/);
    assert.throws(() => parse(["--kl-coef", "-1"]), /--kl-coef must be a number/);
    assert.throws(
      () => parse(["--beta", "0.1", "--kl-coef", "0.2"]),
      /--beta and --kl-coef are the same option/,
    );
    assert.throws(() => parse(["--loss-type", "ppo"]), /Allowed choices are grpo, bnpo, dr_grpo, dapo/);
  });
});

describe("the recipes' commands", () => {
  function command(register: (p: Command) => void, ...path: string[]): Command {
    const program = new Command();
    register(program);
    let cmd = program;
    for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
    return cmd;
  }

  it("grpo train theory takes GrpoConfig's flags, the old names, and no longer --quick", () => {
    const theory = command(registerTrain, "train", "theory");
    const longs = theory.options.map((o) => o.long);
    for (const key of THEORY_GRPO_KEYS) assert.ok(longs.includes(grpoFlag(key)), grpoFlag(key));
    for (const old of Object.keys(OLD_FLAG_NAMES)) assert.ok(longs.includes(old), old);
    assert.ok(!longs.includes("--quick"));
    // The grammar bounds a theory's length: no flag for it.
    assert.ok(!longs.includes("--max-completion-length"));
  });

  it("grpo train email derives its flags from GrpoConfig and reads MAX_TOKENS as the completion length", () => {
    const email = command(registerTrain, "train", "email");
    const longs = email.options.map((o) => o.long);
    for (const flag of ["--epsilon", "--epsilon-high", "--loss-type", "--num-iterations", "--max-grad-norm"])
      assert.ok(longs.includes(flag), flag);
    const alias = email.options.find((o) => o.long === "--max-completion-length");
    assert.ok(alias?.hidden, "--max-completion-length is an alias of --max-tokens");
  });

  it("grpo demo keeps its old flag names as aliases", () => {
    const demo = command(registerDemo, "demo");
    const longs = demo.options.map((o) => o.long);
    for (const flag of [
      "--max-steps",
      "--num-generations",
      "--learning-rate",
      "--num-iterations",
      "--epsilon-high",
    ])
      assert.ok(longs.includes(flag), flag);
    for (const old of ["--steps", "--group-size", "--lr", "--inner-steps", "--eps-low", "--eps-high"]) {
      const o = demo.options.find((x) => x.long === old);
      assert.ok(o?.hidden, `${old} is a hidden alias`);
    }
  });
});
