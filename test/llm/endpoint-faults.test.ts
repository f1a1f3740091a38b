/**
 * What a real endpoint does that a well-behaved one does not: wrong keys, wrong paths, nothing
 * listening, replicas that go down, reasoning models and servers without response_format.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import { type AgentEndpoint, LLMClient, splitReasoning, type UsageStats } from "../../src/llm/index.ts";
import { llmFailure } from "../helpers/llm-error.ts";
import { scriptedServers, startScriptedServer } from "../helpers/scripted-server.ts";

const serve = scriptedServers();

/** A base URL with nothing listening: a server started and closed again. */
async function deadURL(): Promise<string> {
  const gone = await startScriptedServer([]);
  await gone.close();
  return gone.baseURL;
}

function endpoint(baseURL: string, over: Partial<AgentEndpoint> = {}): AgentEndpoint {
  return {
    agent: "generator_2",
    baseURL,
    model: "test-model",
    apiKey: "sk-secret-value",
    apiKeySource: "env G2_KEY",
    apiKeyField: "agents.generator_2.api_key_env",
    configPath: "/work/data/api_keys/api_config.json",
    maxConcurrency: 8,
    timeoutMs: 5000,
    maxRetries: 2,
    ...over,
  };
}

const noSleep = { sleep: async () => {} };
const user = (content: string) => [{ role: "user" as const, content }];

describe("fatal endpoint errors say what to fix in one line", () => {
  it("401: agent, base URL, model, cause and the setting to check; the key is never printed, even when echoed", async () => {
    const server = await serve([{ status: 401, content: "Incorrect API key provided: sk-secret-value" }]);
    const err = await llmFailure(new LLMClient(endpoint(server.baseURL), noSleep).chat(user("q")));
    assert.equal(err.kind, "auth");
    assert.equal(err.fatal, true);
    assert.equal(err.baseURL, server.baseURL);
    assert.equal(err.message.includes("\n"), false, "one line");
    assert.ok(err.message.startsWith("generator_2: authentication failed (HTTP 401"));
    assert.ok(err.message.includes(`at ${server.baseURL} (model test-model)`));
    assert.ok(
      err.message.endsWith(
        "Fix: check api_key_env for generator_2 in /work/data/api_keys/api_config.json (the key comes from $G2_KEY)",
      ),
      err.message,
    );
    assert.equal(err.message.includes("sk-secret-value"), false, err.message);
    assert.equal(server.requests.length, 1, "not retried");
  });

  it("403 with an inline key points at api_key", async () => {
    const server = await serve([{ status: 403, content: "forbidden" }]);
    const err = await llmFailure(
      new LLMClient(
        endpoint(server.baseURL, {
          apiKeySource: "agents.critic.api_key in f",
          apiKeyField: "agents.critic.api_key",
          agent: "critic",
        }),
        noSleep,
      ).chat(user("q")),
    );
    assert.equal(err.fatal, true);
    assert.match(err.message, /Fix: check api_key for critic in /);
  });

  it("404 (a wrong model or path) is fatal and names base_url and model", async () => {
    const server = await serve([{ status: 404, content: "The model `nope` does not exist" }]);
    const err = await llmFailure(new LLMClient(endpoint(server.baseURL), noSleep).chat(user("q")));
    assert.equal(err.kind, "not_found");
    assert.equal(err.fatal, true);
    assert.match(err.message, /^generator_2: not found \(HTTP 404: .*does not exist\) at http/);
    assert.match(
      err.message,
      /Fix: check base_url .* and model for generator_2 in \/work\/data\/api_keys\/api_config\.json$/,
    );
  });

  it("a refused connection is fatal once the retries are spent", async () => {
    const url = await deadURL();
    const err = await llmFailure(new LLMClient(endpoint(url), noSleep).chat(user("q")));
    assert.equal(err.kind, "network");
    assert.equal(err.attempts, 3);
    assert.equal(err.fatal, true);
    assert.equal(
      err.message,
      `generator_2: connection refused after 3 attempts at ${url} (model test-model). Fix: start the server at ${url}, or correct base_url for generator_2 in /work/data/api_keys/api_config.json`,
    );
  });

  it("a port fetch refuses (9, 6000, …) is fatal and says so, when the client is given fetch", async () => {
    const client = new LLMClient(endpoint("http://127.0.0.1:9/v1"), { ...noSleep, fetch: globalThis.fetch });
    const err = await llmFailure(client.chat(user("q")));
    assert.equal(err.fatal, true);
    assert.match(
      err.message,
      /^generator_2: fetch refuses this port .* after 3 attempts at http:\/\/127\.0\.0\.1:9\/v1 .*Fix: serve the endpoint on another port/,
    );
    // The client's own transport has no such list: nothing listens there, so the connection is refused.
    const own = await llmFailure(new LLMClient(endpoint("http://127.0.0.1:9/v1"), noSleep).chat(user("q")));
    assert.equal(own.fatal, true);
    assert.match(own.message, /^generator_2: connection refused/);
  });

  it("exhausted 429s and 5xx are failures, not fatal: the endpoint works, it is busy", async () => {
    const server = await serve(() => ({ status: 429, content: "slow down" }));
    const err = await llmFailure(new LLMClient(endpoint(server.baseURL), noSleep).chat(user("q")));
    assert.equal(err.kind, "rate_limit");
    assert.equal(err.fatal, false);
    assert.equal(server.requests.length, 3);
  });
});

