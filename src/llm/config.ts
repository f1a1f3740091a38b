/**
 * ## LLM endpoints: `data/api_keys/api_config.json`
 *
 * Every agent of the training-free solver (`generator_1`, `generator_2`, `generator_3`,
 * `critic`) talks to an OpenAI-compatible chat-completions endpoint (OpenAI, DeepSeek, vLLM,
 * Ollama, llama.cpp server, ...). The endpoints are described in one JSON file, by default
 * `data/api_keys/api_config.json`. Start from the template:
 *
 * ```sh
 * mkdir -p data/api_keys && cp examples/api_config.json.example data/api_keys/api_config.json
 * ```
 *
 * ```json
 * {
 *   "default": {
 *     "base_url": "https://api.deepseek.com/v1",
 *     "model": "deepseek-chat",
 *     "api_key_env": "DEEPSEEK_API_KEY",
 *     "max_concurrency": 8,
 *     "timeout_ms": 60000,
 *     "max_retries": 4,
 *     "pricing": { "input_per_mtok": 0.27, "output_per_mtok": 1.1 }
 *   },
 *   "agents": {
 *     "generator_1": {},
 *     "generator_2": {
 *       "model": "deepseek-reasoner",
 *       "timeout_ms": 180000,
 *       "pricing": { "input_per_mtok": 0.55, "output_per_mtok": 2.19 }
 *     },
 *     "generator_3": { "base_url": "http://127.0.0.1:11434/v1", "model": "qwen2.5:7b", "api_key": "ollama" },
 *     "critic": { "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY" }
 *   }
 * }
 * ```
 *
 * Fields (all snake_case; unknown fields are rejected so that a typo does not pass silently):
 *
 * | field             | type   | default                      | meaning                                                  |
 * |-------------------|--------|------------------------------|----------------------------------------------------------|
 * | `base_url`        | string or list of strings | `$OPENAI_BASE_URL`, then `https://api.openai.com/v1` | endpoint root, including `/v1`; a list names replicas of one deployment |
 * | `model`           | string | (required somewhere)         | model name sent with each request                        |
 * | `api_key`         | string | —                            | the key itself                                           |
 * | `api_key_env`     | string | —                            | name of an environment variable holding the key          |
 * | `max_concurrency` | int ≥ 1| 8                            | requests in flight at once for this agent                |
 * | `timeout_ms`      | int ≥ 1| 60000                        | per-attempt timeout                                      |
 * | `max_retries`     | int ≥ 0| 4                            | retries after the first attempt (429, 5xx, timeouts, network errors, unparseable replies) |
 * | `pricing`         | object | none (cost reported as 0)    | `{ "input_per_mtok": USD, "output_per_mtok": USD }` per million tokens |
 * | `structured_output` | `none`, `json_object`, `json_schema` | `none` | the `response_format` sent with requests that expect JSON |
 *
 * Each agent's block under `agents` overrides the `default` block field by field; an agent
 * without a block (or with `{}`) uses `default` entirely. The API key of an agent is the first
 * non-empty one of: its `api_key`, the variable named by its `api_key_env`, `default.api_key`,
 * the variable named by `default.api_key_env`, and finally `$OPENAI_API_KEY`. Local servers that
 * ignore keys (Ollama, llama.cpp) still need some non-empty value, e.g. `"api_key": "local"`.
 * A named variable that is unset or empty does not stop the lookup; error messages say which
 * source a key came from (never the key itself). `base_url` falls back the same way: agent,
 * `default`, `$OPENAI_BASE_URL`, then OpenAI's URL. For compatibility with older files, agent
 * blocks may also sit at the top level instead of under `agents`. Prices above are examples;
 * use your provider's current ones.
 *
 * Each attempt that gets HTTP 429, a 5xx, a timeout, a network error, a malformed body, or a
 * reply the caller's parser rejects is retried up to `max_retries` times with exponential
 * backoff and full jitter (a `Retry-After` header is honoured); 400, 401, 403 and 404 fail at
 * once. Token usage and cost per agent are summed, failed attempts included. 401/403 (bad key),
 * 404 (bad model or path) and a refused connection are fatal: a run stops at once and says
 * which setting to fix. With a list of `base_url`s, each request goes to the healthy replica
 * with the fewest requests in flight, and a replica that fails is skipped for a while
 * (`max_concurrency` stays the agent's total). A server that answers 400 to `response_format`
 * is asked again without it, and never again with it.
 */
