import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Command } from "commander";
import { register as registerGenerator } from "../../src/cli/commands/generator.ts";
import { register as registerMerge } from "../../src/cli/commands/merge-shards.ts";
import { parseShard } from "../../src/cli/training-free-options.ts";
import { libraryIdentity, libraryPath } from "../../src/recipes/causal-scaffold/libraries.ts";
import { cacheDir, generatorCachePath, runSummaryPath } from "../../src/recipes/causal-scaffold/paths.ts";
import { readRolloutCache } from "../../src/recipes/causal-scaffold/rollout-cache.ts";
import { shardSlice, shardWorkdir } from "../../src/recipes/causal-scaffold/shards.ts";
import { ExperienceLibrary } from "../../src/training-free/experience-library.ts";
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

const PROBLEMS = exampleProblems(["toy-math"]).slice(0, 5);
/** One lesson per problem, worded apart so that none is a near-duplicate of another. */
const LESSONS = [
  "Write every known quantity as a node before drawing edges",
  "Check that each rule uses only inputs computed earlier",
  "Prefer exact fractions over rounded decimals in intermediate steps",
  "Restate the target variable in the units the question asks for",
  "Verify the final answer against an estimate made at the start",
];

function program(): Command {
  const p = new Command("grpo").exitOverride();
  registerGenerator(p);
  registerMerge(p);
  return p;
}

/**
 * An endpoint whose two rollouts of a problem disagree (one right, one wrong), so every group
 * teaches its problem's lesson: a merged run must end with every lesson a single run learns.
 */
async function solverEndpoint() {
  const seen = new Map<string, number>();
  return startScriptedServer(({ messages }) => {
    const prompt = messages[0]!.content;
    const task = taskOf(prompt);
    if (task === "scaffold") {
      const p = problemIn(prompt, PROBLEMS);
      const n = seen.get(p.id) ?? 0;
      seen.set(p.id, n + 1);
      return { content: scaffoldReply(p, n % 2 === 0) };
    }
    if (task === "judge") return { content: JUDGE_REPLY };
    if (task === "summarise") return { content: "Took the given value to the target." };
    if (task === "extract") {
      const i = PROBLEMS.indexOf(problemIn(prompt, PROBLEMS));
      return { content: JSON.stringify([{ operation: "add", content: LESSONS[i], category: "structure" }]) };
    }
    return { content: "[]" };
  });
}

async function quietly<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const log = console.log;
  const err = process.stderr.write.bind(process.stderr);
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  process.stderr.write = ((chunk: string) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), lines };
  } finally {
    console.log = log;
    process.stderr.write = err;
  }
}