describe("replicas", () => {
  it("one replica down: every call succeeds on the other, with no backoff wait, and the dead one is skipped", async () => {
    const live = await serve(() => ({ content: "ok", delayMs: 5 }));
    const dead = await deadURL();
    const waits: number[] = [];
    const client = new LLMClient(endpoint(dead, { baseURLs: [dead, live.baseURL], maxRetries: 1 }), {
      sleep: async (ms) => void waits.push(ms),
    });
    // the first call goes to the first replica (both idle), fails there and is retried on the other
    assert.equal((await client.chat(user("first"))).text, "ok");
    const replies = await Promise.all(Array.from({ length: 11 }, () => client.chat(user("q"))));
    assert.ok(replies.every((r) => r.text === "ok"));
    assert.equal(live.requests.length, 12);
    const stats = client.stats();
    assert.equal(stats.failedCalls, 0);
    assert.equal(stats.byKind.network, 1, "tried once, then skipped");
    assert.deepEqual(waits, [], "a retry on another replica does not back off");
    assert.deepEqual(client.unhealthyReplicas(), [dead]);
  });

  it("requests spread by least in-flight; a failed replica comes back after its cooldown", async () => {
    let time = 1_000_000;
    let aFails = true;
    const a = await serve(() => (aFails ? { status: 503, content: "down" } : { content: "a", delayMs: 20 }));
    const b = await serve(() => ({ content: "b", delayMs: 20 }));
    const client = new LLMClient(endpoint(a.baseURL, { baseURLs: [a.baseURL, b.baseURL] }), {
      ...noSleep,
      replicaCooldownMs: 1000,
      now: () => time,
    });
    await client.chat(user("first"));
    assert.equal(a.requests.length, 1, "the 503 marks a down");
    assert.deepEqual(client.unhealthyReplicas(), [a.baseURL]);
    await Promise.all(Array.from({ length: 4 }, () => client.chat(user("q"))));
    assert.equal(a.requests.length, 1, "skipped during its cooldown");
    aFails = false;
    time += 1001;
    const texts = (await Promise.all(Array.from({ length: 10 }, () => client.chat(user("q"))))).map(
      (r) => r.text,
    );
    assert.equal(
      texts.filter((t) => t === "a").length,
      5,
      "least in-flight alternates between two idle replicas",
    );
    assert.equal(texts.filter((t) => t === "b").length, 5);
    assert.deepEqual(client.unhealthyReplicas(), []);
  });

  it("all replicas refusing is fatal", async () => {
    const [d1, d2] = [await deadURL(), await deadURL()];
    const err = await llmFailure(
      new LLMClient(endpoint(d1, { baseURLs: [d1, d2] }), noSleep).chat(user("q")),
    );
    assert.equal(err.fatal, true);
    assert.match(err.message, /connection refused after 3 attempts/);
  });
});

describe("reasoning models", () => {
  it("<think> text is not parsed as the answer, reasoning_content neither; their tokens count", async () => {
    const server = await serve([
      {
        content: '<think>Maybe {"overall": 0.1}? No.</think>\n{"overall": 0.9}',
        usage: { prompt_tokens: 10, completion_tokens: 500 },
      },
      {
        content: '{"overall": 0.7}',
        reasoning: 'thinking {"overall": 0.2}',
        usage: { prompt_tokens: 10, completion_tokens: 300 },
      },
      // cut off while thinking: no answer at all, so the parser rejects it and the call is retried
      { content: '<think>{"overall": 0.3} and then', usage: { prompt_tokens: 10, completion_tokens: 50 } },
      { content: '{"overall": 0.6}', usage: { prompt_tokens: 10, completion_tokens: 5 } },
    ]);
    const client = new LLMClient(
      endpoint(server.baseURL, { pricing: { inputPerMTok: 0, outputPerMTok: 1 } }),
      noSleep,
    );
    const parse = (t: string) => z.object({ overall: z.number() }).parse(JSON.parse(t)).overall;
    const first = await client.chat(user("judge"), { parse });
    assert.equal(first.value, 0.9);
    assert.equal(first.text, '{"overall": 0.9}');
    assert.match(first.reasoning!, /Maybe/);
    const second = await client.chat(user("judge"), { parse });
    assert.equal(second.value, 0.7);
    assert.equal(second.reasoning, 'thinking {"overall": 0.2}');
    const third = await client.chat(user("judge"), { parse });
    assert.equal(third.value, 0.6);
    assert.equal(third.attempts, 2);
    const stats = client.stats();
    assert.equal(stats.completionTokens, 855);
    assert.ok(Math.abs(stats.costUSD - 855e-6) < 1e-12);
  });

  it("splitReasoning: blocks, a missing opening tag, an unclosed block, plain text", () => {
    assert.deepEqual(splitReasoning("<think>a</think>b<think>c</think> d"), {
      answer: "b d",
      reasoning: "a\n\nc",
    });
    assert.deepEqual(splitReasoning("thoughts</think>\n42"), { answer: "42", reasoning: "thoughts" });
    assert.deepEqual(splitReasoning("x <think>never finished"), { answer: "x", reasoning: "never finished" });
    assert.deepEqual(splitReasoning("no thinking here"), { answer: "no thinking here" });
  });
});

