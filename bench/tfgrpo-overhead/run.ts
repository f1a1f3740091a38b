/**
 * Overhead of the training-free pipeline over the LLM latency it waits on.
 *
 * A scripted OpenAI-compatible server answers every call after a fixed 100 ms. Three generators
 * solve 30 generated problems with 3 rollouts each, all agents sharing one limiter of 16
 * requests in flight. With perfect overlap the run would take calls × latency / concurrency;
 * the ratio of wall time to that ideal measures what the orchestration (parsing, rewards,
 * executor, JSONL and library writes, scheduling gaps) adds. Targets: ratio ≤ 1.10, peak RSS
 * < 300 MB.
 *
 * A second pass sends the same number of calls straight through the client (no pipeline): its
 * ratio is what HTTP, the SDK and timers cost on the machine at hand, which on a loaded machine
 * is most of the gap; "pipeline share" is the part the solver itself adds.
 *
 *   node --import tsx bench/tfgrpo-overhead/run.ts [--problems 30] [--concurrency 16] [--latency 100]
 *       [--rollouts 3] [--problems-in-flight N]
 *   TFGRPO_BENCH_TIMELINE=1 … also prints how many requests started in each 100 ms window.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../../src/core/rng.ts";
import { AGENTS, type AgentEndpoint, type AgentName, createClients, Limiter } from "../../src/llm/index.ts";
import { CausalScaffoldEngine } from "../../src/tfgrpo/engine.ts";
import { ExperienceManager } from "../../src/tfgrpo/experience.ts";
import type { ProblemRef } from "../../src/tfgrpo/solve.ts";
import { startScriptedServer } from "../../test/helpers/scripted-server.ts";

const { values } = parseArgs({
  options: {
    problems: { type: "string", default: "30" },
    concurrency: { type: "string", default: "16" },
    latency: { type: "string", default: "100" },
    rollouts: { type: "string", default: "3" },
    "problems-in-flight": { type: "string" },
  },
});
const nProblems = Number(values.problems);
const concurrency = Number(values.concurrency);
const latencyMs = Number(values.latency);
const rollouts = Number(values.rollouts);

const rng = new Rng(2024);
const problems: ProblemRef[] = Array.from({ length: nProblems }, (_, i) => {
  const a = 10 + rng.int(900);
  const b = 10 + rng.int(900);
  return {
    id: `bench_${String(i + 1).padStart(3, "0")}`,
    text: `Problem ${i + 1}: what is ${a} plus ${b}?`,
    answer: String(a + b),
  };
});
const byText = new Map(problems.map((p) => [p.text, p]));

function scaffold(a: number, b: number, wrong: boolean): string {
  return JSON.stringify({
    target_variable: "total",
    knowns: { a, b },
    causal_graph: [{ cause: ["a", "b"], effect: "total", rule: wrong ? "total = a - b" : "total = a + b" }],
    computation_plan: [
      { id: "step1", target: "total", inputs: ["a", "b"], description: "add the two numbers" },
    ],
  });
}

let scaffoldCount = 0;
let extractCount = 0;
const server = await startScriptedServer(
  ({ messages }) => {
    const prompt = String(messages[0]?.content ?? "");
    if (prompt.startsWith("TASK: CAUSAL SCAFFOLD")) {
      const p = [...byText.values()].find((q) => prompt.includes(q.text))!;
      const m = /what is (\d+) plus (\d+)/.exec(p.text)!;
      // one wrong scaffold in five, so that some groups disagree and the libraries learn
      return { content: scaffold(Number(m[1]), Number(m[2]), scaffoldCount++ % 5 === 0) };
    }
    if (prompt.startsWith("TASK: LOGIC JUDGE"))
      return { content: '{"validity": 0.9, "completeness": 0.8, "rigor": 0.7}' };
    if (prompt.startsWith("TASK: SUMMARISE ROLLOUT")) return { content: "Added the two givens." };
    if (prompt.startsWith("TASK: EXTRACT EXPERIENCES")) {
      const n = extractCount++;
      return {
        content: JSON.stringify([
          { operation: "add", content: `Lesson number ${n} about sums`, category: "bench" },
        ]),
      };
    }
    return { content: "\\boxed{0}" };
  },
  { latencyMs },
);

const endpoints = {} as Record<AgentName, AgentEndpoint>;
for (const agent of AGENTS) {
  endpoints[agent] = {
    agent,
    baseURL: server.baseURL,
    model: `bench-${agent}`,
    apiKey: "bench",
    maxConcurrency: concurrency,
    timeoutMs: 30_000,
    maxRetries: 2,
  };
}
const limiter = new Limiter(concurrency);
const clients = createClients(endpoints, { limiter, rng: new Rng(1) });
const workdir = mkdtempSync(join(tmpdir(), "tfgrpo-bench-"));
const inFlight = values["problems-in-flight"] ? Number(values["problems-in-flight"]) : undefined;
const engine = new CausalScaffoldEngine({ clients, workdir, concurrency, problemsInFlight: inFlight });
const experiences = new ExperienceManager({ workdir });

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 20);

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const summaries = await engine.runGenerators({ problems, rollouts, experiences });
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);

const calls = server.requests.length;
const idealMs = (calls * latencyMs) / concurrency;
const ratio = wallMs / idealMs;
// Transport baseline: the same number of calls straight through one client and the same
// limiter, no pipeline. Its ratio is what HTTP, the SDK and timers cost on this machine.
const baselineCalls = calls;
const tb = performance.now();
let issued = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (issued < baselineCalls) {
      issued++;
      await clients.critic.chat([{ role: "user", content: "TASK: LOGIC JUDGE baseline" }], {
        temperature: 0,
      });
    }
  }),
);
const baselineMs = performance.now() - tb;
const baselineRatio = baselineMs / ((baselineCalls * latencyMs) / concurrency);
const rows = summaries.map(
  (s) => `generator_${s.generator}: ${s.processed} problems, ${s.extractions} library updates`,
);
if (process.env.TFGRPO_BENCH_TIMELINE) {
  const t0ms = server.requests[0]!.at;
  const buckets: number[] = [];
  for (const r of server.requests) {
    const b = Math.floor((r.at - t0ms) / 100);
    buckets[b] = (buckets[b] ?? 0) + 1;
  }
  console.log(`  requests started per 100 ms: ${Array.from(buckets, (v) => v ?? 0).join(" ")}`);
}
await server.close();
rmSync(workdir, { recursive: true, force: true });

console.log(
  `tfgrpo-overhead: ${nProblems} problems × 3 generators × ${rollouts} rollouts, latency ${latencyMs} ms, concurrency ${concurrency}`,
);
for (const r of rows) console.log(`  ${r}`);
console.log(`  LLM calls        ${calls} (peak in flight ${server.maxInFlight})`);
console.log(`  wall time        ${(wallMs / 1000).toFixed(2)} s`);
console.log(`  ideal            ${(idealMs / 1000).toFixed(2)} s  (calls × latency / concurrency)`);
console.log(`  CPU time         ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of this process`);
console.log(
  `  ratio            ${ratio.toFixed(3)}  (target ≤ 1.10) ${ratio <= 1.1 ? "OK" : "ABOVE TARGET"}`,
);
console.log(
  `  transport-only   ${(baselineMs / 1000).toFixed(2)} s for the same ${baselineCalls} calls without the pipeline, ratio ${baselineRatio.toFixed(3)}`,
);
console.log(`  pipeline share   ${(wallMs / baselineMs).toFixed(3)} (wall time / transport-only time)`);
console.log(
  `  peak RSS         ${(peakRss / 2 ** 20).toFixed(0)} MB  (target < 300 MB) ${peakRss < 300 * 2 ** 20 ? "OK" : "ABOVE TARGET"}`,
);