describe("--shard and grpo merge-shards", () => {
  test("--shard i/N is checked; the blocks cover a window once, in order", () => {
    assert.deepEqual(parseShard("--shard")("2/4"), { index: 2, count: 4 });
    for (const bad of ["0/4", "5/4", "2", "a/b", "1/0"])
      assert.throws(() => parseShard("--shard")(bad), /--shard must be i\/N/);
    const items = [...Array(10).keys()];
    const blocks = [1, 2, 3].map((index) => shardSlice(items, { index, count: 3 }));
    assert.deepEqual(blocks, [
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8, 9],
    ]);
    assert.deepEqual(shardSlice([1], { index: 2, count: 3 }), []);
  });

  test("two shards merged equal one unsharded run: cache order, lessons, usage; a second merge changes nothing", async () => {
    const server = await solverEndpoint();
    const sharded = makeWorkdir(server.baseURL);
    const single = makeWorkdir(server.baseURL);
    const common = (wd: { dir: string; configPath: string }) => [
      "generator",
      "--id",
      "1",
      "--dataset",
      "toy-math",
      "--max-problems",
      "5",
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
      const runs = await quietly(async () => {
        // the two array tasks run at the same time, each in its own directory
        await Promise.all([
          program().parseAsync([...common(sharded), "--shard", "2/2"], { from: "user" }),
          program().parseAsync([...common(sharded), "--shard", "1/2"], { from: "user" }),
        ]);
        await program().parseAsync(common(single), { from: "user" });
      });
      assert.ok(
        runs.lines.some((l) => l.includes("shard 1/2: problems 1–2 of 5")),
        runs.lines.join(""),
      );
      assert.ok(runs.lines.some((l) => l.includes("shard 2/2: problems 3–5 of 5")));
      const cacheOf = (dir: string) => generatorCachePath(cacheDir(dir), 1);
      // problems finish in any order; each shard holds its own block
      const shardIds = [1, 2].map((index) => [
        ...readRolloutCache(cacheOf(shardWorkdir(sharded.dir, { index, count: 2 }))).problems.keys(),
      ]);
      assert.deepEqual(
        shardIds.map((ids) => [...ids].sort()),
        [PROBLEMS.slice(0, 2).map((p) => p.id), PROBLEMS.slice(2).map((p) => p.id)],
      );

      const merge = await quietly(() =>
        program().parseAsync(["merge-shards", "--workdir", sharded.dir, "--shards", "2"], { from: "user" }),
      );
      assert.ok(
        merge.lines.some((l) => l.startsWith("done: merged 2 shards (1-of-2, 2-of-2)")),
        merge.lines.join("\n"),
      );
      const merged = readRolloutCache(cacheOf(sharded.dir)).problems;
      const plain = readRolloutCache(cacheOf(single.dir)).problems;
      assert.deepEqual([...merged.keys()], shardIds.flat(), "shard 1's lines, then shard 2's");
      assert.deepEqual([...merged.keys()].sort(), [...plain.keys()].sort());
      for (const [id, rec] of merged) assert.equal(rec.rollouts.length, plain.get(id)!.rollouts.length);

      const lessons = (dir: string) =>
        ExperienceLibrary.load(libraryPath(dir, "generator_1"), libraryIdentity("generator_1"))
          .entries()
          .map((e) => e.content)
          .sort();
      assert.deepEqual(lessons(sharded.dir), [...LESSONS].sort());
      assert.deepEqual(lessons(sharded.dir), lessons(single.dir));
      const ids = ExperienceLibrary.load(
        libraryPath(sharded.dir, "generator_1"),
        libraryIdentity("generator_1"),
      )
        .entries()
        .map((e) => e.id)
        .sort();
      assert.deepEqual(ids, ["G1-001", "G1-002", "G1-003", "G1-004", "G1-005"], "ids renumbered, none twice");

      const calls = (dir: string) =>
        JSON.parse(readFileSync(runSummaryPath(dir), "utf8")).usage.total.calls as number;
      assert.equal(calls(sharded.dir), calls(single.dir), "what the shards paid is counted once");

      const before = [cacheOf(sharded.dir), libraryPath(sharded.dir, "generator_1")].map((f) =>
        readFileSync(f, "utf8"),
      );
      await quietly(() => program().parseAsync(["merge-shards", "--workdir", sharded.dir], { from: "user" }));
      const after = [cacheOf(sharded.dir), libraryPath(sharded.dir, "generator_1")].map((f) =>
        readFileSync(f, "utf8"),
      );
      assert.deepEqual(after, before);
      assert.equal(calls(sharded.dir), calls(single.dir));

      await assert.rejects(
        quietly(() =>
          program().parseAsync(["merge-shards", "--workdir", sharded.dir, "--shards", "3"], { from: "user" }),
        ),
        /shard 3\/3 never ran|shards 1\/3, 2\/3, 3\/3 never ran/,
      );
    } finally {
      await server.close();
      sharded.cleanup();
      single.cleanup();
    }
  });
});

// a shard's path is where the slurm script's array task writes
test("shard directories sit under the main working directory", () => {
  assert.equal(shardWorkdir("/w", { index: 3, count: 4 }), join("/w", "grpo_training", "shards", "3-of-4"));
});
