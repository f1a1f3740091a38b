/**
 * Loss types on the same run: `grpo train theory` (its quick recipe unless flags say otherwise:
 * tiny model, 150 warm-start steps, 100 GRPO steps of 64 theories) once per loss type and seed,
 * everything else equal. Prints, per run and per loss type (mean over seeds), the held-out
 * reward of the final evaluation, the training reward of the first and last steps, and the mean
 * completion length first and last — the aggregation is about how completions of different
 * lengths weigh, so length is the figure to watch beside the reward.
 *
 *   node --import tsx bench/loss-types/run.ts [--loss-types grpo,dapo] [--seeds 1,2,3]
 *        [--output-dir outputs/loss_types_bench] [-- extra flags for grpo train theory]
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  options: {
    "loss-types": { type: "string", default: "grpo,dapo" },
    seeds: { type: "string", default: "1,2,3" },
    "output-dir": { type: "string", default: "outputs/loss_types_bench" },
  },
  allowPositionals: true,
});
const root = join(import.meta.dirname, "..", "..");
const lossTypes = values["loss-types"]!.split(",");
const seeds = values.seeds!.split(",").map(Number);

interface RunFigures {
  evalReward: number;
  rewardFirst: number;
  rewardLast: number;
  lengthFirst: number;
  lengthLast: number;
  seconds: number;
}

/** Mean of a field over the first or last `n` lines of history.jsonl. */
function edge(history: Record<string, number>[], key: string, n: number, last: boolean): number {
  const part = last ? history.slice(-n) : history.slice(0, n);
  return part.reduce((a, h) => a + h[key]!, 0) / part.length;
}

function runOne(lossType: string, seed: number): RunFigures {
  const out = join(values["output-dir"]!, `${lossType}-seed${seed}`);
  rmSync(out, { recursive: true, force: true });
  const args = ["train", "theory", "--loss-type", lossType, "--seed", String(seed), "--output-dir", out];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    process.execPath,
    [join(root, "bin/grpo.js"), ...args, "--eval-interval", "0", ...positionals],
    {
      cwd: root,
      encoding: "utf8",
    },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0)
    throw new Error(`grpo ${args.join(" ")} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const stats = JSON.parse(readFileSync(join(out, "training_stats.json"), "utf8"));
  const history = readFileSync(join(out, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>);
  return {
    evalReward: stats.final_eval.reward,
    rewardFirst: edge(history, "reward", 10, false),
    rewardLast: edge(history, "reward", 10, true),
    lengthFirst: edge(history, "completions/mean_length", 10, false),
    lengthLast: edge(history, "completions/mean_length", 10, true),
    seconds,
  };
}

const f = (x: number, d = 3) => x.toFixed(d);
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
console.log(
  "| loss type | seed | eval reward | reward first 10 → last 10 steps | mean length first → last | wall |",
);
console.log("|---|---:|---:|---:|---:|---:|");
const byType = new Map<string, RunFigures[]>();
for (const seed of seeds)
  for (const lossType of lossTypes) {
    const r = runOne(lossType, seed);
    byType.set(lossType, [...(byType.get(lossType) ?? []), r]);
    console.log(
      `| ${lossType} | ${seed} | ${f(r.evalReward)} | ${f(r.rewardFirst)} → ${f(r.rewardLast)} | ${f(r.lengthFirst, 1)} → ${f(r.lengthLast, 1)} | ${f(r.seconds, 0)} s |`,
    );
  }
console.log("\nmean over seeds:");
console.log("| loss type | eval reward (min–max) | last-10 reward | last-10 length |");
console.log("|---|---:|---:|---:|");
for (const [lossType, rs] of byType) {
  const mean = (k: keyof RunFigures) => rs.reduce((a, r) => a + r[k], 0) / rs.length;
  const evals = rs.map((r) => r.evalReward);
  console.log(
    `| ${lossType} | ${f(mean("evalReward"))} (${f(Math.min(...evals))}–${f(Math.max(...evals))}) | ${f(mean("rewardLast"))} | ${f(mean("lengthLast"), 1)} |`,
  );
}
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