import { existsSync } from "node:fs";
import { z } from "zod";
import { FileFormatError, readJsonFile, zodFileError } from "../io/files.ts";

export const AGENTS = ["generator_1", "generator_2", "generator_3", "critic"] as const;
export type AgentName = (typeof AGENTS)[number];

/** USD per million tokens. */
export interface Pricing {
  inputPerMTok: number;
  outputPerMTok: number;
}

export type StructuredOutput = "none" | "json_object" | "json_schema";

export interface AgentEndpoint {
  /** The name in usage reports and error messages: one of AGENTS for the solver, any name otherwise. */
  agent: string;
  /** The first (or only) base URL. */
  baseURL: string;
  /** Replicas of one deployment; requests spread over them (absent: `baseURL` alone). */
  baseURLs?: string[];
  model: string;
  apiKey: string;
  maxConcurrency: number;
  timeoutMs: number;
  maxRetries: number;
  pricing?: Pricing;
  /** Where the key came from (e.g. `env DEEPSEEK_API_KEY`), for error messages; never the key. */
  apiKeySource?: string;
  /** The config field that named the key (e.g. `agents.critic.api_key_env`); absent for $OPENAI_API_KEY. */
  apiKeyField?: string;
  /** Which `response_format` a request that expects JSON sends; "none" by default. */
  structuredOutput?: StructuredOutput;
  /** The config file the endpoint came from, named in the advice of fatal errors. */
  configPath?: string;
}

export const DEFAULT_CONFIG_PATH = "data/api_keys/api_config.json";
export const EXAMPLE_CONFIG_PATH = "examples/api_config.json.example";
export const DEFAULT_BASE_URL = "https://api.openai.com/v1";
export const DEFAULT_MAX_CONCURRENCY = 8;
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 4;

const pricingSchema = z.strictObject({
  input_per_mtok: z.number().nonnegative(),
  output_per_mtok: z.number().nonnegative(),
});

const endpointBlockSchema = z.strictObject({
  base_url: z.union([z.url(), z.array(z.url()).min(1)]).optional(),
  model: z.string().min(1).optional(),
  api_key: z.string().optional(),
  api_key_env: z.string().min(1).optional(),
  max_concurrency: z.number().int().min(1).optional(),
  timeout_ms: z.number().int().min(1).optional(),
  max_retries: z.number().int().min(0).optional(),
  pricing: pricingSchema.optional(),
  structured_output: z.enum(["none", "json_object", "json_schema"]).optional(),
});

export type EndpointBlock = z.infer<typeof endpointBlockSchema>;

const agentsSchema = z.strictObject({
  generator_1: endpointBlockSchema.optional(),
  generator_2: endpointBlockSchema.optional(),
  generator_3: endpointBlockSchema.optional(),
  critic: endpointBlockSchema.optional(),
});

export const apiConfigFileSchema = z.strictObject({
  default: endpointBlockSchema.optional(),
  agents: agentsSchema.optional(),
});

export type ApiConfigFile = z.infer<typeof apiConfigFileSchema>;

/** Moves top-level agent blocks (older layout) under `agents`. */
function normalizeLayout(raw: unknown): unknown {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const obj = raw as Record<string, unknown>;
  const topLevelAgents = AGENTS.filter((a) => a in obj);
  if (topLevelAgents.length === 0 || "agents" in obj) return raw;
  const rest: Record<string, unknown> = {};
  const agents: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if ((AGENTS as readonly string[]).includes(k)) agents[k] = v;
    else rest[k] = v;
  }
  return { ...rest, agents };
}

/** Validates an already-parsed config object; errors name `file` and the field path. */
export function parseApiConfig(raw: unknown, file: string): ApiConfigFile {
  const result = apiConfigFileSchema.safeParse(normalizeLayout(raw));
  if (result.success) return result.data;
  throw zodFileError(file, result.error, { hint: `see ${EXAMPLE_CONFIG_PATH}` });
}

function nonEmpty(s: string | undefined): s is string {
  return s !== undefined && s.trim() !== "";
}

/**
 * Merges the agent's block over `default` and resolves the key (see the lookup order at the
 * top of this file). `file` only serves error messages.
 */
