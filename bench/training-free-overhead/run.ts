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
 *   node --import tsx bench/training-free-overhead/run.ts [--problems 30] [--concurrency 16] [--latency 100]
 *       [--rollouts 3] [--problems-in-flight N] [--server process|worker|in-process] [--dist]
 *       [--cpu-profile FILE] [--allocations] [--transport-threads N] [--warm-up N]
 * --cpu-profile writes FILE (the pipeline pass) and FILE's .transport.cpuprofile (the
 * transport-only pass); --allocations prints the bytes allocated per call of the pipeline.
 * The server runs in a child process by default, as an endpoint runs outside the client's
 * process, so that the CPU time printed is the client's alone; `--server worker` runs it in a
 * worker thread (its CPU then counts), `--server in-process` on the bench's own event loop.
 *   TRAINING_FREE_BENCH_TIMELINE=1 … also prints how many requests started in each 100 ms window.
 * Where the ratio's excess comes from: "by quarter" splits the run at the quartiles of the
 * requests' arrival (the start, the steady state, the tail of the last problems' dependent
 * steps); "loop delay" is how late a 1 ms timer fired, i.e. how long a reply can wait for the
 * event loop before its call lets go of its slot.
 */
import { fork } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { AgentEndpoint, AgentName } from "../../src/llm/index.ts";
import { preciseNow, startScriptedServer } from "../../test/helpers/scripted-server.ts";
import { benchProblems, benchResponder, type ServerStats, serverStats } from "./script.ts";

const { values } = parseArgs({
  options: {
    problems: { type: "string", default: "30" },
    concurrency: { type: "string", default: "16" },
    latency: { type: "string", default: "100" },
    rollouts: { type: "string", default: "3" },
    "problems-in-flight": { type: "string" },
    server: { type: "string", default: "process" },
    dist: { type: "boolean", default: false },
    "cpu-profile": { type: "string" },
    allocations: { type: "boolean", default: false },
    "transport-threads": { type: "string", default: "0" },
    "warm-up": { type: "string", default: "0" },
  },
});

// --dist: the compiled package (`npm run build`) as a consumer runs it, instead of the sources
// through tsx.
const root = values.dist ? "../../dist" : "../../src";
const ext = values.dist ? ".js" : ".ts";
const load = <M>(path: string): Promise<M> =>
  import(new URL(`${root}/${path}${ext}`, import.meta.url).href).catch((err) => {
    throw new Error(`cannot load ${root}/${path}${ext}${values.dist ? " (run npm run build first)" : ""}`, {
      cause: err,
    });
  });
const { Rng } = await load<typeof import("../../src/core/rng.ts")>("core/rng");
const { safeEvaluate } = await load<typeof import("../../src/data/safe-math.ts")>("data/safe-math");
const { AGENTS, createClients, Limiter, TransportThreads } =
  await load<typeof import("../../src/llm/index.ts")>("llm/index");
const { CausalScaffoldEngine } = await load<typeof import("../../src/recipes/causal-scaffold/engine.ts")>(
  "recipes/causal-scaffold/engine",
);
const { ExperienceManager } = await load<typeof import("../../src/recipes/causal-scaffold/libraries.ts")>(
  "recipes/causal-scaffold/libraries",
);
const nProblems = Number(values.problems);
const concurrency = Number(values.concurrency);
const latencyMs = Number(values.latency);
const rollouts = Number(values.rollouts);

const problems = benchProblems(nProblems);
const server =
  values.server === "in-process"
    ? await inProcessServer()
    : values.server === "worker"
      ? await workerServer()
      : await processServer();

