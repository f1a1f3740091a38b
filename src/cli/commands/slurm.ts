import { chmodSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { writeFileAtomic } from "../../io/files.ts";
import { assertWritableDir } from "../../io/writable.ts";
import { type EmailMode, emailDefaults } from "../../recipes/email/presets.ts";
import { intFlag } from "../flags.ts";
import { addFlagAliases } from "../grpo-flags.ts";
import { shellCommand, shellQuote } from "../shell.ts";

/**
 * `grpo slurm`: a SLURM batch script that runs one grpo command on a cluster node, or, with
 * --array N, one shard of a training-free command per array task plus a script that merges the
 * shards once every task succeeded.
 */

/** The checkout the script runs grpo from (bin/grpo.js and the native addon's build script). */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export type NativeMode = "rebuild" | "off";

export interface SlurmOptions {
  jobName: string;
  time?: string;
  cpus?: number;
  mem?: string;
  partition?: string;
  account?: string;
  gpus?: string;
  /** stdout file pattern (absolute), e.g. /runs/a/slurm-%x-%j.out */
  output: string;
  error?: string;
  /** where the job runs (#SBATCH --chdir), absolute */
  chdir: string;
  /** `module load` lines, in order */
  modules?: readonly string[];
  /** the node binary on the compute node (default: node from PATH) */
  node?: string;
  /** rebuild the native BLAS addon for the compute node, or turn it off there */
  native?: NativeMode;
  /** the checkout with bin/grpo.js (default: this one) */
  packageRoot?: string;
  /** extra raw sbatch options, e.g. "--constraint=avx2" */
  extra?: readonly string[];
  /** array tasks 1..array, each taking `--shard $SLURM_ARRAY_TASK_ID/array` */
  array?: number;
}

const TIME_PATTERN = /^(\d+-)?\d+(:\d{2}){0,2}$/;
const MEM_PATTERN = /^\d+[KMGT]?B?$/i;

function sbatchValue(option: string, value: string): string {
  // #SBATCH lines are not parsed by a full shell: whitespace or a newline would split or end the directive.
  if (value === "" || /\s/.test(value)) {
    throw new Error(`slurm: --${option} must be non-empty without whitespace, got ${JSON.stringify(value)}`);
  }
  return value;
}

function header(opts: SlurmOptions, jobName: string, output: string, array?: number): string[] {
  const lines = [
    "#!/usr/bin/env bash",
    `#SBATCH --job-name=${sbatchValue("job-name", jobName)}`,
    `#SBATCH --chdir=${sbatchValue("chdir", opts.chdir)}`,
    `#SBATCH --output=${sbatchValue("output", output)}`,
  ];
  if (opts.error !== undefined) lines.push(`#SBATCH --error=${sbatchValue("error", opts.error)}`);
  if (opts.partition !== undefined)
    lines.push(`#SBATCH --partition=${sbatchValue("partition", opts.partition)}`);
  if (opts.account !== undefined) lines.push(`#SBATCH --account=${sbatchValue("account", opts.account)}`);
  if (opts.time !== undefined) {
    if (!TIME_PATTERN.test(opts.time)) {
      throw new Error(`slurm: --time must look like 04:00:00, 1-12:00:00 or 90, got "${opts.time}"`);
    }
    lines.push(`#SBATCH --time=${opts.time}`);
  }
  lines.push("#SBATCH --nodes=1", "#SBATCH --ntasks=1");
  if (array !== undefined) lines.push(`#SBATCH --array=1-${array}`);
  return lines;
}

function resources(opts: SlurmOptions): string[] {
  const lines: string[] = [];
  if (opts.cpus !== undefined) {
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1) {
      throw new Error(`slurm: --cpus must be a positive integer, got ${opts.cpus}`);
    }
    lines.push(`#SBATCH --cpus-per-task=${opts.cpus}`);
  }
  if (opts.mem !== undefined) {
    if (!MEM_PATTERN.test(opts.mem))
      throw new Error(`slurm: --mem must look like 32G or 4000M, got "${opts.mem}"`);
    lines.push(`#SBATCH --mem=${opts.mem}`);
  }
  if (opts.gpus !== undefined) lines.push(`#SBATCH --gpus=${sbatchValue("gpus", opts.gpus)}`);
  for (const raw of opts.extra ?? []) {
    if (!raw.startsWith("--"))
      throw new Error(`slurm: --sbatch "${raw}" must be an sbatch option starting with --`);
    lines.push(`#SBATCH ${sbatchValue("sbatch", raw)}`);
  }
  return lines;
}

