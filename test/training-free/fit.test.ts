import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { openAICompatible } from "../../src/llm/openai-compatible.ts";
import { ExperienceLibrary } from "../../src/training-free/experience-library.ts";
import { TrainingFreeGRPO } from "../../src/training-free/trainer.ts";
import type { TrainingFreeEvent } from "../../src/training-free/types.ts";
import { type RecordedRequest, type Responder, startScriptedServer } from "../helpers/scripted-server.ts";
import { tempDirs } from "../helpers/tmp.ts";
import {
  AGENT_MODEL,
  agentReply,
  checkSum,
  LEARNER_MODEL,
  learnerStep,
  type SumTask,
  sumAgent,
  sumTasks,
} from "./scripted-world.ts";

const tmp = tempDirs("tf-fit-");
const fixedNow = () => new Date("2026-03-04T05:06:07.000Z");
const servers: { close(): Promise<void>; baseURL: string }[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function world(learner: Responder, right: (q: string, seed: number, system: string) => boolean) {
  const server = await startScriptedServer((req) =>
    req.model === AGENT_MODEL ? agentReply(req.body, right) : learner(req),
  );
  servers.push(server);
  const learnerRequests = () => server.requests.filter((r) => r.body.model === LEARNER_MODEL);
  const agentRequests = () => server.requests.filter((r) => r.body.model === AGENT_MODEL);
  return { baseURL: server.baseURL, learnerRequests, agentRequests };
}

function learnerClient(baseURL: string) {
  return openAICompatible({ baseURL, apiKey: "test", model: LEARNER_MODEL, maxRetries: 0 });
}

const systemOf = (r: RecordedRequest) => String(r.body.messages[0].content);
const questionOf = (r: RecordedRequest) => String(r.body.messages[1].content);

describe("TrainingFreeGRPO.fit, semantic advantage (youtu-agent's form)", () => {
  test("lessons reach the next batch's prompts; DELETE removes one, UPDATE rewrites one; σ = 0 teaches nothing", async () => {
    const tasks = sumTasks(4);
    const always = tasks[3]!; // answered right at every seed: a group with σ = 0
    let merges = 0;
    const mergePlans = [
      [{ operation: "ADD", id: null, content: "Carry: add the units digits first, then the tens." }],
      [
        { operation: "DELETE", id: "L-001" },
        { operation: "ADD", id: null, content: "Recheck: add the numbers again in the other order." },
      ],
      [
        {
          operation: "UPDATE",
          id: "L-002",
          content: "Recheck: redo the sum in reverse order before answering.",
        },
      ],
    ];
    const { baseURL, learnerRequests, agentRequests } = await world(
      ({ messages }) => {
        const step = learnerStep(messages);
        if (step === "summarise") return { content: "It added the two numbers once." };
        if (step === "contrast")
          return { content: "The right ones checked.\n<lessons>\n1. Check: verify the sum.\n</lessons>" };
        if (step === "propose")
          return {
            content: JSON.stringify([{ operation: "ADD", id: null, content: "Check: verify the sum." }]),
          };
        if (step === "merge") return { content: JSON.stringify(mergePlans[merges++] ?? []) };
        throw new Error(step);
      },
      (q, seed) => q === always.question || seed % 2 === 0,
    );
    const events: TrainingFreeEvent[] = [];
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(baseURL),
      reward: checkSum,
      learner: learnerClient(baseURL),
      library: ExperienceLibrary.inMemory({ agent: "adder" }),
      now: fixedNow,
    });
    // One batch per epoch holding every task, no shuffling: batch b is epoch b.
    const result = await tf.fit(tasks, {
      epochs: 3,
      groupSize: 4,
      batchSize: 4,
      concurrency: 8,
      shuffle: false,
      seed: 7,
      onEvent: (e) => events.push(e),
    });
    assert.equal(result.status, "finished");
    assert.equal(result.complete, true);
    assert.equal(merges, 3);

    const promptsOfEpoch = (e: number) =>
      agentRequests()
        .slice((e - 1) * 16, e * 16)
        .map(systemOf);
    assert.equal(agentRequests().length, 3 * 4 * 4);
    for (const s of promptsOfEpoch(1)) assert.equal(s, "Answer with a number.\nLessons:\n");
    for (const s of promptsOfEpoch(2))
      assert.equal(
        s,
        "Answer with a number.\nLessons:\n[L-001] Carry: add the units digits first, then the tens.",
      );
    for (const s of promptsOfEpoch(3))
      assert.equal(
        s,
        "Answer with a number.\nLessons:\n[L-002] Recheck: add the numbers again in the other order.",
      );
    assert.deepEqual(
      tf.library.entries().map((e) => [e.id, e.content]),
      [["L-002", "Recheck: redo the sum in reverse order before answering."]],
    );
    const libs = events.filter((e) => e.type === "library");
    assert.deepEqual(
      libs.map((e) => [e.change.added, e.change.deleted, e.change.modified]),
      [
        [["L-001"], [], []],
        [["L-002"], ["L-001"], []],
        [[], [], ["L-002"]],
      ],
    );

    // The σ = 0 group: its group event says so and the learner never hears of it.
    const groups = events.filter((e) => e.type === "group");
    const silent = groups.filter((g) => g.task === always.id);
    assert.equal(silent.length, 3);
    for (const g of silent) {
      assert.equal(g.std, 0);
      assert.equal(g.learn, false);
    }
    for (const r of learnerRequests()) {
      const text = r.body.messages.map((m: { content: string }) => m.content).join("\n");
      assert.ok(!text.includes(always.question), "the silent task reached the learner");
    }
    // Learner calls: per mixed group 4 summaries + contrast + propose, then one merge per batch.
    assert.equal(learnerRequests().length, 3 * (3 * 6 + 1));
    assert.equal(result.groups.noSignal, 3);
    assert.equal(result.groups.learntFrom, 9);
    assert.ok(result.cost.learner.calls === learnerRequests().length);
    assert.ok(result.cost.rollouts.promptTokens > 0);
    assert.ok(questionOf(agentRequests()[0]!).startsWith("What is"));
  });

  test("a DELETE and an UPDATE of one lesson in the merged plan: the DELETE wins", async () => {
    const tasks = sumTasks(2);
    const { baseURL, learnerRequests } = await world(
      ({ messages }) => {
        const step = learnerStep(messages);
        if (step === "summarise") return { content: "summary" };
        if (step === "contrast") return { content: "<lessons>\n1. Units: keep units.\n</lessons>" };
        if (step === "propose")
          return {
            content: '[{"operation": "UPDATE", "id": "L-001", "content": "Units: always keep units."}]',
          };
        return {
          content: JSON.stringify([
            { operation: "UPDATE", id: "L-001", content: "Units: write units beside every number." },
            { operation: "DELETE", id: "L-001" },
          ]),
        };
      },
      (_q, seed) => seed % 3 !== 0,
    );
    const library = ExperienceLibrary.inMemory({ agent: "adder" }, [
      { id: "L-001", content: "Units: keep units." },
    ]);
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(baseURL),
      reward: checkSum,
      learner: learnerClient(baseURL),
      library,
      now: fixedNow,
    });
    const result = await tf.fit(tasks, { epochs: 1, groupSize: 6, batchSize: 2, seed: 3 });
    assert.equal(result.complete, true);
    assert.ok(learnerRequests().some((r) => learnerStep(r.body.messages) === "merge"));
    assert.deepEqual(library.entries(), []);
    assert.deepEqual(
      library.operationHistory().map((h) => [h.action, h.id]),
      [["deleted", "L-001"]],
    );
  });
});

