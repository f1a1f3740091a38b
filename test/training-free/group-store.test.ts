/**
 * fit() over a caller-owned GroupStore, and the options a client with its own records needs:
 * learn: false, a group size per task, onFailure with an external signal. Everything through the
 * package's public names; the agent and the learner are plain functions, so every call is counted.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ExperienceLibrary,
  type FailureRecord,
  type GroupEnd,
  type GroupStore,
  type RecalledGroup,
  type ScoredGroupEnd,
  TrainingFreeGRPO,
} from "../../src/index.ts";
import { learnerStep } from "./scripted-world.ts";

interface Task {
  id: string;
  answer: string;
}

const fixedNow = () => new Date("2026-01-01T00:00:00Z");

/** An agent right on even attempt indices, wrong on odd ones: every group of two or more disagrees. */
function solver(opts: { failOn?: (task: string, index: number) => boolean } = {}) {
  const calls: string[] = [];
  const rewards: string[] = [];
  const learner: string[] = [];
  let lessons = 0;
  const tf = new TrainingFreeGRPO<Task, string>({
    async rollout(task, ctx) {
      calls.push(`${task.id}/${ctx.index}/${ctx.groupSize}`);
      if (opts.failOn?.(task.id, ctx.index)) throw new Error(`agent down for ${task.id}`);
      return { output: ctx.index % 2 === 0 ? task.answer : "0" };
    },
    reward(task, attempt) {
      rewards.push(task.id);
      return attempt.output === task.answer ? 1 : 0;
    },
    learner: async (messages) => {
      const step = learnerStep(messages);
      learner.push(step);
      if (step === "summarise") return "summary";
      return JSON.stringify([{ operation: "add", content: `Lesson ${++lessons} on checking the sum twice` }]);
    },
    library: ExperienceLibrary.inMemory({ agent: "adder" }),
    learning: { form: "extraction" },
    now: fixedNow,
  });
  return { tf, calls, rewards, learner };
}

/** A store that recalls what `recalled` holds and logs every hook it hears. */
function store(recalled: Record<string, RecalledGroup<string>> = {}) {
  const log: string[] = [];
  const s: GroupStore<Task, string> = {
    recall: (task, where) => {
      log.push(`recall ${task.id} e${where.epoch} b${where.batch}`);
      return recalled[task.id];
    },
    incomplete: (g: GroupEnd<Task, string>) => {
      const states = g.attempts.map((a) => (a === undefined ? "-" : a.status));
      log.push(`incomplete ${g.taskId} ${states.join(",")}`);
    },
    scored: (g: ScoredGroupEnd<Task, string>) => {
      log.push(`scored ${g.taskId} [${g.summary.scores.join(",")}] learn=${g.summary.learn}`);
    },
    learningFailed: (g, f) => {
      log.push(`learningFailed ${g.taskId} ${f.stage}`);
    },
    learnt: (g, change) => {
      log.push(`learnt ${g.taskId} +${change.added.length}`);
    },
  };
  return { s, log };
}

const tasks: Task[] = [
  { id: "a", answer: "3" },
  { id: "b", answer: "5" },
];

