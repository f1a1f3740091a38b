import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Command } from "commander";
import { register as registerCritic } from "../../src/cli/commands/critic.ts";
import { register as registerGenerator } from "../../src/cli/commands/generator.ts";
import { register as registerGenerators } from "../../src/cli/commands/generators.ts";
import { register as registerEval } from "../../src/cli/commands/tf-eval.ts";
import { register as registerTrain } from "../../src/cli/commands/tf-train.ts";
import { TransportThreads } from "../../src/llm/index.ts";
import {
  cacheDir,
  criticResultsPath,
  generatorCachePath,
  runSummaryPath,
} from "../../src/recipes/causal-scaffold/paths.ts";
import { readCriticResults, readRolloutCache } from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { learningCost } from "../../src/recipes/causal-scaffold/usage-log.ts";
import { startScriptedServer } from "../helpers/scripted-server.ts";
import {
  EXAMPLE_DATASET_CONFIG,
  exampleProblems,
  JUDGE_REPLY,
  makeWorkdir,
  problemIn,
  scaffoldReply,
  taskOf,
} from "../recipes/causal-scaffold/harness.ts";

const REGISTER = {
  generator: registerGenerator,
  generators: registerGenerators,
  critic: registerCritic,
  "tf-train": registerTrain,
  "tf-eval": registerEval,
};

function program(): Command {
  const p = new Command("grpo").exitOverride();
  for (const r of Object.values(REGISTER)) r(p);
  return p;
}

/**
 * A scripted solver endpoint that answers every problem correctly (fusion judged `fusionScore`),
 * a work directory pointing at it, the flags that select both, and console.log captured into
 * `lines`; `close` undoes all of it.
 */
async function cliSession(problems: ReturnType<typeof exampleProblems>, fusionScore: number) {
  const server = await startScriptedServer(({ messages }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    if (task === "scaffold" || task === "fusion")
      return { content: scaffoldReply(problemIn(prompt, problems), true) };
    if (task === "judge") return { content: JUDGE_REPLY };
    if (task === "fusion_judge") return { content: JSON.stringify({ score: fusionScore }) };
    return { content: "[]" };
  });
  const wd = makeWorkdir(server.baseURL);
  const common = ["--workdir", wd.dir, "--config", wd.configPath, "--dataset-config", EXAMPLE_DATASET_CONFIG];
  const log = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  const close = async () => {
    console.log = log;
    await server.close();
    wd.cleanup();
  };
  return { wd, common, lines, close };
}

