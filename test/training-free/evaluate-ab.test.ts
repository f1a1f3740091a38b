import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openAICompatible } from "../../src/llm/openai-compatible.ts";
import { ExperienceLibrary } from "../../src/training-free/experience-library.ts";
import { seedOf, TrainingFreeGRPO } from "../../src/training-free/trainer.ts";
import { startScriptedServer } from "../helpers/scripted-server.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { agentReply, checkSum, LEARNER_MODEL, type SumTask, sumAgent, sumTasks } from "./scripted-world.ts";

const tmp = tempDirs("tf-eval-");

describe("TrainingFreeGRPO.evaluate", async () => {
  const LESSON = "Carry: add the units digits first, then the tens.";
  // Right whenever the lesson is in the prompt; without it, only at seeds divisible by 4.
  const server = await startScriptedServer(({ body }) => ({
    ...agentReply(body, (_q, seed, system) => system.includes(LESSON) || seed % 4 === 0),
    usage: { prompt_tokens: 10, completion_tokens: 2 },
  }));
  after(() => server.close());
  const tasks = sumTasks(5);
  const k = 6;
  const seed = 42;
  const make = (content = LESSON) =>
    new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(server.baseURL),
      reward: checkSum,
      learner: openAICompatible({ baseURL: server.baseURL, apiKey: "t", model: LEARNER_MODEL }),
      library: ExperienceLibrary.inMemory({ agent: "adder" }, [{ id: "L-001", content }]),
      rolloutPricing: { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 },
    });

  // What the arm without the lesson must score, from the seeds alone.
  const correctWithout = tasks.map(
    (t) =>
      Array.from({ length: k }, (_, j) => seedOf(seed, "eval", t.id, j)).filter((s) => s % 4 === 0).length,
  );
  const meanWithout = correctWithout.reduce((a, c) => a + c / k, 0) / tasks.length;
  const passWithout = correctWithout.filter((c) => c > 0).length / tasks.length;

  test("with and without the library on the same tasks and seeds: the exact A/B, its cost and its file", async () => {
    const runDir = join(tmp(), "eval");
    const r = await make().evaluate(tasks, { k, seed, runDir, concurrency: 8 });
    assert.equal(r.complete, true);
    assert.equal(r.with!.meanAtK, 1);
    assert.equal(r.with!.passAtK, 1);
    assert.equal(r.without!.meanAtK, meanWithout);
    assert.equal(r.without!.passAtK, passWithout);
    assert.ok(meanWithout > 0 && meanWithout < 1, `the seeds make a mixed arm (${meanWithout})`);
    assert.equal(r.delta!.meanAtK, 1 - meanWithout);
    assert.deepEqual(
      r.without!.perTask.map((t) => t.correct),
      correctWithout,
    );
    // Both arms asked with the same seeds.
    const seedsOf = (withLesson: boolean) =>
      server.requests
        .filter((q) => String(q.body.messages[0].content).includes(LESSON) === withLesson)
        .map((q) => `${q.body.messages[1].content}#${q.body.seed}`)
        .sort();
    assert.deepEqual(seedsOf(true), seedsOf(false));
    assert.equal(server.requests.length, 2 * tasks.length * k);
    assert.deepEqual(r.cost, {
      calls: 2 * tasks.length * k,
      promptTokens: 10 * 2 * tasks.length * k,
      completionTokens: 2 * 2 * tasks.length * k,
      costUSD: (10 * 1 + 2 * 2) * 2 * tasks.length * k,
      priced: true,
    });
    assert.equal(r.file, join(runDir, "evaluation.json"));
    assert.deepEqual(JSON.parse(readFileSync(r.file!, "utf8")).delta, r.delta);
  });

  test("a rerun makes no call; a changed library re-runs only the arm with it", async () => {
    const runDir = join(tmp(), "eval");
    await make().evaluate(tasks, { k, seed, runDir });
    const calls = server.requests.length;
    const again = await make().evaluate(tasks, { k, seed, runDir });
    assert.equal(server.requests.length, calls);
    assert.equal(again.without!.meanAtK, meanWithout);
    const changed = await make("Something else entirely.").evaluate(tasks, { k, seed, runDir });
    assert.equal(server.requests.length, calls + tasks.length * k);
    assert.equal(changed.with!.meanAtK, meanWithout);
    assert.equal(changed.delta!.meanAtK, 0);
  });

  test("one arm only", async () => {
    const r = await make().evaluate(tasks, { k: 2, seed, withExperiences: "without" });
    assert.equal(r.with, undefined);
    assert.equal(r.delta, undefined);
    assert.equal(r.without!.attempts, tasks.length * 2);
  });
});
