import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { evaluate } from "../../../src/recipes/causal-scaffold/evaluate.ts";
import { libraryPath } from "../../../src/recipes/causal-scaffold/libraries.ts";
import { recordRunUsage } from "../../../src/recipes/causal-scaffold/usage-log.ts";
import { startScriptedServer } from "../../helpers/scripted-server.ts";
import {
  exampleProblems,
  JUDGE_REPLY,
  makeEngine,
  makeWorkdir,
  problemIn,
  scaffoldReply,
  taskOf,
} from "./harness.ts";

test("evaluation A/B: the library in the prompt is what changes the answers", async () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 3);
  const server = await startScriptedServer(({ messages }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    // the scripted model only gets it right when the learned lesson is in its prompt
    if (task === "scaffold")
      return { content: scaffoldReply(problemIn(prompt, problems), prompt.includes("[G2-001]")) };
    if (task === "judge") return { content: JUDGE_REPLY };
    return { content: "[]" };
  });
  const wd = makeWorkdir(server.baseURL);
  try {
    const { engine, experiences } = makeEngine(server.baseURL, wd.dir);
    const lib = experiences.library("generator_2");
    lib.apply([{ operation: "add", content: "Copy the given value to the target" }], { problemId: "train" });
    lib.save();
    const before = readFileSync(libraryPath(wd.dir, "generator_2"), "utf8");
    // a training run's usage as the llm layer reports it (fresh client stats, figures set by hand)
    const trained = {
      ...makeEngine(server.baseURL, wd.dir).clients.generator_2.stats(),
      calls: 7,
      costUSD: 0.5,
    };
    recordRunUsage(wd.dir, "generator_2", new Date(), [trained]);
    const r = await evaluate({
      engine,
      experiences,
      problems,
      k: 2,
      generators: [2],
      outDir: join(wd.dir, "eval"),
    });
    assert.deepEqual(r.with_experiences.overall, { k: 2, problems: 3, meanAtK: 1, passAtK: 1 });
    assert.deepEqual(r.without_experiences.overall, { k: 2, problems: 3, meanAtK: 0, passAtK: 0 });
    assert.deepEqual(r.delta, { meanAtK: 1, passAtK: 1 });
    assert.equal(r.learning_cost.total.calls, 7);
    assert.equal(r.learning_cost.total.costUSD, 0.5);
    assert.equal(
      readFileSync(libraryPath(wd.dir, "generator_2"), "utf8"),
      before,
      "evaluation learns nothing",
    );
  } finally {
    await server.close();
    wd.cleanup();
  }
});

test("evaluation A/B: a problem that failed in either arm is left out of both, and listed", async () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 3);
  const broken = problems[1]!;
  const server = await startScriptedServer(({ messages }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    if (task === "scaffold") {
      const p = problemIn(prompt, problems);
      // the arm without experiences cannot get a scaffold for one problem
      if (p.id === broken.id && !prompt.includes("[G1-001]")) return { status: 500, content: "down" };
      return { content: scaffoldReply(p, p.id !== problems[2]!.id) };
    }
    if (task === "judge") return { content: JUDGE_REPLY };
    return { content: "[]" };
  });
  const wd = makeWorkdir(server.baseURL);
  try {
    const { engine, experiences } = makeEngine(server.baseURL, wd.dir, { maxRetries: 0 });
    const lib = experiences.library("generator_1");
    lib.apply([{ operation: "add", content: "Copy the given value to the target" }], { problemId: "train" });
    lib.save();
    const r = await evaluate({
      engine,
      experiences,
      problems,
      k: 2,
      generators: [1],
      outDir: join(wd.dir, "eval"),
    });
    assert.deepEqual(r.failed_problems, [broken.id]);
    assert.deepEqual(r.problems, [problems[0]!.id, problems[2]!.id]);
    // problem 0 right, problem 2 wrong, in both arms: the failed problem counts in neither
    for (const arm of [r.with_experiences, r.without_experiences])
      assert.deepEqual(arm.overall, { k: 2, problems: 2, meanAtK: 0.5, passAtK: 0.5 });
  } finally {
    await server.close();
    wd.cleanup();
  }
});