describe("TrainingFreeGRPO.fit, extraction (the seed's form)", () => {
  test("σ > τ groups each get one extraction; their operations apply in task order; unknown ids warn", async () => {
    const tasks = sumTasks(3);
    const { baseURL, learnerRequests } = await world(
      ({ messages }) => {
        const step = learnerStep(messages);
        if (step === "summarise") return { content: "summary" };
        assert.equal(step, "extract");
        const q = messages[1]!.content;
        if (q.includes(tasks[0]!.question))
          return { content: '[{"operation": "add", "content": "First: read the question twice."}]' };
        return {
          content:
            '[{"operation": "modify", "id": "L-001", "content": "First: read the question twice, then add."}, {"operation": "delete", "id": "L-404"}]',
        };
      },
      (q, seed) => q !== tasks[2]!.question && seed % 2 === 0, // task 3 always wrong: σ = 0
    );
    const warnings: string[] = [];
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(baseURL),
      reward: checkSum,
      learner: learnerClient(baseURL),
      library: ExperienceLibrary.inMemory({ agent: "adder" }),
      learning: { form: "extraction" },
      now: fixedNow,
    });
    const result = await tf.fit(tasks, {
      epochs: 1,
      groupSize: 4,
      batchSize: 3,
      shuffle: false,
      seed: 11,
      onEvent: (e) => {
        if (e.type === "warning") warnings.push(e.message);
      },
    });
    assert.equal(result.complete, true);
    // Task 1 and 2 carry signal: 4 summaries and one extraction each; task 3 nothing.
    assert.equal(learnerRequests().length, 2 * 5);
    // Task 1's add comes first, so task 2's modify finds L-001.
    assert.deepEqual(
      tf.library.entries().map((e) => [e.id, e.content, e.source_problem]),
      [["L-001", "First: read the question twice, then add.", "t1"]],
    );
    assert.deepEqual(warnings, ["adder: delete of unknown experience id L-404 ignored"]);
  });
});

