import { chmodSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { writeFileAtomic } from "../../io/files.ts";

/** `grpo slurm`: write a SLURM batch script that runs one grpo command on a cluster node. */

export interface SlurmOptions {
  jobName: string;
  time?: string;
  cpus?: number;
  mem?: string;
  partition?: string;
  account?: string;
  gpus?: string;
  output?: string;
  error?: string;
  /** Directory the job `cd`s into before running grpo. */
  workdir: string;
  /** Extra raw sbatch options, e.g. "--constraint=avx2". */
  extra?: string[];
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word for bash: left bare when it is plainly safe, otherwise single-quoted. */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
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

/** The batch script text. `args` are the grpo arguments, e.g. ["train", "theory", "--group-size", "64"]. */
export function buildSlurmScript(opts: SlurmOptions, args: readonly string[]): string {
  if (args.length === 0) throw new Error("slurm: no grpo command given after --");
  const lines = ["#!/usr/bin/env bash", `#SBATCH --job-name=${sbatchValue("job-name", opts.jobName)}`];
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
  if (opts.output !== undefined) lines.push(`#SBATCH --output=${sbatchValue("output", opts.output)}`);
  if (opts.error !== undefined) lines.push(`#SBATCH --error=${sbatchValue("error", opts.error)}`);
  for (const raw of opts.extra ?? []) {
    if (!raw.startsWith("--"))
      throw new Error(`slurm: --sbatch "${raw}" must be an sbatch option starting with --`);
    lines.push(`#SBATCH ${sbatchValue("sbatch", raw)}`);
  }
  lines.push(
    "",
    "set -euo pipefail",
    "",
    `cd ${shellQuote(opts.workdir)}`,
    "",
    ["npx", "grpo", ...args].map(shellQuote).join(" "),
    "",
  );
  return lines.join("\n");
}

interface CliOptions {
  jobName: string;
  time?: string;
  cpus?: string;
  mem?: string;
  partition?: string;
  account?: string;
  gpus?: string;
  output?: string;
  error?: string;
  workdir?: string;
  script?: string;
  sbatch?: string[];
}

export function register(program: Command): void {
  program
    .command("slurm")
    .description("write a SLURM batch script that runs a grpo command on a cluster")
    .argument("<args...>", "the grpo command to run, after --")
    .requiredOption("--job-name <name>", "job name")
    .option("--time <limit>", "wall-clock limit, e.g. 04:00:00 or 1-00:00:00")
    .option("--cpus <n>", "CPUs per task")
    .option("--mem <size>", "memory per node, e.g. 32G")
    .option("--partition <name>", "partition (queue)")
    .option("--account <name>", "account to charge")
    .option("--gpus <spec>", "GPUs, e.g. 1 or a100:1")
    .option("--output <pattern>", "stdout file pattern, e.g. slurm-%j.out")
    .option("--error <pattern>", "stderr file pattern (default: with stdout)")
    .option("--workdir <dir>", "directory to cd into before running (default: current directory)")
    .option("--script <file>", "where to write the script (default: <job-name>.sbatch)")
    .option(
      "--sbatch <option>",
      "extra raw sbatch option, repeatable, e.g. --sbatch=--constraint=avx2",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo slurm --job-name theory --time 04:00:00 --cpus 16 --mem 32G --partition cpu \\\n" +
        "    --output slurm-%j.out --script run_theory.sbatch -- train theory --num-episodes 2000 --group-size 64\n" +
        "  sbatch run_theory.sbatch\n",
    )
    .action((args: string[], o: CliOptions) => {
      if (o.cpus !== undefined && !/^\d+$/.test(o.cpus)) {
        throw new Error(`slurm: --cpus must be a positive integer, got "${o.cpus}"`);
      }
      const cpus = o.cpus === undefined ? undefined : Number(o.cpus);
      const text = buildSlurmScript(
        {
          jobName: o.jobName,
          time: o.time,
          cpus,
          mem: o.mem,
          partition: o.partition,
          account: o.account,
          gpus: o.gpus,
          output: o.output,
          error: o.error,
          workdir: resolve(o.workdir ?? process.cwd()),
          extra: o.sbatch,
        },
        args,
      );
      const path = resolve(o.script ?? `${o.jobName}.sbatch`);
      writeFileAtomic(path, text);
      chmodSync(path, 0o755);
      console.log(path);
    });
}
