/**
 * The OpenAI-compatible server over the in-process engine, through the real `openai` SDK over
 * real HTTP on 127.0.0.1, on a tiny random model in the Hugging Face layout: the protocol
 * (models, choices, usage, finish reasons, stop, seed, n, streaming), batching that changes no
 * seeded reply, and OpenAI-shaped errors with OpenAI's statuses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { initBackend } from "../../src/model/backend.ts";
import { loadTextModel, type TextModel } from "../../src/model/generate.ts";
import { type RunningServer, startServer } from "../../src/model/serve.ts";
import { writeTinyChatModel } from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-serve-");
let m: TextModel;
let server: RunningServer;
let client: OpenAI;
const user = (content: string) => [{ role: "user" as const, content }];

before(async () => {
  await initBackend("wasm");
  const dir = join(tmp("model"), "tiny-chat");
  writeTinyChatModel(dir, { seed: 4, contextLength: 256, maxNewTokens: 12 });
  m = loadTextModel(dir);
  server = await startServer(m, { port: 0, seed: 1, apiKey: "sk-local" });
  client = new OpenAI({ baseURL: server.baseURL, apiKey: "sk-local", maxRetries: 0 });
});

after(async () => {
  await server?.close();
  m?.model.dispose();
});

describe("grpo serve's protocol", () => {
  it("lists the model under its directory's name", async () => {
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((d) => [d.id, d.object, d.owned_by]),
      [["tiny-chat", "model", "grpo-ts"]],
    );
    assert.equal((await client.models.retrieve("tiny-chat")).id, "tiny-chat");
  });

  it("answers with n choices, usage counts and finish reasons; max_tokens bounds every choice", async () => {
    const r = await client.chat.completions.create({
      model: "tiny-chat",
      messages: user("Hello there"),
      n: 3,
      max_tokens: 4,
      seed: 7,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.model, "tiny-chat");
    assert.equal(r.choices.length, 3);
    const promptIds = m.tokenizer.encodeChat(user("Hello there"), { addGenerationPrompt: true });
    assert.equal(r.usage!.prompt_tokens, promptIds.length);
    let generated = 0;
    for (const c of r.choices) {
      assert.equal(c.message.role, "assistant");
      assert.ok(c.finish_reason === "length" || c.finish_reason === "stop", c.finish_reason);
      generated += c.finish_reason === "length" ? 4 : 0;
    }
    assert.ok(r.usage!.completion_tokens <= 12 && r.usage!.completion_tokens >= generated);
    assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
    // without max_tokens, generation_config.json's max_new_tokens is the limit
    const d = await client.chat.completions.create({ model: "tiny-chat", messages: user("Hi"), seed: 1 });
    assert.ok(d.usage!.completion_tokens <= 12);
  });

  it("a seed gives the same reply, alone or batched with other requests", async () => {
    const ask = (seed?: number, content = "Tell me a story") =>
      client.chat.completions.create({
        model: "tiny-chat",
        messages: user(content),
        max_tokens: 10,
        temperature: 1,
        ...(seed === undefined ? {} : { seed }),
      });
    const alone = (await ask(42)).choices[0]!.message.content;
    // fired together: the server samples them in one batch
    const together = await Promise.all([
      ask(),
      ask(42),
      ask(3, "Another prompt, longer than the first one"),
      ask(42),
    ]);
    assert.equal(together[1]!.choices[0]!.message.content, alone);
    assert.equal(together[3]!.choices[0]!.message.content, alone);
    const other = (await ask(43)).choices[0]!.message.content;
    assert.notEqual(other, alone, "another seed, another reply");
  });

  it("temperature 0 is greedy: the model's argmax, whatever the seed", async () => {
    const a = await client.chat.completions.create({
      model: "tiny-chat",
      messages: user("Greedy"),
      temperature: 0,
      max_tokens: 8,
      seed: 1,
    });
    const b = await client.chat.completions.create({
      model: "tiny-chat",
      messages: user("Greedy"),
      temperature: 0,
      max_tokens: 8,
      seed: 2,
    });
    assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
  });

  it("stop: the reply ends before the stop string, with finish_reason stop", async () => {
    const ask = (stop?: string[]) =>
      client.chat.completions.create({
        model: "tiny-chat",
        messages: user("Stop early"),
        temperature: 0,
        max_tokens: 12,
        ...(stop ? { stop } : {}),
      });
    const full = (await ask()).choices[0]!.message.content!;
    assert.ok(full.length >= 4, JSON.stringify(full));
    const cut = full.slice(2, 4);
    const r = await ask(["never-appears", cut]);
    assert.equal(r.choices[0]!.message.content, full.slice(0, full.indexOf(cut)));
    assert.equal(r.choices[0]!.finish_reason, "stop");
  });

  it("streams the same reply as chunks, then usage and [DONE]", async () => {
    const body = { model: "tiny-chat", messages: user("Stream it"), max_tokens: 6, seed: 5 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.delta.content ?? "";
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, whole.choices[0]!.message.content);
    assert.equal(finish, whole.choices[0]!.finish_reason);
    assert.deepEqual(usage, whole.usage);
  });
});

describe("grpo serve's errors are OpenAI's", () => {
  const expectError = async (p: Promise<unknown>, status: number, match: RegExp, code?: string | null) => {
    await assert.rejects(p, (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, status, err.message);
      assert.match(err.message, match);
      if (code !== undefined) assert.equal(err.code, code);
      return true;
    });
  };

  it("an unknown model is 404 model_not_found", async () => {
    await expectError(
      client.chat.completions.create({ model: "gpt-4o", messages: user("Hi") }),
      404,
      /The model `gpt-4o` does not exist/,
      "model_not_found",
    );
  });

  it("a bad parameter is 400 naming it", async () => {
    await expectError(
      client.chat.completions.create({ model: "tiny-chat", messages: user("Hi"), temperature: 3 }),
      400,
      /Invalid value for 'temperature'/,
    );
    await expectError(
      client.chat.completions.create({ model: "tiny-chat", messages: [] }),
      400,
      /'messages'/,
    );
    await expectError(
      client.chat.completions.create({
        model: "tiny-chat",
        messages: user("Hi"),
        response_format: { type: "json_object" },
      }),
      400,
      /response_format "json_object" is not supported/,
    );
  });

  it("a prompt past the context is 400 context_length_exceeded", async () => {
    await expectError(
      client.chat.completions.create({ model: "tiny-chat", messages: user("word ".repeat(400)) }),
      400,
      /maximum context length is 256 tokens/,
      "context_length_exceeded",
    );
  });

  it("a wrong key is 401; bad JSON 400; unknown routes 404; GET on completions 405", async () => {
    const wrong = new OpenAI({ baseURL: server.baseURL, apiKey: "sk-other", maxRetries: 0 });
    await expectError(wrong.models.list(), 401, /Incorrect API key/, "invalid_api_key");
    const post = (path: string, body: string, method = "POST") =>
      fetch(`${server.baseURL}${path}`, {
        method,
        headers: { authorization: "Bearer sk-local", "content-type": "application/json" },
        ...(method === "POST" ? { body } : {}),
      });
    let r = await post("/chat/completions", "{not json");
    assert.equal(r.status, 400);
    const e = (await r.json()) as { error: { type: string; message: string } };
    assert.equal(e.error.type, "invalid_request_error");
    assert.match(e.error.message, /not valid JSON/);
    r = await post("/completions", "{}");
    assert.equal(r.status, 404);
    assert.ok(((await r.json()) as { error: unknown }).error);
    r = await post("/chat/completions", "", "GET");
    assert.equal(r.status, 405);
    await r.body?.cancel();
  });
});