describe("TrainingFreeGRPO.fit, failures and run directories", () => {
  test("a failed reward is recorded with its cause, its group teaches nothing, and a rerun retries only it", async () => {
    const tasks = sumTasks(2);
    const { baseURL, learnerRequests, agentRequests } = await world(
      ({ messages }) => {
        const step = learnerStep(messages);
        if (step === "summarise") return { content: "summary" };
        if (step === "contrast") return { content: "<lessons>\n1. Check: check.\n</lessons>" };
        if (step === "propose")
          return { content: '[{"operation": "ADD", "content": "Check: check twice."}]' };
        return { content: '[{"operation": "ADD", "content": "Check: check twice."}]' };
      },
      (_q, seed) => seed % 2 === 0,
    );
    const runDir = join(tmp(), "run");
    let brokenJudge = true;
    const make = () =>
      new TrainingFreeGRPO<SumTask, string>({
        rollout: sumAgent(baseURL),
        reward: (task, attempt) => {
          if (brokenJudge && task.id === "t2" && attempt.output.length > 0)
            throw new Error("judge unavailable");
          return checkSum(task, attempt);
        },
        learner: learnerClient(baseURL),
        library: ExperienceLibrary.inMemory({ agent: "adder" }),
        now: fixedNow,
      });
    const first = await make().fit(tasks, {
      epochs: 1,
      groupSize: 4,
      batchSize: 2,
      seed: 5,
      runDir,
      shuffle: false,
    });
    assert.equal(first.complete, false);
    assert.equal(first.status, "incomplete");
    assert.equal(first.failures.count, 4);
    assert.deepEqual(first.failures.byStage, { rollout: 0, reward: 4, learner: 0 });
    assert.equal(first.failures.first?.error, "judge unavailable");
    assert.equal(first.groups.pending, 1);
    assert.equal(first.groups.learntFrom, 1);
    // t2 never reached the learner.
    for (const r of learnerRequests())
      assert.ok(!JSON.stringify(r.body.messages).includes(tasks[1]!.question));
    const agentCalls = agentRequests().length;
    const learnerCalls = learnerRequests().length;
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8"));
    assert.equal(summary.complete, false);

    brokenJudge = false;
    const second = await make().fit(tasks, {
      epochs: 1,
      groupSize: 4,
      batchSize: 2,
      seed: 5,
      runDir,
      shuffle: false,
    });
    assert.equal(second.complete, true, JSON.stringify(second.failures));
    assert.equal(agentRequests().length, agentCalls, "the rollouts whose reward failed are not asked again");
    assert.equal(second.attempts.madeNow, 0);
    // t2 now teaches: 4 summaries, contrast, propose and the catch-up merge.
    assert.equal(learnerRequests().length - learnerCalls, 7);
    assert.equal(second.groups.pending, 0);
    assert.equal(second.groups.learntFrom, 2);

    const third = await make().fit(tasks, {
      epochs: 1,
      groupSize: 4,
      batchSize: 2,
      seed: 5,
      runDir,
      shuffle: false,
    });
    assert.equal(third.status, "already-finished");
    assert.equal(third.complete, true);
    assert.equal(agentRequests().length, agentCalls);
    assert.equal(learnerRequests().length - learnerCalls, 7);
  });

  test("a rejected key stops the run at once and is not a result", async () => {
    const server = await startScriptedServer(() => ({ status: 401, content: "bad key" }));
    servers.push(server);
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(server.baseURL),
      reward: checkSum,
      learner: learnerClient(server.baseURL),
      library: ExperienceLibrary.inMemory(),
    });
    const runDir = join(tmp(), "run");
    const r = await tf.fit(sumTasks(6), { epochs: 2, groupSize: 5, batchSize: 3, concurrency: 1, runDir });
    assert.equal(r.status, "stopped");
    assert.equal(r.complete, false);
    assert.match(r.stopReason!, /fatal error/);
    assert.equal(r.failures.count, 1);
    assert.equal(r.failures.first?.fatal, true);
    assert.equal(r.failures.byCause["HTTP 401"], 1);
    assert.equal(server.requests.length, 1);
    assert.equal(r.batches.applied, 0);
    assert.ok(existsSync(join(runDir, "attempts.jsonl")));
  });

  test("a rerun with other arguments is refused, naming the difference", async () => {
    const server = await startScriptedServer(() => ({ content: "0" }));
    servers.push(server);
    const runDir = join(tmp(), "run");
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(server.baseURL),
      reward: checkSum,
      learner: learnerClient(server.baseURL),
      library: ExperienceLibrary.inMemory(),
    });
    await tf.fit(sumTasks(2), { epochs: 1, groupSize: 2, batchSize: 2, runDir });
    await assert.rejects(
      tf.fit(sumTasks(2), { epochs: 1, groupSize: 3, batchSize: 2, runDir }),
      /holds a different training-free run \(groupSize: 2 in the directory, 3 now\)/,
    );
  });
});