/** Modules, then the node binary checked before anything runs: a clear message instead of a trace. */
function environment(opts: SlurmOptions): string[] {
  const lines = ["", "set -euo pipefail", ""];
  if (opts.modules && opts.modules.length > 0) {
    lines.push(
      "# `module` is a shell function a batch shell may lack; the login profile defines it",
      "if ! type module >/dev/null 2>&1; then set +u; . /etc/profile; set -u; fi",
      ...opts.modules.map((m) => `module load ${shellQuote(m)}`),
      "",
    );
  }
  const root = opts.packageRoot ?? PACKAGE_ROOT;
  lines.push(
    `NODE=${shellQuote(opts.node ?? "node")}`,
    `GRPO=${shellQuote(join(root, "bin", "grpo.js"))}`,
    'if ! command -v "$NODE" >/dev/null 2>&1; then',
    '  echo "grpo: $NODE not found on $(hostname); give grpo slurm --module or --node" >&2',
    "  exit 1",
    "fi",
    `"$NODE" -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("grpo: needs Node >= 20; " + process.execPath + " is " + process.version); process.exit(1); }'`,
  );
  return lines;
}

function nativeLines(opts: SlurmOptions): string[] {
  const root = opts.packageRoot ?? PACKAGE_ROOT;
  if (opts.native === "off")
    return [
      "",
      "# the native BLAS addon stays off on the compute node: tfjs's own kernels",
      "export GRPO_BLAS=0",
    ];
  return [
    "",
    "# the native BLAS addon was compiled where npm ci ran; compile it for this node (without a",
    "# compiler or a BLAS it says so, and the run keeps tfjs's own kernels)",
    `"$NODE" ${shellQuote(join(root, "scripts", "build-native.mjs"))}`,
  ];
}

/** The submission of an array with its merge: the merge runs only once every task succeeded. */
export function submitCommand(arrayScript: string, mergeScript: string): string {
  return `jid=$(sbatch --parsable ${shellQuote(arrayScript)}) && sbatch --dependency=afterok:\${jid%%;*} ${shellQuote(mergeScript)}`;
}

/**
 * The batch script. `args` are the grpo arguments, e.g. ["train", "theory", "--max-steps", "2000"];
 * with `array`, each task adds `--shard $SLURM_ARRAY_TASK_ID/<array>`.
 */
export function buildSlurmScript(opts: SlurmOptions, args: readonly string[]): string {
  if (args.length === 0) throw new Error("slurm: no grpo command given after --");
  const shard = opts.array === undefined ? "" : ` --shard "$SLURM_ARRAY_TASK_ID/${opts.array}"`;
  return [
    ...header(opts, opts.jobName, opts.output, opts.array),
    ...resources(opts),
    ...environment(opts),
    ...nativeLines(opts),
    "",
    `exec "$NODE" "$GRPO" ${shellCommand(args)}${shard}`,
    "",
  ].join("\n");
}

/** The final step of an array: one small job that folds the shards of `workdir` together. */
export function buildMergeScript(opts: SlurmOptions & { array: number }, workdir: string): string {
  const output = join(dirname(opts.output), "slurm-%x-%j.out");
  const { cpus: _c, mem: _m, gpus: _g, ...small } = opts;
  return [
    ...header(small, `${opts.jobName}-merge`, output),
    ...resources({ ...small, cpus: 1 }),
    ...environment(small),
    "",
    `exec "$NODE" "$GRPO" ${shellCommand(["merge-shards", "--workdir", workdir, "--shards", String(opts.array)])}`,
    "",
  ].join("\n");
}

