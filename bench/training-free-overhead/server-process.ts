/**
 * The scripted server in a process of its own, so that none of its CPU is charged to the bench
 * (a worker thread's CPU counts in its process's cpuUsage). Same messages as server-worker.ts,
 * over the IPC channel: argv problems and latency in; {baseURL} out; "stats" (with the server's CPU time since the
 * last reset, `cpuMs`), "reset", "close".
 */
import { startScriptedServer } from "../../test/helpers/scripted-server.ts";
import { benchProblems, benchResponder, serverStats } from "./script.ts";

const problems = Number(process.argv[2]);
const latencyMs = Number(process.argv[3]);
const server = await startScriptedServer(benchResponder(benchProblems(problems)), { latencyMs });
await fetch(`${server.baseURL}/chat/completions`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "warm-up", messages: [{ role: "user", content: "TASK: LOGIC JUDGE" }] }),
}).then((r) => r.text());
server.requests.length = 0;
// The server's own CPU since the last reset: on a machine with few cores, it is what the client
// competes with for the CPU.
let cpu0 = process.cpuUsage();
process.send!({ baseURL: server.baseURL });
process.on("message", async (msg: string) => {
  if (msg === "stats") {
    const cpu = process.cpuUsage(cpu0);
    process.send!({
      ...serverStats(server),
      cpuMs: (cpu.user + cpu.system) / 1000,
    });
  } else if (msg === "reset") {
    server.requests.length = 0;
    cpu0 = process.cpuUsage();
    process.send!("reset");
  } else if (msg === "close") {
    await server.close();
    process.disconnect();
  }
});
