import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Command } from "commander";
import { buildSlurmScript, register, shellQuote } from "../../src/cli/commands/slurm.ts";

/** What bash turns the quoted words back into. */
function bashWords(quoted: string): string[] {
  const out = execFileSync("bash", ["-c", `set -- ${quoted}; printf '%s\\0' "$@"`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
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

describe("buildSlurmScript", () => {
  it("writes the #SBATCH header, strict mode, cd and the quoted grpo command", () => {
    const text = buildSlurmScript(
      {
        jobName: "theory",
        time: "04:00:00",
        cpus: 16,
        mem: "32G",
        partition: "cpu",
        output: "slurm-%j.out",
        workdir: "/home/me/my runs",
      },
      ["train", "theory", "--num-episodes", "2000", "--note", 'Bob\'s "first" run'],
    );
    assert.equal(
      text,
      [
        "#!/usr/bin/env bash",
        "#SBATCH --job-name=theory",
        "#SBATCH --partition=cpu",
        "#SBATCH --time=04:00:00",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --cpus-per-task=16",
        "#SBATCH --mem=32G",
        "#SBATCH --output=slurm-%j.out",
        "",
        "set -euo pipefail",
        "",
        "cd '/home/me/my runs'",
        "",
        `npx grpo train theory --num-episodes 2000 --note 'Bob'\\''s "first" run'`,
        "",
      ].join("\n"),
    );
  });

  it("adds optional directives only when given", () => {
    const text = buildSlurmScript(
      {
        jobName: "j",
        workdir: "/w",
        account: "proj1",
        gpus: "a100:1",
        error: "e-%j.err",
        extra: ["--exclusive"],
      },
      ["demo"],
    );
    assert.match(text, /^#SBATCH --account=proj1$/m);
    assert.match(text, /^#SBATCH --gpus=a100:1$/m);
    assert.match(text, /^#SBATCH --error=e-%j.err$/m);
    assert.match(text, /^#SBATCH --exclusive$/m);
    assert.doesNotMatch(text, /--time|--mem|--partition|--cpus-per-task/);
  });

  it("rejects values that would break the script", () => {
    const base = { jobName: "j", workdir: "/w" };
    assert.throws(() => buildSlurmScript(base, []), /no grpo command/);
    assert.throws(() => buildSlurmScript({ ...base, jobName: "a b" }, ["x"]), /--job-name/);
    assert.throws(() => buildSlurmScript({ ...base, partition: "cpu\n#SBATCH --x" }, ["x"]), /--partition/);
    assert.throws(() => buildSlurmScript({ ...base, time: "4 hours" }, ["x"]), /--time/);
    assert.throws(() => buildSlurmScript({ ...base, mem: "lots" }, ["x"]), /--mem/);
    assert.throws(() => buildSlurmScript({ ...base, cpus: 0 }, ["x"]), /--cpus/);
    assert.throws(() => buildSlurmScript({ ...base, extra: ["exclusive"] }, ["x"]), /starting with --/);
    for (const time of ["04:00:00", "1-12:00:00", "90", "30:00"]) {
      assert.match(buildSlurmScript({ ...base, time }, ["x"]), new RegExp(`--time=${time}`));
    }
  });
});

describe("grpo slurm command", () => {
  it("writes an executable script that passes bash -n and prints its path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grpo-slurm-"));
    try {
      const program = new Command("grpo").exitOverride();
      register(program);
      const printed: string[] = [];
      const log = console.log;
      console.log = (line: string) => printed.push(line);
      const script = join(dir, "run_theory.sbatch");
      try {
        await program.parseAsync(
          [
            "slurm",
            "--job-name",
            "theory",
            "--time",
            "04:00:00",
            "--cpus",
            "16",
            "--mem",
            "32G",
            "--partition",
            "cpu",
            "--output",
            "slurm-%j.out",
            "--workdir",
            dir,
            "--script",
            script,
            "--sbatch=--exclusive",
            "--sbatch",
            "--constraint=avx2",
            "--",
            "train",
            "theory",
            "--num-episodes",
            "2000",
            "--tag",
            "it's a test",
          ],
          { from: "user" },
        );
      } finally {
        console.log = log;
      }
      assert.deepEqual(printed, [script]);
      const text = readFileSync(script, "utf8");
      assert.match(text, /^#SBATCH --cpus-per-task=16$/m);
      assert.match(text, /^#SBATCH --exclusive\n#SBATCH --constraint=avx2$/m);
      assert.ok(text.includes(`cd ${shellQuote(dir)}\n`));
      assert.ok(text.includes("npx grpo train theory --num-episodes 2000 --tag 'it'\\''s a test'\n"));
      assert.equal(statSync(script).mode & 0o111, 0o111, "executable");
      execFileSync("bash", ["-n", script]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a non-numeric --cpus", async () => {
    const program = new Command("grpo").exitOverride();
    register(program);
    await assert.rejects(
      program.parseAsync(["slurm", "--job-name", "j", "--cpus", "many", "--", "demo"], { from: "user" }),
      /--cpus must be a positive integer/,
    );
  });
});
