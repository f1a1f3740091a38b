import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { cacheDir, generatorCachePath, runSummaryPath } from "../../src/recipes/causal-scaffold/paths.ts";
import { readRolloutCache } from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { type Outcome, startGrpo } from "../helpers/child.ts";
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

function lineCount(path: string): number {
  if (!existsSync(path)) return 0;
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "").length;
}

/** `grpo args`; `onTick` every 20 ms may kill it. */
function runCli(args: string[], onTick?: (kill: () => void) => void): Promise<Outcome> {
  const { child, done } = startGrpo(args);
  if (!onTick) return done;
  const timer = setInterval(() => onTick(() => child.kill("SIGKILL")), 20);
  return done.finally(() => clearInterval(timer));
}

test("a generator killed mid-run resumes: every problem exactly once, none lost", {
  timeout: 60_000,
}, async () => {
  const problems = exampleProblems(["toy-math"]);
  const server = await startScriptedServer(
    ({ messages }) => {
      const prompt = messages[0]!.content;
      const task = taskOf(prompt);
      if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), true) };
      if (task === "judge") return { content: JUDGE_REPLY };
      return { content: "[]" };
    },
    { latencyMs: 40 },
  );
  const wd = makeWorkdir(server.baseURL);
  const cache = generatorCachePath(cacheDir(wd.dir), 1);
  const args = [
    "generator",
    "--id",
    "1",
    "--dataset",
    "toy-math",
    "--rollouts",
    "2",
    "--concurrency",
    "1",
    "--workdir",
    wd.dir,
    "--config",
    wd.configPath,
    "--dataset-config",
    EXAMPLE_DATASET_CONFIG,
  ];
  try {
    let killedAt = -1;
    const first = await runCli(args, (kill) => {
      const n = lineCount(cache);
      if (n >= 2 && killedAt < 0) {
        killedAt = n;
        kill();
      }
    });
    assert.equal(first.signal, "SIGKILL", `first run should be killed, stderr: ${first.stderr}`);
    const afterKill = lineCount(cache);
    assert.ok(
      afterKill >= 2 && afterKill < problems.length,
      `killed with ${afterKill} of ${problems.length} written`,
    );
    // a write torn by a crash: the rerun must drop it, not glue the next record onto it
    appendFileSync(cache, '{"problem_id": "toy-math_00');

    const second = await runCli(args);
    assert.equal(second.code, 0, second.stderr);
    const lines = readFileSync(cache, "utf8").trim().split("\n");
    const ids = lines.map((l) => JSON.parse(l).problem_id as string);
    assert.equal(ids.length, problems.length, "each problem exactly once");
    assert.deepEqual([...new Set(ids)].sort(), problems.map((p) => p.id).sort());
    const { problems: recs, torn } = readRolloutCache(cache);
    assert.equal(torn, false);
    for (const rec of recs.values()) assert.equal(rec.rollouts.length, 2);
    // scaffold requests: only the problems not yet cached were asked again
    const asked = server.requests.filter((r) =>
      String(r.body.messages[0].content).startsWith("TASK: CAUSAL SCAFFOLD"),
    );
    assert.ok(asked.length <= (problems.length + 1) * 2, `${asked.length} scaffold requests`);

    // usage is written as it accrues: the killed run is in the summary too
    const summary = JSON.parse(readFileSync(runSummaryPath(wd.dir), "utf8"));
    assert.deepEqual(
      summary.runs.map((r: { command: string; status: string }) => [r.command, r.status]),
      [
        ["generator_1", "unfinished"],
        ["generator_1", "finished"],
      ],
    );
    // every request that got an answer was recorded (the killed run may have had some in flight)
    assert.ok(
      summary.usage.perAgent.generator_1.calls >= server.requests.length - 2,
      `${summary.usage.perAgent.generator_1.calls} of ${server.requests.length}`,
    );
    assert.ok(summary.usage.perAgent.generator_1.calls <= server.requests.length);
    assert.equal(summary.usage.perAgent.critic, undefined, "no critic call was made");
  } finally {
    await server.close();
    wd.cleanup();
  }
});

test("the critic command explains a missing generator cache", { timeout: 30_000 }, async () => {
  const wd = makeWorkdir("http://127.0.0.1:9/v1");
  try {
    const r = await runCli(["critic", "--workdir", wd.dir, "--config", wd.configPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /generator_1_rollouts\.jsonl/);
    assert.match(r.stderr, /grpo generator --id 1/);
  } finally {
    wd.cleanup();
  }
});

test("three generator processes at once: each cache complete, the run summary counts all three", {
  timeout: 60_000,
}, async () => {
  const problems = exampleProblems(["toy-math"]).slice(0, 3);
  const server = await startScriptedServer(({ messages }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    if (task === "scaffold") return { content: scaffoldReply(problemIn(prompt, problems), true) };
    if (task === "judge") return { content: JUDGE_REPLY };
    return { content: "[]" };
  });
  const wd = makeWorkdir(server.baseURL);
  const args = (id: number) => [
    "generator",
    "--id",
    String(id),
    "--dataset",
    "toy-math",
    "--max-problems",
    "3",
    "--rollouts",
    "2",
    "--workdir",
    wd.dir,
    "--config",
    wd.configPath,
    "--dataset-config",
    EXAMPLE_DATASET_CONFIG,
  ];
  try {
    const runs = await Promise.all([1, 2, 3].map((id) => runCli(args(id))));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    for (const id of [1, 2, 3] as const) {
      const { problems: recs } = readRolloutCache(generatorCachePath(cacheDir(wd.dir), id));
      // problems run concurrently, so lines are in completion order
      assert.deepEqual([...recs.keys()].sort(), problems.map((p) => p.id).sort());
    }
    const summary = JSON.parse(readFileSync(runSummaryPath(wd.dir), "utf8"));
    assert.deepEqual(summary.runs.map((r: { command: string }) => r.command).sort(), [
      "generator_1",
      "generator_2",
      "generator_3",
    ]);
    // 3 problems × 2 rollouts × (scaffold + judge) per generator
    for (const a of ["generator_1", "generator_2", "generator_3"])
      assert.equal(summary.usage.perAgent[a].calls, 12);
  } finally {
    await server.close();
    wd.cleanup();
  }
});