describe("TrainingFreeGRPO.fit, learners and pipelining", () => {
  test("a bare function is a learner: its unparseable reply is asked again, its text then used", async () => {
    const tasks = sumTasks(2);
    const { baseURL } = await world(
      () => ({ content: "unused" }),
      (_q, seed) => seed % 2 === 0,
    );
    const asked: string[] = [];
    let extracts = 0;
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(baseURL),
      reward: checkSum,
      learner: async (messages) => {
        const step = learnerStep(messages);
        asked.push(step);
        if (step === "summarise") return "summary";
        // The first extraction reply holds no list: asked again.
        return extracts++ === 0
          ? "I would add a lesson."
          : '[{"operation": "add", "content": "Carry: carry tens."}]';
      },
      library: ExperienceLibrary.inMemory({ agent: "adder" }),
      learning: { form: "extraction" },
      now: fixedNow,
    });
    const r = await tf.fit(tasks.slice(0, 1), { epochs: 1, groupSize: 4, batchSize: 1, seed: 2 });
    assert.equal(r.complete, true);
    assert.deepEqual(asked, ["summarise", "summarise", "summarise", "summarise", "extract", "extract"]);
    assert.deepEqual(
      tf.library.entries().map((e) => e.content),
      ["Carry: carry tens."],
    );
  });

  test("batchesInFlight 2: batch i sees the library as of batch i − 2, updates still in batch order", async () => {
    const tasks = sumTasks(4);
    let merges = 0;
    const { baseURL, agentRequests } = await world(
      ({ messages }) => {
        const step = learnerStep(messages);
        if (step === "summarise") return { content: "s" };
        if (step === "contrast") return { content: "<lessons>\n1. X: y.\n</lessons>" };
        if (step === "propose") return { content: '[{"operation": "ADD", "content": "X: y."}]' };
        merges++;
        return {
          content: JSON.stringify([
            { operation: "ADD", content: `Lesson ${merges}: distinct words ${"abcd"[merges - 1]}.` },
          ]),
        };
      },
      (_q, seed) => seed % 2 === 0,
    );
    const tf = new TrainingFreeGRPO<SumTask, string>({
      rollout: sumAgent(baseURL),
      reward: checkSum,
      learner: learnerClient(baseURL),
      library: ExperienceLibrary.inMemory({ agent: "adder" }),
      now: fixedNow,
    });
    const events: TrainingFreeEvent[] = [];
    const r = await tf.fit(tasks, {
      epochs: 1,
      groupSize: 4,
      batchSize: 1,
      batchesInFlight: 2,
      shuffle: false,
      seed: 1,
      onEvent: (e) => events.push(e),
    });
    assert.equal(r.complete, true);
    const lessonsSeenBy = (task: SumTask) => [
      ...new Set(
        agentRequests()
          .filter((q) => questionOf(q) === task.question)
          .map((q) => systemOf(q).split("\n").slice(2).join("|")),
      ),
    ];
    // Batches 0 and 1 see version 0; batch 2 the version after batch 0; batch 3 after batch 1.
    const libs = events.filter((e) => e.type === "library");
    assert.deepEqual(
      libs.map((e) => e.batch),
      [0, 1, 2, 3],
    );
    const added = libs.map((e) => e.change.added);
    assert.deepEqual(lessonsSeenBy(tasks[0]!), [""]);
    assert.deepEqual(lessonsSeenBy(tasks[1]!), [""]);
    assert.equal(lessonsSeenBy(tasks[2]!).length, 1);
    assert.equal(lessonsSeenBy(tasks[2]!)[0]!.split("|").length, added[0]!.length);
    assert.equal(lessonsSeenBy(tasks[3]!)[0]!.split("|").length, added[0]!.length + added[1]!.length);
  });
});

