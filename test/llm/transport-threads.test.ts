/**
 * Requests sent from transport threads behave as requests sent from the main thread: the same
 * replies, the same failures by kind and message, the same retries, aborts that stop the call,
 * a thread that dies costing a retry and nothing else, and a process that exits once idle.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type AgentEndpoint, LLMClient, type LLMClientDeps, TransportThreads } from "../../src/llm/index.ts";
import { startChild } from "../helpers/child.ts";
import { llmFailure } from "../helpers/llm-error.ts";
import { scriptedServers, startScriptedServer } from "../helpers/scripted-server.ts";

const serve = scriptedServers();
const threads = new TransportThreads(2);
after(() => threads.close());

function endpoint(baseURL: string, over: Partial<AgentEndpoint> = {}): AgentEndpoint {
  return {
    agent: "generator_1",
    baseURL,
    model: "test-model",
    apiKey: "sk-secret-value",
    maxConcurrency: 8,
    timeoutMs: 5000,
    maxRetries: 2,
    ...over,
  };
}

const user = (content: string) => [{ role: "user" as const, content }];

/** The same client twice: requests sent here, and from the transport threads. */
function bothWays(e: AgentEndpoint, deps: LLMClientDeps = {}): [string, LLMClient][] {
  return [
    ["main thread", new LLMClient(e, deps)],
    ["transport threads", new LLMClient(e, { ...deps, threads })],
  ];
}

describe("transport threads", () => {
  it("a reply, its usage and the request the server saw are the same from a thread", async () => {
    const server = await serve(() => ({
      content: "hello",
      usage: { prompt_tokens: 12, completion_tokens: 3 },
    }));
    for (const [how, client] of bothWays(endpoint(server.baseURL))) {
      const res = await client.chat(user("hi"), { temperature: 0.5, maxTokens: 9, seed: 4 });
      assert.equal(res.text, "hello", how);
      assert.deepEqual(res.usage, { promptTokens: 12, completionTokens: 3 }, how);
      assert.equal(client.stats().calls, 1, how);
    }
    const [a, b] = server.requests;
    assert.deepEqual(b!.body, a!.body);
    assert.equal(b!.headers.authorization, "Bearer sk-secret-value");
    assert.equal(b!.headers["user-agent"], a!.headers["user-agent"]);
  });

  it("failures keep their kind, message, status and retries across the thread boundary", async () => {
    const cases: [string, Parameters<typeof startScriptedServer>[0]][] = [
      ["401", () => ({ status: 401, content: "bad key sk-secret-value" })],
      ["404", () => ({ status: 404, content: "no such model" })],
      ["429", () => ({ status: 429, content: "slow down" })],
      ["500", () => ({ status: 500, content: "boom" })],
      ["malformed", () => ({ rawBody: "{not json" })],
      [
        "no choices",
        () => ({ rawBody: JSON.stringify({ id: "x", object: "chat.completion", choices: [] }) }),
      ],
    ];
    for (const [name, script] of cases) {
      const server = await serve(script);
      const seen = [];
      for (const [how, client] of bothWays(endpoint(server.baseURL), { sleep: async () => {} })) {
        const err = await llmFailure(client.chat(user("q")));
        seen.push({
          how,
          kind: err.kind,
          attempts: err.attempts,
          status: err.status,
          fatal: err.fatal,
          message: err.message,
        });
      }
      const [here, there] = seen;
      assert.deepEqual({ ...there, how: here!.how }, here, `${name}: main thread vs threads`);
      assert.ok(!there!.message.includes("sk-secret-value"), name);
    }
  });

  it("Retry-After reaches the backoff from a thread", async () => {
    let n = 0;
    const server = await serve(() =>
      n++ === 0 ? { status: 429, headers: { "retry-after": "2" } } : { content: "ok" },
    );
    const waits: number[] = [];
    const client = new LLMClient(endpoint(server.baseURL), {
      threads,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    assert.equal((await client.chat(user("q"))).text, "ok");
    assert.deepEqual(waits, [2000]);
  });

  it("a refused connection and a timeout are what they are on the main thread", async () => {
    const gone = await startScriptedServer([]);
    await gone.close();
    for (const [how, client] of bothWays(endpoint(gone.baseURL, { maxRetries: 0 }))) {
      const err = await llmFailure(client.chat(user("q")));
      assert.equal(err.kind, "network", how);
      assert.equal(err.fatal, true, how);
      assert.match(err.message, /connection refused/, how);
    }
    const hung = await serve(() => ({ hang: true }));
    for (const [how, client] of bothWays(endpoint(hung.baseURL, { maxRetries: 0, timeoutMs: 300 }))) {
      const err = await llmFailure(client.chat(user("q")));
      assert.equal(err.kind, "timeout", how);
    }
  });

  it("an abort stops a request in flight at once and rejects with its reason", async () => {
    const server = await serve(() => ({ hang: true }));
    const client = new LLMClient(endpoint(server.baseURL), { threads });
    const ac = new AbortController();
    const call = client.chat(user("q"), { signal: ac.signal });
    while (server.inFlight === 0) await new Promise((r) => setTimeout(r, 10));
    const reason = new Error("stop now");
    ac.abort(reason);
    await assert.rejects(call, (err) => err === reason);
    // the thread dropped the request: the server sees its connection close
    for (let i = 0; i < 100 && server.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.inFlight, 0);
  });

  it("a thread that dies fails its requests as network errors, which are retried on a new thread", async () => {
    const own = new TransportThreads(1);
    try {
      let n = 0;
      const server = await serve(() =>
        n++ === 0 ? { delayMs: 400, content: "late" } : { content: "again" },
      );
      const client = new LLMClient(endpoint(server.baseURL), { threads: own, sleep: async () => {} });
      const call = client.chat(user("q"));
      while (server.inFlight === 0) await new Promise((r) => setTimeout(r, 10));
      // biome-ignore lint/suspicious/noExplicitAny: reaching the worker is the point of this test
      await (own as any).threads[0].worker.terminate();
      const res = await call;
      assert.equal(res.text, "again");
      assert.equal(res.attempts, 2);
      assert.equal(client.stats().byKind.network, 1);
    } finally {
      await own.close();
    }
  });

  it("an idle process with transport threads exits by itself", async () => {
    const server = await serve(() => ({ content: "done" }));
    const dir = mkdtempSync(join(tmpdir(), "transport-threads-"));
    try {
      const script = join(dir, "main.mts");
      const src = new URL("../../src/llm/index.ts", import.meta.url).href;
      writeFileSync(
        script,
        `import { LLMClient, TransportThreads } from ${JSON.stringify(src)};
const c = new LLMClient({ agent: "critic", baseURL: ${JSON.stringify(server.baseURL)}, model: "m", apiKey: "k",
  maxConcurrency: 2, timeoutMs: 5000, maxRetries: 0 }, { threads: new TransportThreads(1) });
console.log((await c.chat([{ role: "user", content: "q" }])).text);
`,
      );
      const { done } = startChild(process.execPath, ["--import", "tsx", script]);
      const out = await done;
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.trim(), "done");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a size that is not a positive integer", () => {
    assert.throws(() => new TransportThreads(0), /positive integer, got 0/);
    assert.throws(() => new TransportThreads(1.5), /positive integer, got 1.5/);
  });
});