interface BenchServer {
  baseURL: string;
  stats(): Promise<ServerStats>;
  /** Forgets the requests seen so far (the warm-up's). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function inProcessServer(): Promise<BenchServer> {
  const s = await startScriptedServer(benchResponder(problems), { latencyMs });
  return {
    baseURL: s.baseURL,
    stats: async () => serverStats(s),
    reset: async () => {
      s.requests.length = 0;
    },
    close: () => s.close(),
  };
}

async function workerServer(): Promise<BenchServer> {
  const url = new URL("./server-worker.ts", import.meta.url).href;
  // A worker does not inherit the parent's --import hooks: it registers tsx itself.
  const worker = new Worker(
    `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(url)}); });`,
    { eval: true, workerData: { problems: nProblems, latencyMs } },
  );
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  const { baseURL } = await next<{ baseURL: string }>();
  return {
    baseURL,
    stats: async () => {
      const reply = next<ServerStats>();
      worker.postMessage("stats");
      return reply;
    },
    reset: async () => {
      const reply = next<string>();
      worker.postMessage("reset");
      await reply;
    },
    close: async () => {
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
      worker.postMessage("close");
      await exited;
    },
  };
}

async function processServer(): Promise<BenchServer> {
  const child = fork(
    fileURLToPath(new URL("./server-process.ts", import.meta.url)),
    [String(nProblems), String(latencyMs)],
    {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    },
  );
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      child.once("message", (m) => resolve(m as T));
      child.once("error", reject);
    });
  const { baseURL } = await next<{ baseURL: string }>();
  return {
    baseURL,
    stats: async () => {
      const reply = next<ServerStats>();
      child.send("stats");
      return reply;
    },
    reset: async () => {
      const reply = next<string>();
      child.send("reset");
      await reply;
    },
    close: async () => {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.send("close");
      await exited;
    },
  };
}

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
/** A pass's means: how long a call held its slot, and when it took it (preciseNow's clock). */
interface SlotTimes {
  heldMs: number;
  startedAt: number;
}

/**
 * The limiter, timing how long each call holds its slot: the server's latency plus whatever
 * the client spends between taking the slot and the request leaving, and between the reply
 * arriving and the slot's release (its own CPU, and waiting for its event loop).
 */
class TimedLimiter extends Limiter {
  private heldMs = 0;
  private startedSum = 0;
  private calls = 0;
  /** Starts a new measurement. */
  restart(): void {
    this.heldMs = 0;
    this.startedSum = 0;
    this.calls = 0;
  }
  /**
   * Since the last restart: the mean time a call held its slot, and the mean time it took it on
   * the clock of the server's ServerStats (preciseNow).
   */
  measured(): SlotTimes {
    const n = Math.max(1, this.calls);
    return { heldMs: this.heldMs / n, startedAt: this.startedSum / n };
  }
  override run<T>(fn: () => Promise<T>): Promise<T> {
    return super.run(async () => {
      const t = preciseNow();
      try {
        return await fn();
      } finally {
        this.heldMs += preciseNow() - t;
        this.startedSum += t;
        this.calls++;
      }
    });
  }
}
const limiter = new TimedLimiter(concurrency);
const nThreads = Number(values["transport-threads"]);
const threads = nThreads > 0 ? new TransportThreads(nThreads) : undefined;
const clients = createClients(endpoints, { limiter, rng: new Rng(1), ...(threads ? { threads } : {}) });
const inFlight = values["problems-in-flight"] ? Number(values["problems-in-flight"]) : undefined;
const workdirs: string[] = [];
/** An engine and its libraries in a fresh directory: every pass starts with no cache and no lessons. */
const freshEngine = () => {
  const workdir = mkdtempSync(join(tmpdir(), "training-free-bench-"));
  workdirs.push(workdir);
  return {
    engine: new CausalScaffoldEngine({ clients, workdir, concurrency, problemsInFlight: inFlight }),
    experiences: new ExperienceManager({ workdir }),
  };
};

// How full the limiter was: the mean of its calls in flight over the pipeline pass, and how
// often it had free slots and no call waiting, i.e. the pipeline had nothing ready to send.
const occupancy = { samples: 0, active: 0, starved: 0, on: false };
const sampler = setInterval(() => {
  if (!occupancy.on) return;
  occupancy.samples++;
  occupancy.active += limiter.active;
  if (limiter.active < concurrency && limiter.pending === 0) occupancy.starved++;
}, 20);

// One call through the same client stack before the clock: the process's first HTTP request
// loads and compiles the fetch machinery and the SDK's paths, a one-time cost of any process
// that the pipeline's orchestration is not (a long run pays it once).
await clients.critic.chat([{ role: "user", content: "TASK: LOGIC JUDGE warm-up" }], { temperature: 0 });
// Likewise the first rule the executor evaluates loads mathjs (about half a second, once).
safeEvaluate("1 + 1");
// --warm-up N: the pipeline over the first N problems before the clock, in a directory of its
// own, so that the timed pass runs code V8 has already compiled and optimised, as every pass
// after a long run's first seconds does; the timed pass then measures the steady state.
const warmUp = Number(values["warm-up"]);
if (warmUp > 0) {
  const w = freshEngine();
  await w.engine.runGenerators({ problems: problems.slice(0, warmUp), rollouts, experiences: w.experiences });
}
await server.reset();
const { engine, experiences } = freshEngine();

// --cpu-profile FILE: a V8 CPU profile of the pipeline pass alone (not the module loading, the
// warm-up or the transport-only pass), for Chrome DevTools or any .cpuprofile reader.
const profiler = values["cpu-profile"] ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post("Profiler.enable");
  await profiler.post("Profiler.setSamplingInterval", { interval: 200 });
  await profiler.post("Profiler.start");
}
// --allocations: V8's sampling heap profiler over the pipeline pass, keeping the samples of
// objects the GC has already collected, estimates the bytes allocated per call — a figure the
// load of a shared machine does not move, unlike CPU time (the sampling itself costs CPU).
const allocations = values.allocations ? new Session() : undefined;
if (allocations) {
  allocations.connect();
  await allocations.post("HeapProfiler.enable");
  await allocations.post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
}
// How late a 1 ms timer fires over the pipeline pass: how long a reply that has arrived can wait
// for the event loop, which is busy with other calls' work, before its call releases its slot.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const threads0 = threadCpuMs();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const startedAt = Date.now();
occupancy.on = true;
limiter.restart();
const summaries = await engine.runGenerators({ problems, rollouts, experiences });
const wallMs = performance.now() - t0;
const endedAt = Date.now();
loopDelay.disable();
occupancy.on = false;
const slot = limiter.measured();
const cpu = process.cpuUsage(cpu0);
const threadsMs = threads0 && diffThreads(threads0, threadCpuMs()!);
const mainMs = threadsMs && threadsMs.main.user + threadsMs.main.system;
let allocatedBytes: number | undefined;
if (allocations) {
  const { profile } = await allocations.post("HeapProfiler.stopSampling");
  allocatedBytes = sampledBytes(profile.head);
  allocations.disconnect();
}
if (profiler) {
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync(values["cpu-profile"]!, JSON.stringify(profile));
  profiler.disconnect();
}
clearInterval(sampler);
// The kernel's high-water mark of the process's resident set (getrusage), not a sampled rss():
// each rss() reads /proc, ~0.1 ms here, and a sampler's reads were charged to the run's CPU.
const peakRss = process.resourceUsage().maxRSS * 1024;