describe("fit with a GroupStore", () => {
  test("recalled attempts are not made again, an unscored one only rewarded, a done group skipped", async () => {
    const { tf, calls, rewards, learner } = solver();
    const { s, log } = store({
      a: {
        attempts: [
          { status: "ok", output: "3", score: 1, correct: true },
          { status: "unscored", output: "0" },
        ],
      },
      b: { done: true },
    });
    const r = await tf.fit(tasks, { epochs: 1, groupSize: 2, batchSize: 2, shuffle: false, store: s });
    assert.deepEqual(calls, [], "no rollout is asked for again");
    assert.deepEqual(rewards, ["a"], "only the unscored attempt is rewarded");
    assert.deepEqual(log, ["recall a e1 b0", "recall b e1 b0", "scored a [1,0] learn=true", "learnt a +1"]);
    assert.deepEqual(learner, ["summarise", "summarise", "extract"]);
    assert.equal(r.status, "finished");
    assert.deepEqual(
      tf.library.entries().map((e) => [e.content, e.source_problem]),
      [["Lesson 1 on checking the sum twice", "a"]],
    );
  });

  test("every group recalled as done: already finished, nothing asked", async () => {
    const { tf, calls, learner } = solver();
    const { s } = store({ a: { done: true }, b: { done: true } });
    const r = await tf.fit(tasks, { epochs: 1, groupSize: 2, batchSize: 1, store: s });
    assert.equal(r.status, "already-finished");
    assert.deepEqual([calls, learner], [[], []]);
  });

  test("a failed attempt makes its group incomplete and teaches nothing; a waiting index is not made", async () => {
    const { tf, calls, learner } = solver({ failOn: (t, i) => t === "a" && i === 1 });
    const { s, log } = store({ b: { waiting: [1] } });
    const failures: FailureRecord[] = [];
    const r = await tf.fit(tasks, {
      epochs: 1,
      groupSize: 2,
      batchSize: 2,
      concurrency: 1,
      store: s,
      onFailure: (f) => failures.push(f),
    });
    assert.deepEqual(calls.sort(), ["a/0/2", "a/1/2", "b/0/2"]);
    assert.deepEqual(log.slice(2).sort(), ["incomplete a ok,failed", "incomplete b ok,-"]);
    assert.deepEqual(learner, []);
    assert.deepEqual(
      failures.map((f) => [f.stage, f.task, f.index, f.error]),
      [["rollout", "a", 1, "agent down for a"]],
    );
    assert.equal(r.status, "incomplete");
    assert.equal(tf.library.entries().length, 0);
  });

  test("a learner that fails: learningFailed, the library unchanged", async () => {
    const tf = new TrainingFreeGRPO<Task, string>({
      rollout: async (task, ctx) => ({ output: ctx.index === 0 ? task.answer : "0" }),
      reward: (task, a) => (a.output === task.answer ? 1 : 0),
      learner: async () => {
        throw new Error("learner down");
      },
      library: ExperienceLibrary.inMemory({ agent: "adder" }),
      learning: { form: "extraction" },
      now: fixedNow,
    });
    const { s, log } = store();
    const r = await tf.fit(tasks.slice(0, 1), { epochs: 1, groupSize: 2, store: s });
    assert.deepEqual(log, ["recall a e1 b0", "scored a [1,0] learn=true", "learningFailed a learner"]);
    assert.equal(r.status, "incomplete");
    assert.equal(tf.library.entries().length, 0);
  });
});

describe("fit options for a client with its own records", () => {
  test("groupSize per task: each group has its own number of attempts, and ctx says so", async () => {
    const { tf, calls } = solver();
    const sizes: Record<string, number> = { a: 1, b: 3 };
    const r = await tf.fit(tasks, { epochs: 1, groupSize: (t) => sizes[t.id]!, batchSize: 2, learn: false });
    assert.deepEqual(calls.sort(), ["a/0/1", "b/0/3", "b/1/3", "b/2/3"]);
    assert.equal(r.attempts.ok, 4);
    await assert.rejects(tf.fit(tasks, { groupSize: () => 0 }), /groupSize of task a must be an integer ≥ 1/);
  });

  test("learn: false scores every group and never asks the learner nor changes the library", async () => {
    const { tf, learner } = solver();
    const { s, log } = store();
    const r = await tf.fit(tasks, { epochs: 1, groupSize: 2, batchSize: 2, learn: false, store: s });
    assert.equal(r.status, "finished");
    assert.deepEqual(log.slice(2).sort(), ["scored a [1,0] learn=false", "scored b [1,0] learn=false"]);
    assert.deepEqual(learner, []);
    assert.equal(tf.library.entries().length, 0);
  });

  test("maxFailures Infinity leaves stopping to the caller: onFailure counts, its signal stops the run", async () => {
    const many: Task[] = Array.from({ length: 16 }, (_, i) => ({ id: `t${i}`, answer: String(i) }));
    const { tf, calls } = solver({ failOn: () => true });
    const stop = new AbortController();
    const seen: string[] = [];
    const r = await tf.fit(many, {
      epochs: 1,
      groupSize: 1,
      batchSize: 1,
      concurrency: 1,
      shuffle: false,
      maxFailures: Number.POSITIVE_INFINITY,
      signal: stop.signal,
      onFailure: (f, err) => {
        seen.push(`${f.task}: ${(err as Error).message}`);
        // past the default limit of 10: only the caller stops this run
        if (seen.length === 12) stop.abort(new Error("twelve failures"));
      },
    });
    assert.deepEqual(
      seen,
      Array.from({ length: 12 }, (_, i) => `t${i}: agent down for t${i}`),
    );
    assert.equal(calls.length, 12, "nothing is attempted once the caller stopped the run");
    assert.equal(r.status, "stopped");
    assert.equal(r.complete, false);
  });

  test("a runDir and a store together are refused", async () => {
    const { tf } = solver();
    await assert.rejects(
      tf.fit(tasks, { runDir: "/nonexistent", store: store().s }),
      /runDir or a store, not both/,
    );
  });
});
