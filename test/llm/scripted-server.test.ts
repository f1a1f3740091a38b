import assert from "node:assert/strict";
import { describe, it } from "node:test";
import OpenAI from "openai";
import { startScriptedServer } from "../helpers/scripted-server.ts";

describe("scripted server", () => {
  it("lists a model and answers chat requests in script order, loudly when the script runs out", async () => {
    const server = await startScriptedServer([
      { content: "one" },
      { content: "two", headers: { "x-test": "yes" } },
    ]);
    try {
      const sdk = new OpenAI({ apiKey: "k", baseURL: server.baseURL, maxRetries: 0 });
      const models = await sdk.models.list();
      assert.deepEqual(
        models.data.map((m) => m.id),
        ["scripted-model"],
      );
      const ask = () =>
        sdk.chat.completions.create({ model: "m", messages: [{ role: "user", content: "abcdefgh" }] });
      const first = await ask();
      assert.equal(first.choices[0]!.message.content, "one");
      // Default usage: ⌈8/4⌉ = 2 prompt tokens, ⌈3/4⌉ = 1 completion token.
      assert.deepEqual(
        { p: first.usage!.prompt_tokens, c: first.usage!.completion_tokens, t: first.usage!.total_tokens },
        { p: 2, c: 1, t: 3 },
      );
      const second = await ask().withResponse();
      assert.equal(second.data.choices[0]!.message.content, "two");
      assert.equal(second.response.headers.get("x-test"), "yes");
      await assert.rejects(ask(), (err: Error & { status?: number }) => {
        assert.equal(err.status, 500);
        assert.match(err.message, /no reply scripted for request #2/);
        return true;
      });
      assert.equal(server.requests.length, 3);
      assert.ok(server.requests[0]!.at <= server.requests[2]!.at);
    } finally {
      await server.close();
    }
  });

  it("applies latency and closes promptly even while a reply hangs", async () => {
    const server = await startScriptedServer([{ hang: true }, { content: "x" }], { latencyMs: 60 });
    const sdk = new OpenAI({ apiKey: "k", baseURL: server.baseURL, maxRetries: 0, timeout: 10_000 });
    const hanging = sdk.chat.completions.create({ model: "m", messages: [] }).catch((e: unknown) => e);
    const t0 = Date.now();
    const answered = await sdk.chat.completions.create({ model: "m", messages: [] });
    assert.equal(answered.choices[0]!.message.content, "x");
    assert.ok(Date.now() - t0 >= 55, "latency applied");
    assert.equal(server.inFlight, 1, "the hanging request is still open");
    const t1 = Date.now();
    await server.close();
    assert.ok(Date.now() - t1 < 2000, "close does not wait for the hanging reply");
    assert.ok((await hanging) instanceof Error);
    assert.equal(server.maxInFlight, 2);
  });
});
