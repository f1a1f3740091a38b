import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FileFormatError } from "../../src/io/files.ts";
import {
  AGENTS,
  DEFAULT_BASE_URL,
  loadApiConfig,
  parseApiConfig,
  resolveAgentEndpoint,
} from "../../src/llm/config.ts";
import { tempDirs } from "../helpers/tmp.ts";

const dir = tempDirs("grpo-llm-config-")();

let n = 0;
function writeConfig(value: unknown): string {
  const path = join(dir, `api_config_${n++}.json`);
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected an error");
}

describe("loadApiConfig", () => {
  it("says where the file should be and what to copy when it is missing", () => {
    const path = join(dir, "nope", "api_config.json");
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.match(err.message, new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.match(err.message, /examples\/api_config\.json\.example/);
  });

  it("names the file for invalid JSON", () => {
    const path = writeConfig('{ "default": { "model": "m", } ');
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.ok(err.message.startsWith(path), err.message);
    assert.match(err.message, /invalid JSON/);
  });

  it("names the file and field path for an invalid value", () => {
    const path = writeConfig({
      default: { model: "m", api_key: "k" },
      agents: { generator_2: { max_concurrency: 0 } },
    });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.match(err.message, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    assert.match(err.message, /agents\.generator_2\.max_concurrency/);
  });

  it("names a wrongly typed field in the default block", () => {
    const path = writeConfig({ default: { model: "m", api_key: "k", timeout_ms: "60s" } });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.ok(err instanceof FileFormatError);
    assert.equal(err.field, "default.timeout_ms");
    assert.equal(err.file, path);
    assert.match(err.message, /default\.timeout_ms/);
  });

  it("rejects a misspelled field, naming it", () => {
    const path = writeConfig({ default: { model: "m", api_key: "k" }, agents: { critic: { modle: "x" } } });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.match(err.message, /agents\.critic\.modle/);
    assert.match(err.message, /unknown field/);
  });

  it("rejects an unknown agent name", () => {
    const path = writeConfig({ default: { model: "m", api_key: "k" }, agents: { generator_4: {} } });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.match(err.message, /agents\.generator_4/);
  });

  it("reports a missing key starting with the exact phrase and listing where it looked", () => {
    const path = writeConfig({
      default: { model: "m" },
      agents: {
        generator_1: { api_key: "k1" },
        generator_2: { api_key_env: "G2_KEY" },
        generator_3: { api_key: "k3" },
        critic: { api_key: "kc" },
      },
    });
    const err = errorOf(() => loadApiConfig(path, { G2_KEY: "" }));
    assert.ok(err.message.startsWith("API key not found for generator_2"), err.message);
    assert.ok(err.message.includes(path), "names the file");
    assert.match(err.message, /agents\.generator_2\.api_key\b/);
    assert.match(err.message, /G2_KEY/);
    assert.match(err.message, /default\.api_key/);
    assert.match(err.message, /OPENAI_API_KEY/);
  });

  it("takes a key from the environment variable named by api_key_env", () => {
    const path = writeConfig({
      default: { model: "m", api_key: "shared" },
      agents: { generator_2: { api_key_env: "G2_KEY" } },
    });
    const cfg = loadApiConfig(path, { G2_KEY: "  sk-from-env  " });
    assert.equal(cfg.generator_2.apiKey, "sk-from-env");
    assert.equal(cfg.generator_2.apiKeySource, "env G2_KEY");
    assert.equal(cfg.generator_1.apiKey, "shared");
    assert.match(cfg.generator_1.apiKeySource!, /default\.api_key/);
  });

  it("merges the default block under each agent and fills the documented defaults", () => {
    const path = writeConfig({
      default: {
        base_url: "http://127.0.0.1:8000/v1",
        model: "base-model",
        api_key: "k",
        pricing: { input_per_mtok: 1, output_per_mtok: 2 },
      },
      agents: {
        generator_1: {},
        critic: { model: "judge-model", max_concurrency: 2, timeout_ms: 1000, max_retries: 0 },
      },
    });
    const cfg = loadApiConfig(path, {});
    assert.deepEqual(Object.keys(cfg), [...AGENTS]);
    assert.deepEqual(cfg.generator_3, {
      agent: "generator_3",
      baseURL: "http://127.0.0.1:8000/v1",
      model: "base-model",
      apiKey: "k",
      apiKeySource: `default.api_key in ${path}`,
      apiKeyField: "default.api_key",
      configPath: path,
      maxConcurrency: 8,
      timeoutMs: 60000,
      maxRetries: 4,
      pricing: { inputPerMTok: 1, outputPerMTok: 2 },
    });
    assert.equal(cfg.critic.model, "judge-model");
    assert.equal(cfg.critic.maxConcurrency, 2);
    assert.equal(cfg.critic.timeoutMs, 1000);
    assert.equal(cfg.critic.maxRetries, 0);
    assert.equal(cfg.critic.baseURL, "http://127.0.0.1:8000/v1");
  });

  it("an agent's own inline key wins over its env variable and the default", () => {
    const cfg = parseApiConfig(
      {
        default: { model: "m", api_key: "d" },
        agents: { generator_1: { api_key: "own", api_key_env: "E" } },
      },
      "f.json",
    );
    assert.equal(resolveAgentEndpoint("generator_1", cfg, { E: "env" }, "f.json").apiKey, "own");
    assert.equal(resolveAgentEndpoint("generator_2", cfg, { E: "env" }, "f.json").apiKey, "d");
  });

  it("falls back to OPENAI_API_KEY and OPENAI_BASE_URL last", () => {
    const path = writeConfig({ default: { model: "m" } });
    const cfg = loadApiConfig(path, {
      OPENAI_API_KEY: "sk-openai",
      OPENAI_BASE_URL: "http://localhost:1234/v1",
    });
    assert.equal(cfg.critic.apiKey, "sk-openai");
    assert.equal(cfg.critic.apiKeySource, "env OPENAI_API_KEY");
    assert.equal(cfg.critic.baseURL, "http://localhost:1234/v1");
    const plain = loadApiConfig(path, { OPENAI_API_KEY: "sk-openai" });
    assert.equal(plain.critic.baseURL, DEFAULT_BASE_URL);
  });

  it("treats an empty inline key as missing", () => {
    const path = writeConfig({ default: { model: "m", api_key: "" } });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.ok(err.message.startsWith("API key not found for generator_1"), err.message);
  });

  it("requires a model somewhere, naming the field", () => {
    const path = writeConfig({ default: { api_key: "k" }, agents: { generator_1: { model: "m" } } });
    const err = errorOf(() => loadApiConfig(path, {}));
    assert.match(err.message, /agents\.generator_2\.model/);
    assert.ok(err.message.includes(path));
  });

  it("accepts agent blocks at the top level (older layout)", () => {
    const path = writeConfig({
      default: { model: "m", api_key: "k" },
      generator_1: { model: "g1" },
      critic: { api_key: "kc" },
    });
    const cfg = loadApiConfig(path, {});
    assert.equal(cfg.generator_1.model, "g1");
    assert.equal(cfg.critic.apiKey, "kc");
    assert.equal(cfg.generator_2.model, "m");
  });

  it("base_url may list replicas; a single one keeps the old shape; structured_output is read", () => {
    const path = writeConfig({
      default: { model: "m", api_key: "k", base_url: "http://a:1/v1" },
      agents: {
        generator_1: {
          base_url: ["http://r1:8000/v1", "http://r2:8000/v1", "http://r1:8000/v1"],
          structured_output: "json_schema",
        },
      },
    });
    const cfg = loadApiConfig(path, {});
    assert.equal(cfg.generator_1.baseURL, "http://r1:8000/v1");
    assert.deepEqual(
      cfg.generator_1.baseURLs,
      ["http://r1:8000/v1", "http://r2:8000/v1"],
      "duplicates collapse",
    );
    assert.equal(cfg.generator_1.structuredOutput, "json_schema");
    assert.equal(cfg.generator_2.baseURL, "http://a:1/v1");
    assert.equal("baseURLs" in cfg.generator_2, false);
    assert.equal("structuredOutput" in cfg.generator_2, false);
    for (const bad of [[], ["not a url"], "nope"]) {
      const err = errorOf(() =>
        loadApiConfig(writeConfig({ default: { model: "m", api_key: "k", base_url: bad } }), {}),
      );
      assert.ok(err instanceof FileFormatError, String(err));
      assert.match(err.message, /default\.base_url/);
    }
    const err = errorOf(() =>
      loadApiConfig(writeConfig({ default: { model: "m", api_key: "k", structured_output: "xml" } }), {}),
    );
    assert.match(err.message, /structured_output/);
  });

  it("records which field named the key, for the advice of a failed authentication", () => {
    const path = writeConfig({
      default: { model: "m", api_key_env: "SHARED_KEY" },
      agents: { generator_2: { api_key_env: "G2_KEY" }, critic: { api_key: "inline" } },
    });
    const cfg = loadApiConfig(path, { SHARED_KEY: "s", G2_KEY: "g" });
    assert.equal(cfg.generator_2.apiKeyField, "agents.generator_2.api_key_env");
    assert.equal(cfg.generator_1.apiKeyField, "default.api_key_env");
    assert.equal(cfg.critic.apiKeyField, "agents.critic.api_key");
    const fallback = loadApiConfig(writeConfig({ default: { model: "m" } }), { OPENAI_API_KEY: "o" });
    assert.equal(fallback.critic.apiKeyField, undefined);
    assert.equal(fallback.critic.apiKeySource, "env OPENAI_API_KEY");
  });

  it("the example in the format documentation is valid", () => {
    const source = readFileSync(fileURLToPath(new URL("../../src/llm/config.ts", import.meta.url)), "utf8");
    const block = /```json\n([\s\S]*?)```/.exec(source)?.[1];
    assert.ok(block, "no json block in the documentation");
    const json = block.replace(/^ \* ?/gm, "");
    const cfg = parseApiConfig(JSON.parse(json), "doc");
    const g3 = resolveAgentEndpoint("generator_3", cfg, {}, "doc");
    assert.equal(g3.baseURL, "http://127.0.0.1:11434/v1");
    assert.equal(g3.apiKey, "ollama");
    assert.deepEqual(g3.pricing, { inputPerMTok: 0.27, outputPerMTok: 1.1 });
    const g2 = resolveAgentEndpoint("generator_2", cfg, { DEEPSEEK_API_KEY: "d" }, "doc");
    assert.equal(g2.model, "deepseek-reasoner");
    assert.equal(g2.baseURL, "https://api.deepseek.com/v1");
    assert.equal(g2.timeoutMs, 180000);
  });

  it("the shipped example is valid and loads once its key variable is set", () => {
    const example = fileURLToPath(new URL("../../examples/api_config.json.example", import.meta.url));
    const parsed = parseApiConfig(JSON.parse(readFileSync(example, "utf8")), example);
    assert.ok(parsed.default?.model);
    const cfg = loadApiConfig(example, { DEEPSEEK_API_KEY: "sk-x" });
    for (const agent of AGENTS) assert.equal(cfg[agent].apiKey, "sk-x");
    const err = errorOf(() => loadApiConfig(example, {}));
    assert.ok(err.message.startsWith("API key not found for generator_1"));
    assert.match(err.message, /DEEPSEEK_API_KEY/);
  });
});