/** The wrapped command as grpo would parse it: the command itself and its option values. */
export interface WrappedCommand {
  /** e.g. ["train", "theory"] */
  path: string[];
  command: Command;
  opts: Record<string, unknown>;
  /** where each option's value came from ("default", "cli", "env") */
  source: (key: string) => string | undefined;
}

/**
 * Parses `args` against the real command tree without running anything, so that a typo fails
 * now rather than after the job waited in the queue.
 */
export function parseWrapped(program: Command, args: readonly string[]): WrappedCommand {
  if (args.length === 0) throw new Error("slurm: no grpo command given after --");
  let cmd = program;
  const path: string[] = [];
  for (const word of args) {
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    cmd = sub;
    path.push(word);
  }
  if (cmd === program) throw new Error(`slurm: "${args[0]}" is not a grpo command (grpo --help lists them)`);
  if (path[0] === "slurm" || path[0] === "help")
    throw new Error(`slurm: grpo ${path[0]} does not run on a node`);
  if (cmd.commands.length > 0) {
    throw new Error(
      `slurm: grpo ${path.join(" ")} needs one of its commands: ${cmd.commands.map((c) => c.name()).join(", ")}`,
    );
  }
  // A copy of the command with the same options and arguments, and no action.
  const probe = new Command(cmd.name()).exitOverride().configureOutput({
    writeOut: () => {},
    writeErr: () => {},
  });
  for (const o of cmd.options) probe.addOption(o);
  for (const a of cmd.registeredArguments) probe.addArgument(a);
  probe.action(() => {});
  try {
    probe.parse(args.slice(path.length), { from: "user" });
  } catch (err) {
    const why = err instanceof CommanderError ? err.message.replace(/^error: /, "") : (err as Error).message;
    throw new Error(`slurm: grpo ${path.join(" ")} would fail: ${why}`);
  }
  return { path, command: cmd, opts: probe.opts(), source: (k) => probe.getOptionValueSource(k) };
}

/**
 * The directory a command writes its results to, where its SLURM output belongs too: a
 * parametric recipe's --output-dir, a training-free command's grpo_training/ under --workdir.
 */
export function runDirectory(w: WrappedCommand, chdir: string): string {
  const given = (key: string) => {
    const v = w.opts[key];
    return typeof v === "string" && w.source(key) !== "default" ? v : undefined;
  };
  if (typeof w.opts.outputDir === "string") return resolve(chdir, w.opts.outputDir);
  if (w.path.join(" ") === "train email") {
    return resolve(
      chdir,
      process.env.OUTPUT_DIR ?? emailDefaults((w.opts.mode as EmailMode) ?? "masked").outputDir,
    );
  }
  if (w.command.options.some((o) => o.long === "--workdir"))
    return join(resolve(chdir, given("workdir") ?? "."), "grpo_training");
  return chdir;
}

interface CliOptions {
  jobName: string;
  time?: string;
  cpus?: number;
  mem?: string;
  partition?: string;
  account?: string;
  gpus?: string;
  output?: string;
  error?: string;
  chdir?: string;
  module?: string[];
  node: string;
  native: NativeMode;
  array?: number;
  script?: string;
  sbatch?: string[];
}

const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