const pipelineStats = await server.stats();
const calls = pipelineStats.requests.length;
const idealMs = (calls * latencyMs) / concurrency;
const ratio = wallMs / idealMs;
// Transport baseline: the same number of calls straight through one client and the same
// limiter, no pipeline. Its ratio is what HTTP, the SDK and timers cost on this machine.
const baselineCalls = calls;
await server.reset();
if (profiler) {
  profiler.connect();
  await profiler.post("Profiler.enable");
  await profiler.post("Profiler.setSamplingInterval", { interval: 200 });
  await profiler.post("Profiler.start");
}
limiter.restart();
const cpuB0 = process.cpuUsage();
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
const cpuB = process.cpuUsage(cpuB0);
const baselineSlot = limiter.measured();
const baselineStats = await server.stats();
if (profiler) {
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync(
    values["cpu-profile"]!.replace(/(\.cpuprofile)?$/, ".transport.cpuprofile"),
    JSON.stringify(profile),
  );
  profiler.disconnect();
}
const baselineRatio = baselineMs / ((baselineCalls * latencyMs) / concurrency);
const rows = summaries.map(
  (s) =>
    `generator_${s.generator}: ${s.completed} problems completed, ${s.failed} failed, ${s.extractions} library updates`,
);
if (process.env.TRAINING_FREE_BENCH_TIMELINE) {
  const t0ms = pipelineStats.requests[0]!;
  const buckets: number[] = [];
  for (const at of pipelineStats.requests) {
    const b = Math.floor((at - t0ms) / Number(process.env.TRAINING_FREE_BENCH_TIMELINE_MS ?? 100));
    buckets[b] = (buckets[b] ?? 0) + 1;
  }
  console.log(`  requests started per 100 ms: ${Array.from(buckets, (v) => v ?? 0).join(" ")}`);
}
await server.close();
await threads?.close();
for (const dir of workdirs) rmSync(dir, { recursive: true, force: true });

