/**
 * The bench's problems and the scripted server's replies. Shared by the server (in its worker
 * thread) and the bench (which needs the same problems), so both are built from the same seed.
 */
import { Rng } from "../../src/core/rng.ts";
import type { ProblemRef } from "../../src/recipes/causal-scaffold/solve.ts";
import type { Responder, ScriptedServer } from "../../test/helpers/scripted-server.ts";

export function benchProblems(n: number): ProblemRef[] {
  const rng = new Rng(2024);
  return Array.from({ length: n }, (_, i) => {
    const a = 10 + rng.int(900);
    const b = 10 + rng.int(900);
    return {
      id: `bench_${String(i + 1).padStart(3, "0")}`,
      text: `Problem ${i + 1}: what is ${a} plus ${b}?`,
      answer: String(a + b),
    };
  });
}

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

export function benchResponder(problems: readonly ProblemRef[]): Responder {
  let scaffoldCount = 0;
  let extractCount = 0;
  return ({ messages }) => {
    const prompt = String(messages[0]?.content ?? "");
    if (prompt.startsWith("TASK: CAUSAL SCAFFOLD")) {
      const p = problems.find((q) => prompt.includes(q.text))!;
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
  };
}

/**
 * What a server reports to the bench: its requests' arrival times, the most in flight, and the
 * mean of its finished requests' times of arrival (headers in) and of reply (last byte out),
 * comparable with the client's own clock (see RecordedRequest): their difference is how long
 * the server held a request, and a call's slot time less that is the client's own share.
 */
export function serverStats(s: ScriptedServer): ServerStats {
  let received = 0;
  let replied = 0;
  let n = 0;
  for (const r of s.requests)
    if (r.repliedAt !== undefined) {
      received += r.receivedAt;
      replied += r.repliedAt;
      n++;
    }
  return {
    requests: s.requests.map((r) => r.at),
    maxInFlight: s.maxInFlight,
    meanReceivedAt: received / n,
    meanRepliedAt: replied / n,
  };
}

export interface ServerStats {
  requests: number[];
  maxInFlight: number;
  meanReceivedAt: number;
  meanRepliedAt: number;
  /** The server process's CPU time since the last reset (process server only). */
  cpuMs?: number;
}