export function register(program: Command): void {
  const cmd = program
    .command("slurm")
    .description(
      "Write a SLURM batch script that runs a grpo command on a cluster node. The command after -- is " +
        "checked now, the job runs in --chdir, its output goes beside the run's results, and the native " +
        "BLAS addon is rebuilt for the compute node (or turned off). With --array N a training-free " +
        "command (generator, generators) runs as N array tasks, task i on shard i/N of the problems, " +
        "and a second script merges the shards once all tasks succeeded.",
    )
    .argument("<args...>", "the grpo command to run, after --")
    .requiredOption("--job-name <name>", "job name")
    .option("--chdir <dir>", "directory the job runs in (default: the current directory)")
    .option("--module <name>", "`module load` this first, repeatable, e.g. --module nodejs/20", collect)
    .option("--node <path>", "the node binary on the compute node", "node")
    .addOption(
      new Option("--native <mode>", "the native BLAS addon on the compute node: rebuild it there, or off")
        .choices(["rebuild", "off"])
        .default("rebuild"),
    )
    .option(
      "--array <n>",
      "run a training-free command as n array tasks, one shard each",
      intFlag("--array", 1),
    )
    .option("--time <limit>", "wall-clock limit, e.g. 04:00:00 or 1-00:00:00")
    .option("--cpus <n>", "CPUs per task", intFlag("--cpus", 1))
    .option("--mem <size>", "memory per node, e.g. 32G")
    .option("--partition <name>", "partition (queue)")
    .option("--account <name>", "account to charge")
    .option("--gpus <spec>", "GPUs, e.g. 1 or a100:1")
    .option("--output <pattern>", "stdout file pattern (default: slurm-%x-%j.out in the run's directory)")
    .option("--error <pattern>", "stderr file pattern (default: with stdout)")
    .option("--script <file>", "where to write the script (default: <job-name>.sbatch)")
    .option(
      "--sbatch <option>",
      "extra raw sbatch option, repeatable, e.g. --sbatch=--constraint=avx2",
      collect,
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo slurm --job-name theory --time 04:00:00 --cpus 16 --mem 32G --module nodejs/20 \\\n" +
        "    -- train theory --preset learning --output-dir outputs/grpo_theory_cluster\n" +
        "  sbatch theory.sbatch\n" +
        "  grpo slurm --job-name toy --array 4 --time 01:00:00 \\\n" +
        "    -- generators --all --dataset toy-math --dataset-config examples/dataset_config.json\n" +
        `  ${submitCommand("toy.sbatch", "toy-merge.sbatch")}`,
    )
    .action((args: string[], o: CliOptions) => {
      const chdir = resolve(o.chdir ?? process.cwd());
      const wrapped = parseWrapped(program, args);
      if (o.array !== undefined) {
        if (!wrapped.command.options.some((opt) => opt.long === "--shard")) {
          throw new Error(
            `slurm: --array needs a command that takes --shard (grpo generator, grpo generators); grpo ${wrapped.path.join(" ")} does not`,
          );
        }
        if (wrapped.opts.shard !== undefined)
          throw new Error("slurm: with --array each task picks its own --shard; leave it out of the command");
      }
      const runDir = runDirectory(wrapped, chdir);
      const output = resolve(
        chdir,
        o.output ?? join(runDir, o.array ? "slurm-%x-%A_%a.out" : "slurm-%x-%j.out"),
      );
      // SLURM does not create the output's directory: a job whose directory is missing fails unseen.
      assertWritableDir(dirname(output), "--output");
      const opts: SlurmOptions = {
        jobName: o.jobName,
        time: o.time,
        cpus: o.cpus,
        mem: o.mem,
        partition: o.partition,
        account: o.account,
        gpus: o.gpus,
        output,
        error: o.error === undefined ? undefined : resolve(chdir, o.error),
        chdir,
        modules: o.module,
        node: o.node,
        native: o.native,
        extra: o.sbatch,
        array: o.array,
      };
      const path = resolve(o.script ?? `${o.jobName}.sbatch`);
      const written = [path];
      writeFileAtomic(path, buildSlurmScript(opts, args));
      if (o.array !== undefined) {
        const workdir = dirname(runDir);
        const merge = path.replace(/(\.sbatch)?$/, "-merge.sbatch");
        writeFileAtomic(merge, buildMergeScript({ ...opts, array: o.array }, workdir));
        written.push(merge);
      }
      for (const p of written) {
        chmodSync(p, 0o755);
        console.log(p);
      }
      console.log(
        `submit: ${written.length > 1 ? submitCommand(written[0]!, written[1]!) : `sbatch ${shellQuote(path)}`}`,
      );
    });
  // the option's name before it took SLURM's
  addFlagAliases(cmd, { "--workdir": "chdir" });
}
