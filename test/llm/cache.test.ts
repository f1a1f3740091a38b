import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type CacheKeyInput, LLMClient, RequestCache } from "../../src/llm/index.ts";
import { startScriptedServer } from "../helpers/scripted-server.ts";
import { tempDirs } from "../helpers/tmp.ts";

const root = tempDirs("grpo-llm-cache-")();
let n = 0;
const freshDir = () => join(root, `c${n++}`);

const req: CacheKeyInput = {
  model: "m",
  messages: [{ role: "user", content: "2+2?" }],
  temperature: 0.7,
  seed: 1,
};

describe("RequestCache", () => {
  it("round-trips a reply and counts hits and misses", () => {
    const cache = new RequestCache(freshDir());
    assert.equal(cache.get(req), undefined);
    cache.put(req, { text: "4", usage: { promptTokens: 5, completionTokens: 1 } });
    assert.deepEqual(cache.get(req), { text: "4", usage: { promptTokens: 5, completionTokens: 1 } });
    assert.equal(cache.hits, 1);
    assert.equal(cache.misses, 1);
  });

  it("keys on model, messages, temperature and seed", () => {
    const cache = new RequestCache(freshDir());
    const base = cache.key(req);
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(cache.key({ ...req }), base, "same content, same key");
    assert.equal(
      cache.key({ seed: 1, temperature: 0.7, messages: req.messages, model: "m" }),
      base,
      "field order",
    );
    assert.notEqual(cache.key({ ...req, model: "m2" }), base);
    assert.notEqual(cache.key({ ...req, temperature: 0 }), base);
    assert.notEqual(cache.key({ ...req, seed: 2 }), base);
    assert.notEqual(cache.key({ ...req, messages: [{ role: "system", content: "2+2?" }] }), base);
    assert.notEqual(cache.key({ ...req, seed: undefined }), base);
  });

  it("treats a damaged entry as a miss", () => {
    const cache = new RequestCache(freshDir());
    cache.put(req, { text: "4", usage: { promptTokens: 1, completionTokens: 1 } });
    writeFileSync(cache.pathFor(req), "{ torn");
    assert.equal(cache.get(req), undefined);
  });

  it("treats an entry stored for a different request as a miss", () => {
    const cache = new RequestCache(freshDir());
    const other: CacheKeyInput = { ...req, seed: 9 };
    cache.put(other, { text: "other", usage: { promptTokens: 1, completionTokens: 1 } });
    // Simulate a collision: the other request's entry sitting at this request's path.
    cache.put(req, { text: "x", usage: { promptTokens: 1, completionTokens: 1 } });
    writeFileSync(cache.pathFor(req), readFileSync(cache.pathFor(other), "utf8"));
    assert.equal(cache.get(req), undefined);
  });
});

describe("LLMClient with a request cache", () => {
  it("serves a repeated request from disk without a second HTTP call, and keeps seeds apart", async () => {
    const server = await startScriptedServer(({ index }) => ({
      content: `reply ${index}`,
      usage: { prompt_tokens: 10, completion_tokens: 2 },
    }));
    try {
      const dir = freshDir();
      const endpoint = {
        agent: "generator_1" as const,
        baseURL: server.baseURL,
        model: "m",
        apiKey: "k",
        maxConcurrency: 2,
        timeoutMs: 5000,
        maxRetries: 0,
      };
      const client = new LLMClient(endpoint, { cache: new RequestCache(dir) });
      const msgs = [{ role: "user" as const, content: "hi" }];
      const first = await client.chat(msgs, { temperature: 1, seed: 1 });
      assert.equal(first.cached, false);
      assert.equal(first.text, "reply 0");
      assert.equal(server.requests[0]!.body.seed, 1);

      // A new client on the same directory, as after a restart.
      const again = new LLMClient(endpoint, { cache: new RequestCache(dir) });
      const hit = await again.chat(msgs, { temperature: 1, seed: 1 });
      assert.equal(hit.cached, true);
      assert.equal(hit.attempts, 0);
      assert.equal(hit.text, "reply 0");
      assert.deepEqual(hit.usage, { promptTokens: 0, completionTokens: 0 });
      assert.equal(server.requests.length, 1);
      assert.equal(again.stats().cacheHits, 1);
      assert.equal(again.stats().promptTokens, 0);

      const otherSeed = await again.chat(msgs, { temperature: 1, seed: 2 });
      assert.equal(otherSeed.text, "reply 1");
      const bypass = await again.chat(msgs, { temperature: 1, seed: 1, cache: false });
      assert.equal(bypass.text, "reply 2");
      assert.equal(server.requests.length, 3);

      // A cached text the parser now rejects is fetched again and replaced.
      const parsed = await again.chat(msgs, {
        temperature: 1,
        seed: 1,
        parse: (t) => {
          if (t === "reply 0") throw new Error("stale");
          return t.toUpperCase();
        },
      });
      assert.equal(parsed.value, "REPLY 3");
      assert.equal(parsed.cached, false);
      assert.equal((await again.chat(msgs, { temperature: 1, seed: 1 })).text, "reply 3");
      assert.equal(readdirSync(dir).length > 0, true);
    } finally {
      await server.close();
    }
  });
});
