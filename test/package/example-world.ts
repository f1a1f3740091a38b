/**
 * The scripted endpoint the examples run against: it answers the agents of examples/ (right at
 * even seeds, wrong at odd ones, so that groups disagree and the learner is asked) and the
 * learner's default prompts, and the AI SDK example's tool calls. Replies follow from the request
 * alone. `node --import tsx test/package/example-world.ts` starts it on its own and prints its URL.
 */
import type { ChatMessage } from "../../src/llm/port.ts";
import { type ScriptedReply, type ScriptedServer, startScriptedServer } from "../helpers/scripted-server.ts";
import { learnerStep } from "../training-free/scripted-world.ts";

/** The examples' tasks, by a phrase of their question: the expression the tool should get, and the answer. */
const TOOL_TASKS: [string, string][] = [
  ["A crate holds 24 boxes", "24 * 36 * 17"],
  ["15% of 2460", "0.15 * 2460 + 7 * 89"],
  ["A loan of 12000", "12000 + 12000 * 0.05 * 3"],
  ["seconds are there in 6 weeks", "6 * 7 * 24 * 3600"],
];
const QA_ANSWERS: [string, string][] = [
  ["150 km in 2.5 hours", "60"],
  ["minutes are there in 3 days", "4320"],
  ["$40 after a 20% discount", "50"],
  ["integers from 1 to 40", "820"],
  ["Three pumps fill a tank", "9"],
  ["positive divisors does 360", "24"],
];

function text(m: { content?: unknown }): string {
  if (typeof m.content === "string") return m.content;
  if (Array.isArray(m.content)) return m.content.map((p: { text?: string }) => p.text ?? "").join("");
  return "";
}

function learnerReply(messages: ChatMessage[]): ScriptedReply {
  const step = learnerStep(messages);
  if (step === "summarise")
    return { content: "The attempt computed the result in one pass without checking it." };
  if (step === "contrast")
    return {
      content:
        "Better attempts checked.\n<lessons>\n1. Recheck: redo each computation before answering.\n</lessons>",
    };
  if (step === "propose")
    return {
      content:
        '[{"operation": "ADD", "id": null, "content": "Recheck: redo each computation before answering."}]',
    };
  if (step === "merge")
    return {
      content:
        '[{"operation": "ADD", "id": null, "content": "Recheck: redo each computation before answering."}]',
    };
  return { content: "[]" };
}

// biome-ignore lint/suspicious/noExplicitAny: the request body is whatever the SDKs send
export function exampleReply(body: any): ScriptedReply {
  const messages = (body.messages ?? []) as ChatMessage[];
  const system = text(messages[0] ?? {});
  const user = text(messages.find((m) => m.role === "user") ?? {});
  const seed = Number(body.seed ?? 0);
  const right = seed % 2 === 0 || system.includes("Recheck:");
  if (system.includes("Use the calculate tool")) {
    const task = TOOL_TASKS.find(([phrase]) => user.includes(phrase));
    if (!task) return { status: 400, content: `unknown task: ${user}` };
    const toolResult = [...messages].reverse().find((m) => (m.role as string) === "tool");
    if (!toolResult)
      return {
        content: "",
        toolCalls: [{ name: "calculate", arguments: JSON.stringify({ expression: task[1] }) }],
      };
    const value = Number(/"value":\s*(-?[\d.]+)/.exec(text(toolResult))?.[1]);
    return { content: String(right ? value : value + 1) };
  }
  if (system.includes("Solve the problem step by step")) {
    const qa = QA_ANSWERS.find(([phrase]) => user.includes(phrase));
    if (!qa) return { status: 400, content: `unknown question: ${user}` };
    return { content: `Working it out… \\boxed{${right ? qa[1] : Number(qa[1]) + 1}}` };
  }
  if (system.includes("Solve the math problem")) {
    const answer = /answer is (\d+)/.exec(user)?.[1] ?? "0";
    return { content: `\\boxed{${right ? answer : Number(answer) + 1}}` };
  }
  return learnerReply(messages);
}

export function startExampleServer(): Promise<ScriptedServer> {
  return startScriptedServer(({ body }) => exampleReply(body));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startExampleServer();
  process.stdout.write(`${server.baseURL}\n`);
}
