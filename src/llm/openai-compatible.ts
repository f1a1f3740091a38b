import { LLMClient, type LLMClientDeps } from "./client.ts";
import { DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, type Pricing } from "./config.ts";

export interface OpenAICompatibleOptions {
  /** Endpoint root including `/v1`, e.g. `https://api.deepseek.com/v1` or `http://127.0.0.1:8000/v1`. */
  baseURL: string;
  /** Local servers that ignore keys still need some non-empty value. */
  apiKey: string;
  model: string;
  /** The name in usage reports and error messages. */
  name?: string;
  maxConcurrency?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** USD per million tokens; without it the cost is reported as 0. */
  pricing?: Pricing;
  deps?: LLMClientDeps;
}

/**
 * The project's chat client for any OpenAI-compatible endpoint (OpenAI, DeepSeek, vLLM, SGLang,
 * Ollama, llama.cpp server): retries with backoff and jitter, a concurrency limit, token usage
 * and cost. The same client the `grpo` commands build from `api_config.json`, built from values.
 */
export function openAICompatible(opts: OpenAICompatibleOptions): LLMClient {
  if (!opts.baseURL)
    throw new Error("openAICompatible: baseURL is required (e.g. https://api.openai.com/v1)");
  if (!opts.model) throw new Error("openAICompatible: model is required");
  if (!opts.apiKey)
    throw new Error(
      "openAICompatible: apiKey is required (a local server that ignores keys takes any value)",
    );
  return new LLMClient(
    {
      agent: opts.name ?? opts.model,
      baseURL: opts.baseURL,
      model: opts.model,
      apiKey: opts.apiKey,
      maxConcurrency: opts.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxRetries: opts.maxRetries ?? DEFAULT_MAX_RETRIES,
      ...(opts.pricing ? { pricing: opts.pricing } : {}),
    },
    opts.deps,
  );
}
