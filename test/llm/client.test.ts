import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { type AgentEndpoint, createClients, LLMClient, retryAfterMs } from "../../src/llm/index.ts";
import { llmFailure } from "../helpers/llm-error.ts";
import { scriptedServers, startScriptedServer } from "../helpers/scripted-server.ts";

const serve = scriptedServers();

function endpoint(baseURL: string, over: Partial<AgentEndpoint> = {}): AgentEndpoint {
  return {
    agent: "generator_1",
    baseURL,
    model: "test-model",
    apiKey: "sk-test",
    apiKeySource: "env TEST_KEY",
    maxConcurrency: 8,
    timeoutMs: 5000,
    maxRetries: 4,
    ...over,
  };
}

/** Records requested waits and returns at once, so backoff costs no wall time. */
function fakeSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

const user = (content: string) => [{ role: "user" as const, content }];

describe("LLMClient over HTTP", () => {
  it("returns the reply and accounts tokens and cost", async () => {
    const server = await serve([
      { content: "hello", usage: { prompt_tokens: 1200, completion_tokens: 300 } },
    ]);
    const { sleep, waits } = fakeSleep();
    const client = new LLMClient(
      endpoint(server.baseURL, { pricing: { inputPerMTok: 2, outputPerMTok: 8 } }),
      { sleep },
    );
    const res = await client.chat(
      [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
      { temperature: 0.7, maxTokens: 64, responseFormatJson: true },
    );
    assert.equal(res.text, "hello");
    assert.equal(res.value, "hello");
    assert.equal(res.attempts, 1);
    assert.deepEqual(res.usage, { promptTokens: 1200, completionTokens: 300 });
    assert.deepEqual(waits, []);

    const req = server.requests[0]!;
    assert.equal(req.body.model, "test-model");
    assert.deepEqual(req.body.messages, [
      { role: "system", content: "be brief" },
      { role: "user", content: "hi" },
    ]);
    assert.equal(req.body.temperature, 0.7);
    assert.equal(req.body.max_tokens, 64);
    assert.deepEqual(req.body.response_format, { type: "json_object" });
    assert.equal(req.headers.authorization, "Bearer sk-test");
    assert.match(String(req.headers["user-agent"]), /^OpenAI\/JS /);
    // the SDK's telemetry headers are built per request for nothing an endpoint reads
    assert.deepEqual(
      Object.keys(req.headers).filter((h) => h.startsWith("x-stainless")),
      [],
    );

    const stats = client.stats();
    assert.equal(stats.calls, 1);
    assert.equal(stats.failedCalls, 0);
    assert.equal(stats.retries, 0);
    assert.equal(stats.promptTokens, 1200);
    assert.equal(stats.completionTokens, 300);
    // (1200·2 + 300·8) / 1e6 = 4800 / 1e6
    assert.ok(Math.abs(stats.costUSD - 0.0048) < 1e-12, `cost ${stats.costUSD}`);
    assert.equal(stats.agent, "generator_1");
    assert.equal(stats.model, "test-model");
  });

  it("omits optional request fields that were not asked for, and costs 0 without pricing", async () => {
    const server = await serve([{ content: "x", usage: { prompt_tokens: 5, completion_tokens: 1 } }]);
    const client = new LLMClient(endpoint(server.baseURL));
    await client.chat(user("q"));
    const body = server.requests[0]!.body;
    assert.equal("temperature" in body, false);
    assert.equal("max_tokens" in body, false);
    assert.equal("response_format" in body, false);
    assert.equal(client.stats().costUSD, 0);
  });

  it("retries a 429, honouring Retry-After, then succeeds", async () => {
    const server = await serve([
      { status: 429, content: "slow down", headers: { "retry-after": "2" } },
      { status: 429, content: "slow down", headers: { "retry-after-ms": "350" } },
      { status: 429, content: "slow down" },
      { content: "ok", usage: { prompt_tokens: 3, completion_tokens: 1 } },
    ]);
    const { sleep, waits } = fakeSleep();
    const client = new LLMClient(endpoint(server.baseURL), { sleep, baseBackoffMs: 100, rng: new Rng(1) });
    const res = await client.chat(user("q"));
    assert.equal(res.text, "ok");
    assert.equal(res.attempts, 4);
    assert.equal(server.requests.length, 4);
    assert.equal(waits.length, 3);
    assert.equal(waits[0], 2000);
    assert.equal(waits[1], 350);
    // Without a header: full jitter in [0, 100·2²).
    assert.ok(waits[2]! >= 0 && waits[2]! < 400, `jittered wait ${waits[2]}`);
    const stats = client.stats();
    assert.equal(stats.retries, 3);
    assert.equal(stats.byKind.rate_limit, 3);
    assert.equal(stats.failedCalls, 0);
  });

  it("gives up on 5xx after maxRetries+1 attempts with kind server", async () => {
    const server = await serve(Array.from({ length: 5 }, () => ({ status: 500, content: "boom" })));
    const { sleep, waits } = fakeSleep();
    const client = new LLMClient(endpoint(server.baseURL, { maxRetries: 4 }), {
      sleep,
      baseBackoffMs: 100,
      maxBackoffMs: 250,
      rng: new Rng(7),
    });
    const err = await llmFailure(client.chat(user("q")));
    assert.equal(err.kind, "server");
    assert.equal(err.attempts, 5);
    assert.equal(err.status, 500);
    assert.equal(err.agent, "generator_1");
    assert.match(err.message, /generator_1/);
    assert.match(err.message, /5 attempts/);
    assert.equal(server.requests.length, 5);
    // Exponential ceilings 100, 200, 400→250, 800→250 (capped by maxBackoffMs).
    const ceilings = [100, 200, 250, 250];
    assert.equal(waits.length, 4);
    for (const [i, w] of waits.entries()) assert.ok(w >= 0 && w < ceilings[i]!, `wait ${i} = ${w}`);
    const stats = client.stats();
    assert.equal(stats.calls, 1);
    assert.equal(stats.failedCalls, 1);
    assert.equal(stats.retries, 4);
    assert.equal(stats.byKind.server, 5);
  });

  it("jitter comes from the injected Rng: the same seed gives the same waits", async () => {
    const run = async () => {
      const server = await serve(Array.from({ length: 4 }, () => ({ status: 503 })));
      const { sleep, waits } = fakeSleep();
      const client = new LLMClient(endpoint(server.baseURL, { maxRetries: 3 }), { sleep, rng: new Rng(42) });
      await llmFailure(client.chat(user("q")));
      return waits;
    };
    const a = await run();
    const b = await run();
    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, a.length, "waits should differ between attempts");
  });

  it("times out a hanging reply after timeoutMs and retries it", async () => {
    const server = await serve([{ hang: true }, { hang: true }]);
    const client = new LLMClient(endpoint(server.baseURL, { timeoutMs: 200, maxRetries: 1 }), {
      sleep: fakeSleep().sleep,
    });
    const t0 = Date.now();
    const err = await llmFailure(client.chat(user("q")));
    const elapsed = Date.now() - t0;
    assert.equal(err.kind, "timeout");
    assert.equal(err.attempts, 2);
    assert.match(err.message, /200 ms/);
    // The client's own count: on a starved machine the second request may be timed out before the
    // server has read it, so the server's count is not the client's.
    assert.equal(client.stats().byKind.timeout, 2);
    assert.ok(server.requests.length >= 1);
    assert.ok(elapsed >= 380, `each attempt waited its 200 ms (elapsed ${elapsed} ms)`);
  });

  it("recovers when a timed-out request is followed by an answer", async () => {
    const server = await serve([{ hang: true }, { content: "late but fine" }]);
    const client = new LLMClient(endpoint(server.baseURL, { timeoutMs: 200 }), { sleep: fakeSleep().sleep });
    const res = await client.chat(user("q"));
    assert.equal(res.text, "late but fine");
    assert.equal(res.attempts, 2);
  });

  it("retries a malformed JSON body and then fails clearly", async () => {
    const server = await serve([
      { rawBody: "{not json" },
      { rawBody: '{"no_choices": true}' },
      { rawBody: "[1, 2" },
    ]);
    const client = new LLMClient(endpoint(server.baseURL, { maxRetries: 2 }), { sleep: fakeSleep().sleep });
    const err = await llmFailure(client.chat(user("q")));
    assert.equal(err.kind, "server");
    assert.equal(err.attempts, 3);
    assert.match(err.message, /malformed response body/);
    assert.equal(server.requests.length, 3);
  });

  it("recovers from a malformed body when the next reply is valid", async () => {
    const server = await serve([{ rawBody: "<html>bad gateway</html>" }, { content: "fine" }]);
    const client = new LLMClient(endpoint(server.baseURL), { sleep: fakeSleep().sleep });
    const res = await client.chat(user("q"));
    assert.equal(res.text, "fine");
    assert.equal(res.attempts, 2);
  });

  it("retries a reply the parser rejects, counting its tokens, then returns the parsed value", async () => {
    const server = await serve([
      { content: "Sure! Here is the score: high", usage: { prompt_tokens: 10, completion_tokens: 7 } },
      { content: '{"score": 0.5}', usage: { prompt_tokens: 10, completion_tokens: 4 } },
    ]);
    const client = new LLMClient(endpoint(server.baseURL), { sleep: fakeSleep().sleep });
    const parse = (text: string) => {
      const v = JSON.parse(text) as { score?: unknown };
      if (typeof v.score !== "number") throw new Error("score missing");
      return v.score;
    };
    const res = await client.chat(user("judge"), { parse });
    assert.equal(res.value, 0.5);
    assert.equal(res.text, '{"score": 0.5}');
    assert.equal(res.attempts, 2);
    assert.deepEqual(res.usage, { promptTokens: 20, completionTokens: 11 });
    const stats = client.stats();
    assert.equal(stats.promptTokens, 20);
    assert.equal(stats.completionTokens, 11);
    assert.equal(stats.byKind.schema, 1);
  });

  it("fails with kind schema when every reply is rejected, naming the parser's complaint", async () => {
    const server = await serve(
      Array.from({ length: 2 }, () => ({
        content: "nope",
        usage: { prompt_tokens: 2, completion_tokens: 1 },
      })),
    );
    const client = new LLMClient(endpoint(server.baseURL, { maxRetries: 1 }), { sleep: fakeSleep().sleep });
    const err = await llmFailure(
      client.chat(user("q"), {
        parse: () => {
          throw new Error("expected a JSON object with field scores");
        },
      }),
    );
    assert.equal(err.kind, "schema");
    assert.equal(err.attempts, 2);
    assert.match(err.message, /expected a JSON object with field scores/);
    assert.equal(client.stats().promptTokens, 4, "tokens of rejected replies still count");
  });

  it("does not retry 401 and names the agent and the key source", async () => {
    const server = await serve([
      { status: 401, content: "Incorrect API key provided" },
      { content: "never" },
    ]);
    const client = new LLMClient(endpoint(server.baseURL, { agent: "critic" }), { sleep: fakeSleep().sleep });
    const err = await llmFailure(client.chat(user("q")));
    assert.equal(err.kind, "auth");
    assert.equal(err.attempts, 1);
    assert.equal(err.status, 401);
    assert.equal(err.agent, "critic");
    assert.match(err.message, /^critic: authentication failed \(HTTP 401/);
    assert.ok(err.message.includes(server.baseURL), "names the base URL");
    assert.match(err.message, /model test-model/);
    assert.match(err.message, /Fix: check api_key_env for critic in data\/api_keys\/api_config\.json/);
    assert.match(err.message, /\$TEST_KEY/);
    assert.equal(err.fatal, true);
    assert.doesNotMatch(err.message, /sk-test/, "the key itself must not leak into messages");
    assert.equal(server.requests.length, 1);
  });

  for (const [status, kind] of [
    [400, "bad_request"],
    [403, "auth"],
    [404, "not_found"],
  ] as const) {
    it(`does not retry HTTP ${status} (kind ${kind})`, async () => {
      const server = await serve([{ status, content: "no" }, { content: "never" }]);
      const client = new LLMClient(endpoint(server.baseURL), { sleep: fakeSleep().sleep });
      const err = await llmFailure(client.chat(user("q")));
      assert.equal(err.kind, kind);
      assert.equal(err.attempts, 1);
      assert.equal(server.requests.length, 1);
    });
  }

  it("reports network errors when nothing listens, after retrying", async () => {
    const gone = await startScriptedServer([]);
    await gone.close();
    const client = new LLMClient(endpoint(gone.baseURL, { maxRetries: 2 }), { sleep: fakeSleep().sleep });
    const err = await llmFailure(client.chat(user("q")));
    assert.equal(err.kind, "network");
    assert.equal(err.attempts, 3);
  });

  it("never has more than maxConcurrency requests in flight", async () => {
    const server = await serve(() => ({ content: "ok", delayMs: 80 }));
    const client = new LLMClient(endpoint(server.baseURL, { maxConcurrency: 3 }));
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => client.chat(user(`q${i}`))));
    const elapsed = Date.now() - t0;
    assert.equal(results.length, 10);
    assert.equal(server.requests.length, 10);
    assert.ok(server.maxInFlight <= 3, `server saw ${server.maxInFlight} at once`);
    assert.equal(server.maxInFlight, 3, "the limit should also be used, not undershot");
    assert.equal(client.limiter.peak, 3);
    // ⌈10/3⌉ = 4 waves of ≥ 80 ms each.
    assert.ok(elapsed >= 310, `elapsed ${elapsed} ms`);
  });

  it("frees its concurrency slot while backing off", async () => {
    const server = await serve(({ messages }) =>
      messages[0]!.content === "flaky" && server.requests.length === 1 ? { status: 503 } : { content: "ok" },
    );
    let release!: () => void;
    const backoff = new Promise<void>((r) => {
      release = r;
    });
    const client = new LLMClient(endpoint(server.baseURL, { maxConcurrency: 1 }), { sleep: () => backoff });
    const flaky = client.chat(user("flaky"));
    while (server.requests.length < 1) await new Promise((r) => setTimeout(r, 5));
    // The flaky call is now parked in its backoff; another call must get through meanwhile.
    const other = await client.chat(user("other"));
    assert.equal(other.text, "ok");
    release();
    assert.equal((await flaky).attempts, 2);
    assert.equal(server.maxInFlight, 1);
  });

  it("lets the responder route by prompt content", async () => {
    const server = await serve(({ messages, model }) =>
      messages.some((m) => m.content.includes("judge"))
        ? { content: '{"score": 1}' }
        : { content: `scaffold from ${model}` },
    );
    const client = new LLMClient(endpoint(server.baseURL));
    assert.equal((await client.chat(user("please judge this"))).text, '{"score": 1}');
    assert.equal((await client.chat(user("write a scaffold"))).text, "scaffold from test-model");
  });

  it("rejects with the abort reason when the caller aborts, without retrying", async () => {
    const server = await serve([{ hang: true }, { content: "never" }]);
    const client = new LLMClient(endpoint(server.baseURL, { timeoutMs: 5000 }), { sleep: fakeSleep().sleep });
    const controller = new AbortController();
    const reason = new Error("stop requested");
    setTimeout(() => controller.abort(reason), 50);
    const t0 = Date.now();
    await assert.rejects(client.chat(user("q"), { signal: controller.signal }), (err) => err === reason);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(server.requests.length, 1);
    assert.equal(client.stats().failedCalls, 0, "an abort is not an endpoint failure");
  });

  it("sends every later request with the headers the SDK built for the first", async () => {
    const server = await serve(() => ({ content: "ok" }));
    const client = new LLMClient(endpoint(server.baseURL), { sleep: fakeSleep().sleep });
    await client.chat(user("first"), { temperature: 0 });
    await client.chat(user("second"), { temperature: 0.5, seed: 7 });
    const [a, b] = server.requests;
    const sent = (h: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(h).filter(([k]) => k !== "content-length"));
    assert.deepEqual(sent(b!.headers), sent(a!.headers));
    assert.equal(b!.headers["content-type"], "application/json");
    assert.equal(b!.headers.authorization, "Bearer sk-test");
    assert.deepEqual(b!.body.messages, [{ role: "user", content: "second" }]);
    assert.equal(b!.body.seed, 7);
  });

  it("leaves no listener on a caller's signal that outlives its calls", async () => {
    const server = await serve(() => ({ content: "ok" }));
    const client = new LLMClient(endpoint(server.baseURL), { sleep: fakeSleep().sleep });
    const run = new AbortController();
    for (let i = 0; i < 5; i++) await client.chat(user(`q${i}`), { signal: run.signal });
    await assert.rejects(
      client.chat(user("q"), {
        signal: run.signal,
        parse: () => {
          throw new Error("no");
        },
      }),
    );
    // The SDK's own fetch path adds one per request and never removes it: a run signal shared by
    // thousands of calls would hold them all, and each add scans the list.
    assert.equal(getEventListeners(run.signal, "abort").length, 0);
  });

  it("stops a backoff wait when the caller aborts", async () => {
    const server = await serve([{ status: 503 }, { content: "never" }]);
    const controller = new AbortController();
    const reason = new Error("shutting down");
    // The abort comes while the client waits out its backoff (a wait that never ends by itself).
    const client = new LLMClient(endpoint(server.baseURL), {
      sleep: () => {
        setImmediate(() => controller.abort(reason));
        return new Promise<void>(() => {});
      },
    });
    await assert.rejects(client.chat(user("q"), { signal: controller.signal }), (err) => err === reason);
    assert.equal(server.requests.length, 1);
  });

  it("createClients builds one client per agent with its own limiter", async () => {
    const server = await serve(() => ({ content: "ok" }));
    const base = endpoint(server.baseURL);
    const config = {
      generator_1: { ...base, agent: "generator_1" as const, maxConcurrency: 1 },
      generator_2: { ...base, agent: "generator_2" as const, maxConcurrency: 2 },
      generator_3: { ...base, agent: "generator_3" as const, model: "other" },
      critic: { ...base, agent: "critic" as const },
    };
    const clients = createClients(config, { rng: new Rng(3) });
    assert.deepEqual(Object.keys(clients).sort(), ["critic", "generator_1", "generator_2", "generator_3"]);
    assert.notEqual(clients.generator_1.limiter, clients.generator_2.limiter);
    await clients.generator_3.chat(user("q"));
    assert.equal(server.requests[0]!.body.model, "other");
    assert.equal(clients.generator_3.stats().agent, "generator_3");
    assert.equal(clients.critic.stats().calls, 0);
  });
});

describe("retryAfterMs", () => {
  const h = (init: Record<string, string>) => new Headers(init);
  it("reads seconds, milliseconds and HTTP dates", () => {
    assert.equal(retryAfterMs(h({ "retry-after": "3" })), 3000);
    assert.equal(retryAfterMs(h({ "retry-after": "0.5" })), 500);
    assert.equal(retryAfterMs(h({ "retry-after-ms": "120", "retry-after": "9" })), 120);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(retryAfterMs(h({ "retry-after": "Thu, 01 Jan 2026 00:00:05 GMT" }), now), 5000);
  });
  it("ignores absent, negative and garbage values", () => {
    assert.equal(retryAfterMs(undefined), undefined);
    assert.equal(retryAfterMs(h({})), undefined);
    assert.equal(retryAfterMs(h({ "retry-after": "-1" })), undefined);
    assert.equal(retryAfterMs(h({ "retry-after": "soon" })), undefined);
  });
});
