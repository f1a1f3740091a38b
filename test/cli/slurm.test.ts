import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { buildMergeScript, buildSlurmScript, parseWrapped } from "../../src/cli/commands/slurm.ts";
import { buildProgram } from "../../src/cli/program.ts";
import { shellQuote } from "../../src/cli/shell.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-slurm-");

/** What bash turns the quoted words back into. */
function bashWords(quoted: string): string[] {
  const out = execFileSync("bash", ["-c", `set -- ${quoted}; printf '%s\\0' "$@"`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

/** The whole program, throwing instead of exiting and quiet on stderr. */
function testProgram(): Command {
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: () => {} });
    for (const sub of c.commands) quiet(sub);
  };
  const program = buildProgram();
  quiet(program);
  return program;
}

/** Runs `grpo slurm …` in-process; returns what it printed. */
async function slurm(args: string[]): Promise<string[]> {
  const program = testProgram();
  const printed: string[] = [];
  const log = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    await program.parseAsync(["slurm", ...args], { from: "user" });
  } finally {
    console.log = log;
  }
  return printed;
}

describe("shellQuote", () => {
  it("leaves plain words bare and quotes the rest", () => {
    assert.equal(shellQuote("--group-size"), "--group-size");
    assert.equal(shellQuote("slurm-%j.out"), "slurm-%j.out");
    assert.equal(shellQuote("two words"), "'two words'");
    assert.equal(shellQuote("it's"), "'it'\\''s'");
    assert.equal(shellQuote(""), "''");
  });

  it("round-trips awkward arguments through bash", () => {
    const args = [
      "a b",
      "it's",
      'say "hi"',
      "$HOME",
      "`ls`",
      "*",
      "x;y",
      "back\\slash",
      "",
      "new\nline",
      "~",
    ];
    assert.deepEqual(bashWords(args.map(shellQuote).join(" ")), args);
  });
});

const BASE = {
  jobName: "theory",
  chdir: "/home/me/project",
  output: "/home/me/project/outputs/grpo_theory/slurm-%x-%j.out",
  packageRoot: "/opt/grpo-ts",
};