console.log(
  `training-free-overhead: ${nProblems} problems × 3 generators × ${rollouts} rollouts, latency ${latencyMs} ms, concurrency ${concurrency}` +
    (threads ? `, ${threads.size} transport thread${threads.size === 1 ? "" : "s"}` : "") +
    (warmUp > 0
      ? `; timed after a warm-up pass over ${warmUp} problems`
      : "; the process's first pass (cold)"),
);
for (const r of rows) console.log(`  ${r}`);
console.log(`  LLM calls        ${calls} (peak in flight ${pipelineStats.maxInFlight})`);
console.log(
  `  in flight        ${(occupancy.active / Math.max(1, occupancy.samples)).toFixed(1)} on average of ${concurrency}; ` +
    `free slots with no call waiting ${((100 * occupancy.starved) / Math.max(1, occupancy.samples)).toFixed(0)}% of the time`,
);
console.log(
  `  slot held        ${slot.heldMs.toFixed(1)} ms per call on average (the server's latency: ${latencyMs} ms): ` +
    slotParts(slot, pipelineStats),
);
// The histogram holds the time between the timer's ticks; less its period, that is the lateness.
const lateMs = (ns: number) => Math.max(0, ns / 1e6 - 1).toFixed(1);
console.log(
  `  loop delay       a 1 ms timer late by ${lateMs(loopDelay.percentile(50))} ms (median), ` +
    `${lateMs(loopDelay.percentile(99))} ms (p99), ${lateMs(loopDelay.max)} ms (max)`,
);
console.log(`  wall time        ${(wallMs / 1000).toFixed(2)} s`);
console.log(`  ideal            ${(idealMs / 1000).toFixed(2)} s  (calls × latency / concurrency)`);
const cpuMsPerCall = (cpu.user + cpu.system) / 1000 / calls;
console.log(
  `  CPU time         ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of this process` +
    (values.server === "process" ? "" : " (the server's included)"),
);
console.log(
  `  CPU per call     ${cpuMsPerCall.toFixed(3)} ms  (target ≤ 0.5) ${cpuMsPerCall <= 0.5 ? "OK" : "ABOVE TARGET"}`,
);
if (pipelineStats.cpuMs !== undefined) {
  const busy = ((cpu.user + cpu.system) / 1000 + pipelineStats.cpuMs) / wallMs;
  console.log(
    `  server CPU       ${(pipelineStats.cpuMs / calls).toFixed(3)} ms per call in its own process; client and server` +
      ` together kept ${busy.toFixed(2)} of the machine's ${availableParallelism()} cores busy`,
  );
}
if (mainMs !== undefined)
  console.log(
    `  main thread      ${(mainMs / calls).toFixed(3)} ms of CPU per call (${((100 * mainMs) / wallMs).toFixed(0)}% of the wall time)`,
  );
if (threadsMs)
  console.log(
    `  CPU by thread    per call: main ${fmtUS(threadsMs.main, calls)}, other threads ${fmtUS(threadsMs.other, calls)}` +
      ` (user + system ms; ${threadsMs.threads} other threads)`,
  );
