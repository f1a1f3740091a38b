import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LLMClient } from "../../src/llm/client.ts";
import { openAICompatible } from "../../src/llm/openai-compatible.ts";
import { startScriptedServer } from "../helpers/scripted-server.ts";

describe("openAICompatible", () => {
  test("is the project's client: retries a 500, counts usage and prices it", async () => {
    const server = await startScriptedServer([
      { status: 500, content: "busy" },
      { content: "hello", usage: { prompt_tokens: 1000, completion_tokens: 500 } },
    ]);
    try {
      const client = openAICompatible({
        baseURL: server.baseURL,
        apiKey: "k",
        model: "m",
        name: "learner",
        maxRetries: 2,
        pricing: { inputPerMTok: 1, outputPerMTok: 2 },
        deps: { sleep: async () => {} },
      });
      assert.ok(client instanceof LLMClient);
      const r = await client.chat([{ role: "user", content: "hi" }], { temperature: 0 });
      assert.equal(r.text, "hello");
      assert.equal(r.attempts, 2);
      const s = client.stats();
      assert.equal(s.agent, "learner");
      assert.equal(s.retries, 1);
      assert.equal(s.promptTokens, 1000);
      assert.equal(s.costUSD, (1000 * 1 + 500 * 2) / 1e6);
      assert.equal(server.requests[1]!.body.model, "m");
      assert.equal(server.requests[1]!.headers.authorization, "Bearer k");
    } finally {
      await server.close();
    }
  });

  test("a missing base URL, model or key fails at once, saying which", () => {
    assert.throws(() => openAICompatible({ baseURL: "", apiKey: "k", model: "m" }), /baseURL is required/);
    assert.throws(
      () => openAICompatible({ baseURL: "http://x/v1", apiKey: "k", model: "" }),
      /model is required/,
    );
    assert.throws(
      () => openAICompatible({ baseURL: "http://x/v1", apiKey: "", model: "m" }),
      /apiKey is required/,
    );
  });
});