describe("response_format", () => {
  it("a server that rejects response_format with 400 is asked again without it, and remembered", async () => {
    const server = await serve(({ body }) =>
      body.response_format ? { status: 400, content: "response_format is not supported" } : { content: "{}" },
    );
    const warnings: string[] = [];
    const client = new LLMClient(endpoint(server.baseURL), { ...noSleep, warn: (l) => warnings.push(l) });
    assert.equal((await client.chat(user("a"), { responseFormatJson: true })).text, "{}");
    assert.equal((await client.chat(user("b"), { responseFormatJson: true })).text, "{}");
    assert.deepEqual(
      server.requests.map((r) => "response_format" in r.body),
      [true, false, false],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /generator_2: .* rejects response_format/);
    assert.equal(client.stats().failedCalls, 0);
  });

  it("a 400 that persists without response_format is the request's fault and is not remembered", async () => {
    const server = await serve(() => ({ status: 400, content: "prompt too long" }));
    const client = new LLMClient(endpoint(server.baseURL), noSleep);
    const err = await llmFailure(client.chat(user("a"), { responseFormatJson: true }));
    assert.equal(err.kind, "bad_request");
    assert.equal(err.fatal, false);
    await llmFailure(client.chat(user("b"), { responseFormatJson: true }));
    assert.deepEqual(
      server.requests.map((r) => "response_format" in r.body),
      [true, false, true, false],
    );
  });

  it("JSON-schema structured output only where the endpoint opts in", async () => {
    const server = await serve(() => ({ content: '{"score": 1}' }));
    const json = {
      name: "fusion_judge",
      schema: { type: "object", properties: { score: { type: "number" } } },
    };
    await new LLMClient(endpoint(server.baseURL, { structuredOutput: "json_schema" }), noSleep).chat(
      user("a"),
      { json },
    );
    await new LLMClient(endpoint(server.baseURL, { structuredOutput: "json_object" }), noSleep).chat(
      user("b"),
      { json },
    );
    await new LLMClient(endpoint(server.baseURL), noSleep).chat(user("c"), { json });
    assert.deepEqual(server.requests[0]!.body.response_format, {
      type: "json_schema",
      json_schema: { name: "fusion_judge", schema: json.schema, strict: false },
    });
    assert.deepEqual(server.requests[1]!.body.response_format, { type: "json_object" });
    assert.equal("response_format" in server.requests[2]!.body, false);
  });
});

describe("usage as it accrues", () => {
  it("onCall reports every finished call, failed ones included; the reports add up to stats()", async () => {
    const server = await serve([
      { content: "a", usage: { prompt_tokens: 3, completion_tokens: 2 } },
      { status: 500 },
      { content: "b", usage: { prompt_tokens: 4, completion_tokens: 1 } },
      { status: 401 },
    ]);
    const calls: UsageStats[] = [];
    const client = new LLMClient(endpoint(server.baseURL), { ...noSleep, onCall: (u) => calls.push(u) });
    await client.chat(user("1"));
    await client.chat(user("2"));
    await llmFailure(client.chat(user("3")));
    assert.equal(calls.length, 3);
    assert.deepEqual(
      calls.map((c) => [c.calls, c.failedCalls, c.retries, c.promptTokens, c.byKind.server, c.byKind.auth]),
      [
        [1, 0, 0, 3, 0, 0],
        [1, 0, 1, 4, 1, 0],
        [1, 1, 0, 0, 0, 1],
      ],
    );
    const s = client.stats();
    assert.equal(s.calls, 3);
    assert.equal(s.promptTokens, 7);
    assert.equal(s.retries, 1);
  });
});