// The run by quarters of its requests (by their arrival at the server), each quarter's time over
// its ideal: the first holds the cold code and the first wave, the last the tail, where the last
// problems' dependent steps (judging, learning) are too few to fill the slots; the middle ones
// are a long run's steady state.
const arrivals = [...pipelineStats.requests].sort((a, b) => a - b);
if (calls >= 8) {
  // Quarters of the gaps between consecutive arrivals: each quarter's time over its gaps' ideal.
  const cuts = [0, 1, 2, 3, 4].map((q) => Math.floor((q * (calls - 1)) / 4));
  const quarters = [0, 1, 2, 3].map(
    (q) =>
      (arrivals[cuts[q + 1]!]! - arrivals[cuts[q]!]!) /
      ((cuts[q + 1]! - cuts[q]!) * (latencyMs / concurrency)),
  );
  // The server stamps each request's arrival with Date.now(), the clock both processes share.
  const beforeFirst = arrivals[0]! - startedAt;
  const afterLast = endedAt - arrivals[calls - 1]!;
  console.log(
    `  by quarter       ratio ${quarters.map((r) => r.toFixed(2)).join(", ")} of the requests; ` +
      `${(beforeFirst / 1000).toFixed(2)} s from the start to the first request's arrival, ` +
      `${(afterLast / 1000).toFixed(2)} s from the last one's to the end`,
  );
}
console.log(
  `  ratio            ${ratio.toFixed(3)}  (target ≤ 1.10) ${ratio <= 1.1 ? "OK" : "ABOVE TARGET"}`,
);
console.log(
  `  transport-only   ${(baselineMs / 1000).toFixed(2)} s for the same ${baselineCalls} calls without the pipeline, ratio ${baselineRatio.toFixed(3)}, slot held ${baselineSlot.heldMs.toFixed(1)} ms`,
);
console.log(`                   ${slotParts(baselineSlot, baselineStats)}`);
console.log(
  `  transport CPU    ${((cpuB.user + cpuB.system) / 1000 / baselineCalls).toFixed(3)} ms per call of the transport-only pass (client, SDK, HTTP)`,
);
console.log(`  pipeline share   ${(wallMs / baselineMs).toFixed(3)} (wall time / transport-only time)`);
if (allocatedBytes !== undefined)
  console.log(`  allocated        ${(allocatedBytes / calls / 1024).toFixed(1)} KB per call (sampled)`);
console.log(
  `  peak RSS         ${(peakRss / 2 ** 20).toFixed(0)} MB  (target < 300 MB) ${peakRss < 300 * 2 ** 20 ? "OK" : "ABOVE TARGET"}`,
);

/**
 * A slot's mean time in three parts, from means alone (no call is matched with its request):
 * taking the slot to the server having the request's headers, the server's own hold, its
 * reply's last byte to the slot's release.
 */
function slotParts(slot: SlotTimes, s: ServerStats): string {
  const before = s.meanReceivedAt - slot.startedAt;
  const after = slot.startedAt + slot.heldMs - s.meanRepliedAt;
  const at = s.meanRepliedAt - s.meanReceivedAt;
  return `${before.toFixed(1)} ms to reach the server, ${at.toFixed(1)} ms there, ${after.toFixed(1)} ms from its reply to the slot's release`;
}

function sampledBytes(node: { selfSize: number; children: (typeof node)[] }): number {
  return node.children.reduce((sum, c) => sum + sampledBytes(c), node.selfSize);
}

type UserSys = { user: number; system: number };

/**
 * Each thread's user and system CPU (Linux: /proc, ms in ticks of 10 ms), so that the bench shows
 * how much of the process's CPU the event loop itself spent; undefined elsewhere.
 */
function threadCpuMs(): Map<string, UserSys> | undefined {
  try {
    const out = new Map<string, UserSys>();
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime are fields 14 and 15 of stat(5); after the command name, 12 and 13
      out.set(tid, { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 });
    }
    return out;
  } catch {
    return undefined;
  }
}

function diffThreads(before: Map<string, UserSys>, after: Map<string, UserSys>) {
  const main = { user: 0, system: 0 };
  const other = { user: 0, system: 0 };
  let threads = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { user: 0, system: 0 };
    const into = tid === String(process.pid) ? main : other;
    if (into === other && a.user + a.system > b.user + b.system) threads++;
    into.user += a.user - b.user;
    into.system += a.system - b.system;
  }
  return { main, other, threads };
}

function fmtUS(t: UserSys, calls: number): string {
  return `${(t.user / calls).toFixed(3)} + ${(t.system / calls).toFixed(3)}`;
}