describe("buildSlurmScript", () => {
  it("writes the header, modules, the node check, the addon rebuild and the quoted command", () => {
    const text = buildSlurmScript(
      {
        ...BASE,
        time: "04:00:00",
        cpus: 16,
        mem: "32G",
        partition: "cpu",
        modules: ["nodejs/20", "openblas"],
      },
      ["train", "theory", "--max-steps", "2000", "--note", 'Bob\'s "first" run'],
    );
    assert.equal(
      text,
      [
        "#!/usr/bin/env bash",
        "#SBATCH --job-name=theory",
        "#SBATCH --chdir=/home/me/project",
        "#SBATCH --output=/home/me/project/outputs/grpo_theory/slurm-%x-%j.out",
        "#SBATCH --partition=cpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=32G",
        "",
        "set -euo pipefail",
        "",
        "# `module` is a shell function a batch shell may lack; the login profile defines it",
        "if ! type module >/dev/null 2>&1; then set +u; . /etc/profile; set -u; fi",
        "module load nodejs/20",
        "module load openblas",
        "",
        "NODE=node",
        "GRPO=/opt/grpo-ts/bin/grpo.js",
        'if ! command -v "$NODE" >/dev/null 2>&1; then',
        '  echo "grpo: $NODE not found on $(hostname); give grpo slurm --module or --node" >&2',
        "  exit 1",
        "fi",
        `"$NODE" -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("grpo: needs Node >= 20; " + process.execPath + " is " + process.version); process.exit(1); }'`,
        "",
        "# the native BLAS addon was compiled where npm ci ran; compile it for this node (without a",
        "# compiler or a BLAS it says so, and the run keeps tfjs's own kernels)",
        '"$NODE" /opt/grpo-ts/scripts/build-native.mjs',
        "",
        `exec "$NODE" "$GRPO" train theory --max-steps 2000 --note 'Bob'\\''s "first" run'`,
        "",
      ].join("\n"),
    );
    assert.doesNotMatch(text, /^cd /m, "the directory is SLURM's --chdir, not a cd");
  });

  it("adds optional directives only when given; --native off sets GRPO_BLAS=0 instead of rebuilding", () => {
    const text = buildSlurmScript(
      {
        ...BASE,
        account: "proj1",
        gpus: "a100:1",
        error: "/e-%j.err",
        extra: ["--exclusive"],
        native: "off",
      },
      ["demo"],
    );
    assert.match(text, /^#SBATCH --account=proj1$/m);
    assert.match(text, /^#SBATCH --gpus=a100:1$/m);
    assert.match(text, /^#SBATCH --error=\/e-%j.err$/m);
    assert.match(text, /^#SBATCH --exclusive$/m);
    assert.match(text, /^export GRPO_BLAS=0$/m);
    assert.doesNotMatch(text, /build-native|module load|--time|--mem|--partition|--cpus-per-task|--array/);
  });

  it("rejects values that would break the script", () => {
    assert.throws(() => buildSlurmScript(BASE, []), /no grpo command/);
    assert.throws(() => buildSlurmScript({ ...BASE, jobName: "a b" }, ["x"]), /--job-name/);
    assert.throws(() => buildSlurmScript({ ...BASE, chdir: "/my runs" }, ["x"]), /--chdir/);
    assert.throws(() => buildSlurmScript({ ...BASE, partition: "cpu\n#SBATCH --x" }, ["x"]), /--partition/);
    assert.throws(() => buildSlurmScript({ ...BASE, time: "4 hours" }, ["x"]), /--time/);
    assert.throws(() => buildSlurmScript({ ...BASE, mem: "lots" }, ["x"]), /--mem/);
    assert.throws(() => buildSlurmScript({ ...BASE, cpus: 0 }, ["x"]), /--cpus/);
    assert.throws(() => buildSlurmScript({ ...BASE, extra: ["exclusive"] }, ["x"]), /starting with --/);
    for (const time of ["04:00:00", "1-12:00:00", "90", "30:00"]) {
      assert.match(buildSlurmScript({ ...BASE, time }, ["x"]), new RegExp(`--time=${time}`));
    }
  });

  it("an array task takes its shard; the merge script folds the shards of the working directory", () => {
    const text = buildSlurmScript({ ...BASE, array: 4 }, ["generators", "--all"]);
    assert.match(text, /^#SBATCH --array=1-4$/m);
    assert.match(text, /^exec "\$NODE" "\$GRPO" generators --all --shard "\$SLURM_ARRAY_TASK_ID\/4"$/m);
    const merge = buildMergeScript({ ...BASE, array: 4, cpus: 8, mem: "32G" }, "/home/me/project");
    assert.match(merge, /^#SBATCH --job-name=theory-merge$/m);
    assert.match(merge, /^#SBATCH --cpus-per-task=1$/m);
    assert.doesNotMatch(merge, /--array|--mem|build-native/);
    assert.match(merge, /^exec "\$NODE" "\$GRPO" merge-shards --workdir \/home\/me\/project --shards 4$/m);
  });
});

describe("the wrapped command is checked against grpo's own parser", () => {
  const program = buildProgram();
  it("accepts a command that parses and reads its option values", () => {
    const w = parseWrapped(program, ["train", "theory", "--max-steps", "20", "--output-dir", "out/a"]);
    assert.deepEqual(w.path, ["train", "theory"]);
    assert.equal(w.opts.maxSteps, 20);
    assert.equal(w.opts.outputDir, "out/a");
  });

  it("refuses what grpo would refuse on the node", () => {
    assert.throws(() => parseWrapped(program, ["trian", "theory"]), /"trian" is not a grpo command/);
    assert.throws(
      () => parseWrapped(program, ["train"]),
      /grpo train needs one of its commands: theory, email/,
    );
    assert.throws(
      () => parseWrapped(program, ["train", "theory", "--max-stpes", "3"]),
      /grpo train theory would fail: unknown option '--max-stpes'/,
    );
    assert.throws(
      () => parseWrapped(program, ["train", "theory", "--max-steps", "0"]),
      /would fail: .*--max-steps must be an integer ≥ 1/,
    );
    assert.throws(
      () => parseWrapped(program, ["generator", "--dataset", "toy-math"]),
      /required option '--id/,
    );
    assert.throws(
      () => parseWrapped(program, ["slurm", "--job-name", "x", "--", "demo"]),
      /does not run on a node/,
    );
  });
});

describe("grpo slurm command", () => {
  it("writes an executable script under --script, its output beside the run's results", async () => {
    const dir = tmp();
    const script = join(dir, "run_theory.sbatch");
    const printed = await slurm([
      "--job-name",
      "theory",
      "--time",
      "04:00:00",
      "--cpus",
      "16",
      "--chdir",
      dir,
      "--module",
      "nodejs/20",
      "--module",
      "gcc/12",
      "--script",
      script,
      "--sbatch=--exclusive",
      "--sbatch",
      "--constraint=avx2",
      "--",
      "train",
      "theory",
      "--max-steps",
      "2000",
      "--output-dir",
      "outputs/cluster",
    ]);
    assert.deepEqual(printed, [script, `submit: sbatch ${script}`]);
    const text = readFileSync(script, "utf8");
    assert.ok(text.includes(`#SBATCH --chdir=${dir}\n`));
    assert.ok(text.includes(`#SBATCH --output=${dir}/outputs/cluster/slurm-%x-%j.out\n`));
    assert.ok(statSync(join(dir, "outputs", "cluster")).isDirectory(), "SLURM needs the output's directory");
    assert.match(text, /^module load nodejs\/20\nmodule load gcc\/12$/m);
    assert.match(text, /^#SBATCH --exclusive\n#SBATCH --constraint=avx2$/m);
    assert.ok(text.includes("train theory --max-steps 2000 --output-dir outputs/cluster\n"));
    assert.equal(statSync(script).mode & 0o111, 0o111, "executable");
    execFileSync("bash", ["-n", script]);
  });

  it("puts a training-free array's output under grpo_training/ and writes the merge script", async () => {
    const dir = tmp();
    const script = join(dir, "toy.sbatch");
    const printed = await slurm([
      "--job-name",
      "toy",
      "--array",
      "4",
      "--chdir",
      dir,
      "--script",
      script,
      "--",
      "generators",
      "--all",
      "--dataset",
      "toy-math",
    ]);
    const merge = join(dir, "toy-merge.sbatch");
    assert.deepEqual(printed.slice(0, 2), [script, merge]);
    assert.equal(
      printed[2],
      `submit: jid=$(sbatch --parsable ${script}) && sbatch --dependency=afterok:\${jid%%;*} ${merge}`,
    );
    const text = readFileSync(script, "utf8");
    assert.ok(text.includes(`#SBATCH --output=${dir}/grpo_training/slurm-%x-%A_%a.out\n`));
    assert.match(text, /^#SBATCH --array=1-4$/m);
    assert.match(readFileSync(merge, "utf8"), new RegExp(`merge-shards --workdir ${dir} --shards 4$`, "m"));
    for (const f of [script, merge]) execFileSync("bash", ["-n", f]);
  });

  it("refuses --array for a command without shards, and a --shard of the user's own", async () => {
    const dir = tmp();
    await assert.rejects(
      slurm(["--job-name", "e", "--array", "2", "--chdir", dir, "--", "tf-eval", "--datasets", "toy-math"]),
      /--array needs a command that takes --shard .*grpo tf-eval does not/,
    );
    await assert.rejects(
      slurm([
        "--job-name",
        "g",
        "--array",
        "2",
        "--chdir",
        dir,
        "--",
        "generator",
        "--id",
        "1",
        "--dataset",
        "x",
        "--shard",
        "1/2",
      ]),
      /each task picks its own --shard/,
    );
    await assert.rejects(
      slurm(["--job-name", "j", "--cpus", "many", "--", "demo"]),
      /--cpus must be an integer ≥ 1/,
    );
  });

  it("the script runs: modules loaded, the node found, the command's own output", async () => {
    const dir = tmp();
    const script = join(dir, "demo.sbatch");
    await slurm([
      "--job-name",
      "demo",
      "--chdir",
      dir,
      "--module",
      "nodejs/20",
      "--node",
      process.execPath,
      "--native",
      "off",
      "--script",
      script,
      "--",
      "demo",
      "--max-steps",
      "3",
    ]);
    // outside SLURM, bash runs it as the node would (the #SBATCH lines are comments); a stub
    // `module` stands in for the cluster's
    const r = spawnSync("bash", [script], {
      cwd: dir,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, "BASH_FUNC_module%%": '() { echo "loaded: $*"; }' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loaded: load nodejs\/20$/m);
    assert.match(r.stdout, /^done: 3 GRPO steps/m);
    const missing = join(dir, "missing-node.sbatch");
    await slurm([
      "--job-name",
      "m",
      "--chdir",
      dir,
      "--node",
      "/nonexistent/node",
      "--script",
      missing,
      "--",
      "demo",
    ]);
    const m = spawnSync("bash", [missing], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    assert.equal(m.status, 1);
    assert.match(m.stderr, /grpo: \/nonexistent\/node not found on .*; give grpo slurm --module or --node/);
  });

  it("an array task passes its own shard to grpo", async () => {
    const dir = tmp();
    // a stand-in node that passes the version check and prints what grpo would get
    const stub = join(dir, "node");
    writeFileSync(stub, '#!/bin/sh\nif [ "$1" = -e ]; then exit 0; fi\nshift\necho "$@"\n');
    chmodSync(stub, 0o755);
    const script = join(dir, "a.sbatch");
    await slurm([
      "--job-name",
      "a",
      "--array",
      "4",
      "--chdir",
      dir,
      "--node",
      stub,
      "--native",
      "off",
      "--script",
      script,
      "--",
      "generator",
      "--id",
      "2",
      "--dataset",
      "toy-math",
    ]);
    const r = spawnSync("bash", [script], {
      encoding: "utf8",
      env: { ...process.env, SLURM_ARRAY_TASK_ID: "3" },
    });
    assert.equal(r.stdout.trim(), "generator --id 2 --dataset toy-math --shard 3/4");
    assert.ok(existsSync(join(dir, "a-merge.sbatch")));
  });
});