describe("commands", () => {
  test("every command's --help shows an example", () => {
    for (const name of Object.keys(REGISTER)) {
      let out = "";
      const p = program();
      const cmd = p.commands.find((c) => c.name() === name)!;
      cmd.configureOutput({ writeOut: (s) => (out += s) });
      cmd.outputHelp();
      assert.match(out, new RegExp(`Example:\\n  grpo ${name} `), name);
    }
  });

  test("--transport-threads: the requests go from worker threads and the caches are the same", async () => {
    const problems = exampleProblems(["toy-math"]).slice(0, 2);
    const caches: unknown[] = [];
    const send = TransportThreads.prototype.send;
    let sentFromThreads = 0;
    TransportThreads.prototype.send = function (this: TransportThreads, ...args) {
      sentFromThreads++;
      return send.apply(this, args);
    };
    after(() => {
      TransportThreads.prototype.send = send;
    });
    for (const threads of ["0", "1"]) {
      if (threads === "1") assert.equal(sentFromThreads, 0);
      const { wd, common, close } = await cliSession(problems, 0.5);
      try {
        await program().parseAsync(
          ["generators", "--all", "--dataset", "toy-math", "--max-problems", "2", "--rollouts", "2"].concat(
            ["--transport-threads", threads],
            common,
          ),
          { from: "user" },
        );
        const recs = [1, 2, 3].flatMap((id) => [
          ...readRolloutCache(generatorCachePath(cacheDir(wd.dir), id as 1 | 2 | 3)).problems.values(),
        ]);
        caches.push(
          recs.map(({ timestamp: _, ...r }) => r).sort((a, b) => a.problem_id.localeCompare(b.problem_id)),
        );
      } finally {
        await close();
      }
    }
    assert.equal((caches[0] as unknown[]).length, 6);
    // 2 problems × 3 generators × 2 rollouts, each a scaffold and a judge request
    assert.equal(sentFromThreads, 24);
    assert.deepEqual(caches[1], caches[0]);
    await assert.rejects(
      program().parseAsync(["generators", "--all", "--dataset", "x", "--transport-threads", "-1"], {
        from: "user",
      }),
      /--transport-threads must be an integer ≥ 0, got "-1"/,
    );
  });

  test("generators --all then critic through the command line", async () => {
    // the run starts at problem 1: the scripted endpoint knows problems 0 to 2
    const problems = exampleProblems(["toy-math"]).slice(0, 3);
    const { wd, common, lines, close } = await cliSession(problems, 0.5);
    try {
      await program().parseAsync(
        [
          "generators",
          "--all",
          "--dataset",
          "toy-math",
          "--max-problems",
          "2",
          "--start-problem",
          "1",
          "--rollouts",
          "2",
          ...common,
        ],
        { from: "user" },
      );
      for (const id of [1, 2, 3] as const) {
        const { problems: recs } = readRolloutCache(generatorCachePath(cacheDir(wd.dir), id));
        // --start-problem 1 skips the first problem of the data set
        assert.deepEqual(
          [...recs.keys()].sort(),
          exampleProblems(["toy-math"])
            .slice(1, 3)
            .map((p) => p.id)
            .sort(),
        );
      }
      await program().parseAsync(["critic", "--max-problems", "1", ...common], { from: "user" });
      const results = readCriticResults(criticResultsPath(cacheDir(wd.dir)));
      assert.deepEqual(results.map((r) => r.generator_id).sort(), [
        "generator_1",
        "generator_2",
        "generator_3",
      ]);
      assert.ok(
        lines.some(
          (l) =>
            l.startsWith("critic: 1 completed, 0 failed, 0 skipped (1 requested, 0 already complete)") &&
            l.includes("3 fusions (0 failed, 0 waiting for a generator)"),
        ),
        lines.join("\n"),
      );
      assert.ok(
        lines.some((l) => l.startsWith("generator_2: 2 completed, 0 failed, 0 skipped (2 requested")),
      );
      await assert.rejects(
        program().parseAsync(["generators", "--dataset", "toy-math", ...common], { from: "user" }),
        /pass --all or --ids/,
      );
    } finally {
      await close();
    }
  });

  test("tf-train then tf-eval through the command line: files, A/B figures and learning cost", async () => {
    const problems = exampleProblems(["toy-math"]).slice(0, 2);
    const { wd, common, lines, close } = await cliSession(problems, 1);
    try {
      await program().parseAsync(
        [
          "tf-train",
          "--epochs",
          "1",
          "--rollouts-per-generator",
          "2",
          "--datasets",
          "toy-math",
          "--max-problems",
          "2",
          "--quiet",
          ...common,
        ],
        { from: "user" },
      );
      const report = JSON.parse(readFileSync(join(wd.dir, "grpo_training", "tf_train_report.json"), "utf8"));
      assert.equal(report.epochs.length, 1);
      // each agent's line, even with --quiet
      for (const agent of ["generator_1", "generator_2", "generator_3", "critic"])
        assert.ok(
          lines.some((l) =>
            l.startsWith(
              `epoch 1: ${agent}: 2 completed, 0 failed, 0 skipped (2 requested, 0 already complete); failures by cause: none;`,
            ),
          ),
          lines.join("\n"),
        );
      assert.deepEqual(
        report.epochs[0].generators.map((g: { completed: number }) => g.completed),
        [2, 2, 2],
      );
      assert.equal(report.epochs[0].critic.fused, 6);
      assert.equal(report.complete, true);
      // 3 generators × 2 problems × 2 rollouts × (scaffold + judge) + critic 6 × (fusion + judge + fusion judge)
      const trainCalls = 3 * 2 * 2 * 2 + 6 * 3;
      assert.equal(learningCost(wd.dir).total.calls, trainCalls);

      await program().parseAsync(
        [
          "tf-eval",
          "--datasets",
          "toy-math",
          "--max-problems",
          "2",
          "--k",
          "2",
          "--generators",
          "1,3",
          ...common,
        ],
        { from: "user" },
      );
      const result = JSON.parse(readFileSync(join(wd.dir, "grpo_training", "tf_eval_results.json"), "utf8"));
      assert.deepEqual(
        result.problems,
        problems.map((p) => p.id),
      );
      assert.deepEqual(Object.keys(result.with_experiences.perGenerator), ["generator_1", "generator_3"]);
      assert.equal(result.with_experiences.overall.meanAtK, 1);
      assert.equal(result.without_experiences.overall.passAtK, 1);
      assert.equal(result.learning_cost.total.calls, trainCalls, "evaluation is not learning cost");
      // 2 generators × 2 arms × 2 problems × 2 rollouts × (scaffold + judge)
      const evalCalls = 2 * 2 * 2 * 2 * 2;
      assert.equal(result.eval_cost.total.calls, evalCalls);
      const summary = JSON.parse(readFileSync(runSummaryPath(wd.dir), "utf8"));
      assert.deepEqual(
        summary.runs.map((r: { command: string }) => r.command),
        ["tf-train", "tf-eval"],
      );
      assert.equal(summary.usage.total.calls, trainCalls + evalCalls);
      assert.ok(summary.usage.perAgent.critic.promptTokens > 0);
      assert.ok(lines.some((l) => /with experiences: Mean@2=1\.000 Pass@2=1\.000/.test(l)));
    } finally {
      await close();
    }
  });
});