describe("TrainingFreeGRPO.fit, stopping", () => {
  test("a stop aborts the rollouts in flight through ctx.signal, not those already done", async () => {
    const stop = new AbortController();
    const started: AbortSignal[] = [];
    let done: AbortSignal | undefined;
    const tf = new TrainingFreeGRPO<{ id: string }, string>({
      rollout: (task, ctx) => {
        // The first attempt answers; the other three wait on their signal, and the last of them stops the run.
        if (!done) {
          done = ctx.signal;
          return Promise.resolve({ output: task.id });
        }
        started.push(ctx.signal);
        // Later than the first attempt's reward and record, which take microtasks only.
        if (started.length === 3) setTimeout(() => stop.abort(new Error("enough")), 5);
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }),
        );
      },
      reward: () => 1,
      learner: async () => "[]",
      library: ExperienceLibrary.inMemory({ agent: "waiter" }),
      learning: { form: "extraction" },
      now: fixedNow,
    });
    const tasks = ["a", "b"].map((id) => ({ id }));
    const r = await tf.fit(tasks, {
      epochs: 1,
      groupSize: 2,
      batchSize: 2,
      concurrency: 4,
      signal: stop.signal,
    });
    assert.equal(r.status, "stopped");
    assert.equal(started.length, 3);
    for (const s of started) {
      assert.equal(s.aborted, true, "every rollout in flight saw the stop");
      assert.match(String((s.reason as Error).message), /caller's signal aborted the run/);
    }
    assert.equal(done?.aborted, false, "a finished attempt's signal is left alone");
  });
});