export function resolveAgentEndpoint(
  agent: AgentName,
  config: ApiConfigFile,
  env: NodeJS.ProcessEnv = process.env,
  file = DEFAULT_CONFIG_PATH,
): AgentEndpoint {
  const own: EndpointBlock = config.agents?.[agent] ?? {};
  const shared: EndpointBlock = config.default ?? {};

  const looked: string[] = [];
  let apiKey: string | undefined;
  let apiKeySource: string | undefined;
  let apiKeyField: string | undefined;
  const tryInline = (block: EndpointBlock, where: string) => {
    if (apiKey !== undefined) return;
    looked.push(`${where}.api_key`);
    if (nonEmpty(block.api_key)) {
      apiKey = block.api_key.trim();
      apiKeySource = `${where}.api_key in ${file}`;
      apiKeyField = `${where}.api_key`;
    }
  };
  const tryEnv = (name: string | undefined, label: string, field?: string) => {
    if (apiKey !== undefined || name === undefined) return;
    const value = env[name];
    looked.push(`${label}env ${name} (${value === undefined ? "unset" : nonEmpty(value) ? "set" : "empty"})`);
    if (nonEmpty(value)) {
      apiKey = value.trim();
      apiKeySource = `env ${name}`;
      apiKeyField = field;
    }
  };
  tryInline(own, `agents.${agent}`);
  tryEnv(own.api_key_env, `agents.${agent}.api_key_env → `, `agents.${agent}.api_key_env`);
  tryInline(shared, "default");
  tryEnv(shared.api_key_env, "default.api_key_env → ", "default.api_key_env");
  tryEnv("OPENAI_API_KEY", "fallback ");
  if (apiKey === undefined) {
    throw new Error(
      `API key not found for ${agent}: looked in ${file} at ${looked.join(", ")}. ` +
        `Set agents.${agent}.api_key (or default.api_key), or name an environment variable with ` +
        `agents.${agent}.api_key_env and export it, or export OPENAI_API_KEY.`,
    );
  }

  const model = own.model ?? shared.model;
  if (!nonEmpty(model)) {
    throw new FileFormatError(
      file,
      undefined,
      `agents.${agent}.model`,
      `no model for ${agent}: set agents.${agent}.model or default.model`,
    );
  }
  const pricing = own.pricing ?? shared.pricing;
  const envBaseURL = nonEmpty(env.OPENAI_BASE_URL) ? env.OPENAI_BASE_URL.trim() : undefined;
  const base = own.base_url ?? shared.base_url ?? envBaseURL ?? DEFAULT_BASE_URL;
  const urls = typeof base === "string" ? [base] : [...new Set(base)];
  const structured = own.structured_output ?? shared.structured_output;
  return {
    agent,
    baseURL: urls[0]!,
    ...(urls.length > 1 ? { baseURLs: urls } : {}),
    model,
    apiKey,
    apiKeySource,
    ...(apiKeyField ? { apiKeyField } : {}),
    ...(structured ? { structuredOutput: structured } : {}),
    configPath: file,
    maxConcurrency: own.max_concurrency ?? shared.max_concurrency ?? DEFAULT_MAX_CONCURRENCY,
    timeoutMs: own.timeout_ms ?? shared.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    maxRetries: own.max_retries ?? shared.max_retries ?? DEFAULT_MAX_RETRIES,
    ...(pricing
      ? { pricing: { inputPerMTok: pricing.input_per_mtok, outputPerMTok: pricing.output_per_mtok } }
      : {}),
  };
}

/** Reads, validates and resolves the endpoint of every agent. */
export function loadApiConfig(
  path: string = DEFAULT_CONFIG_PATH,
  env: NodeJS.ProcessEnv = process.env,
): Record<AgentName, AgentEndpoint> {
  if (!existsSync(path)) {
    throw new Error(
      `LLM endpoint config not found: ${path}. Copy ${EXAMPLE_CONFIG_PATH} to ${path} and fill in ` +
        "base_url, model and the API key (or api_key_env).",
    );
  }
  const config = parseApiConfig(readJsonFile(path), path);
  const out = {} as Record<AgentName, AgentEndpoint>;
  for (const agent of AGENTS) out[agent] = resolveAgentEndpoint(agent, config, env, path);
  return out;
}
