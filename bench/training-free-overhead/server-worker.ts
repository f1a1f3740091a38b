/**
 * The scripted server in its own thread. A real LLM endpoint does not share the client's event
 * loop; in-process, the server's parsing and timers would be charged to the pipeline.
 *
 * Messages: in ← workerData {problems, latencyMs}; out → {baseURL}; in ← "stats" → out
 * ServerStats (script.ts); in ← "reset" → the record is cleared, out → "reset";
 * in ← "close" → the server closes and the thread ends.
 */
import { parentPort, workerData } from "node:worker_threads";
import { startScriptedServer } from "../../test/helpers/scripted-server.ts";
import { benchProblems, benchResponder, serverStats } from "./script.ts";

const { problems, latencyMs } = workerData as { problems: number; latencyMs: number };
const server = await startScriptedServer(benchResponder(benchProblems(problems)), { latencyMs });
// A served endpoint is warm: one request of its own compiles the server's request path before
// the bench starts its clock. It is not counted among the bench's requests.
await fetch(`${server.baseURL}/chat/completions`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "warm-up", messages: [{ role: "user", content: "TASK: LOGIC JUDGE" }] }),
}).then((r) => r.text());
server.requests.length = 0;
parentPort!.postMessage({ baseURL: server.baseURL });
parentPort!.on("message", async (msg: string) => {
  if (msg === "stats") {
    parentPort!.postMessage(serverStats(server));
  } else if (msg === "reset") {
    server.requests.length = 0;
    parentPort!.postMessage("reset");
  } else if (msg === "close") {
    await server.close();
    parentPort!.close();
  }
});
