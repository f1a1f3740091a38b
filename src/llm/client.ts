import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { Rng } from "../core/rng.ts";
import type { CacheKeyInput, RequestCache } from "./cache.ts";
import type { AgentEndpoint } from "./config.ts";
import { Limiter } from "./limiter.ts";
import { errorText } from "./messages.ts";
import type { ChatClient, ChatMessage, ChatOptions, ChatResult } from "./port.ts";

/**
 * The client's options: the port's, with the temperature optional (the endpoint's default) and
 * what only this client offers.
 */
export interface LLMChatOptions<T> extends Partial<ChatOptions<T>> {
  /** Ask for `response_format: {type: "json_object"}` (the prompt must still mention JSON). */
  responseFormatJson?: boolean;
  /** Aborting stops waiting and rejects with the signal's reason; it is never retried. */
  signal?: AbortSignal;
  /**
   * Sent as the request's `seed` (servers that support it sample reproducibly) and part of the
   * cache key, so that the samples of one prompt are cached separately.
   */
  seed?: number;
  /** Set to false to bypass the client's request cache for this call. */
  cache?: boolean;
}

export interface LLMChatResult<T> extends ChatResult<T> {
  usage: { promptTokens: number; completionTokens: number };
  /** Attempts made, 1 when the first one succeeded, 0 for a reply served from the cache. */
  attempts: number;
  cached: boolean;
}

export const ERROR_KINDS = [
  "rate_limit",
  "server",
  "timeout",
  "schema",
  "auth",
  "bad_request",
  "network",
] as const;
export type LLMErrorKind = (typeof ERROR_KINDS)[number];

const RETRYABLE: ReadonlySet<LLMErrorKind> = new Set([
  "rate_limit",
  "server",
  "timeout",
  "schema",
  "network",
]);

export class LLMError extends Error {
  readonly kind: LLMErrorKind;
  readonly attempts: number;
  readonly agent: string;
  /** HTTP status when the endpoint answered with one. */
  readonly status: number | undefined;

  constructor(
    kind: LLMErrorKind,
    agent: string,
    attempts: number,
    message: string,
    opts: { cause?: unknown; status?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "LLMError";
    this.kind = kind;
    this.agent = agent;
    this.attempts = attempts;
    this.status = opts.status;
  }
}

export interface UsageStats {
  agent: string;
  model: string;
  /** chat() calls that finished (successfully or not). */
  calls: number;
  /** chat() calls that ended in an LLMError. */
  failedCalls: number;
  /** Attempts beyond the first, over all calls. */
  retries: number;
  promptTokens: number;
  completionTokens: number;
  /** 0 when the endpoint has no pricing. */
  costUSD: number;
  /** Calls answered from the request cache (no request, no tokens billed). */
  cacheHits: number;
  /** Failed attempts by cause (a call retried twice for 429 counts 2 under rate_limit). */
  byKind: Record<LLMErrorKind, number>;
}

export interface LLMClientDeps {
  sleep?: (ms: number) => Promise<void>;
  /** Source of backoff jitter; defaults to an Rng seeded from the agent name. */
  rng?: Rng;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Share one limiter between clients that hit the same provider quota. */
  limiter?: Limiter;
  /** Opt-in on-disk reply cache. */
  cache?: RequestCache;
}

/** Cap on a server-provided Retry-After, so that a bogus header cannot park a run for hours. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

export function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with the signal's reason as soon as it aborts, so a long backoff does not delay a stop. */
function abortable(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function seedFromName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function emptyByKind(): Record<LLMErrorKind, number> {
  return Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<LLMErrorKind, number>;
}

/** Usage counters at zero: a new client's, and the start of every sum of them. */
export function emptyUsage(): Omit<UsageStats, "agent" | "model"> {
  return {
    calls: 0,
    failedCalls: 0,
    retries: 0,
    promptTokens: 0,
    completionTokens: 0,
    costUSD: 0,
    cacheHits: 0,
    byKind: emptyByKind(),
  };
}

/** Parses `retry-after-ms`, or `retry-after` as seconds or an HTTP date; undefined if absent/invalid. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "" && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return undefined;
  const seconds = Number(ra);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

interface AttemptFailure {
  kind: LLMErrorKind;
  message: string;
  status?: number;
  retryAfterMs?: number;
  cause: unknown;
}

/**
 * A chat client for one agent. Retries are ours alone (the SDK's are off): 429 (honouring
 * Retry-After), 5xx, timeouts, network errors, malformed bodies and replies rejected by
 * `parse` are retried with exponential backoff and full jitter; 400/401/403/404 are not.
 */
export class LLMClient implements ChatClient {
  readonly endpoint: AgentEndpoint;
  readonly limiter: Limiter;
  private readonly openai: OpenAI;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly rng: Rng;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly usage: UsageStats;
  private readonly cache: RequestCache | undefined;

  constructor(endpoint: AgentEndpoint, deps: LLMClientDeps = {}) {
    this.endpoint = endpoint;
    this.openai = new OpenAI({
      apiKey: endpoint.apiKey,
      baseURL: endpoint.baseURL,
      maxRetries: 0,
      timeout: endpoint.timeoutMs,
    });
    this.limiter = deps.limiter ?? new Limiter(endpoint.maxConcurrency);
    this.sleep = deps.sleep ?? defaultSleep;
    this.rng = deps.rng ?? new Rng(seedFromName(endpoint.agent));
    this.baseBackoffMs = deps.baseBackoffMs ?? 500;
    this.maxBackoffMs = deps.maxBackoffMs ?? 20_000;
    this.cache = deps.cache;
    this.usage = { agent: endpoint.agent, model: endpoint.model, ...emptyUsage() };
  }

  stats(): UsageStats {
    return { ...this.usage, byKind: { ...this.usage.byKind } };
  }

  async chat<T = string>(messages: ChatMessage[], opts: LLMChatOptions<T> = {}): Promise<LLMChatResult<T>> {
    const maxAttempts = this.endpoint.maxRetries + 1;
    const usage = { promptTokens: 0, completionTokens: 0 };
    const cacheKey: CacheKeyInput | undefined =
      this.cache && opts.cache !== false
        ? {
            model: this.endpoint.model,
            messages,
            temperature: opts.temperature,
            maxTokens: opts.maxTokens,
            responseFormatJson: opts.responseFormatJson,
            seed: opts.seed,
          }
        : undefined;
    try {
      if (cacheKey) {
        const hit = this.fromCache<T>(cacheKey, opts);
        if (hit) return hit;
      }
      for (let attempt = 1; ; attempt++) {
        opts.signal?.throwIfAborted();
        if (attempt > 1) this.usage.retries++;
        // The slot is held only while a request is in flight, not during backoff.
        const outcome = await this.limiter.run(() => this.attempt(messages, opts, usage));
        if (outcome.ok) {
          if (cacheKey) this.storeInCache(cacheKey, outcome.text, usage);
          return { text: outcome.text, value: outcome.value, usage, attempts: attempt, cached: false };
        }
        const failure = outcome.failure;
        this.usage.byKind[failure.kind]++;
        if (!RETRYABLE.has(failure.kind) || attempt >= maxAttempts) {
          throw new LLMError(failure.kind, this.endpoint.agent, attempt, this.describe(failure, attempt), {
            cause: failure.cause,
            status: failure.status,
          });
        }
        await abortable(this.sleep(this.backoffMs(attempt, failure)), opts.signal);
      }
    } catch (err) {
      if (err instanceof LLMError) this.usage.failedCalls++;
      throw err;
    } finally {
      this.usage.calls++;
    }
  }

  private fromCache<T>(key: CacheKeyInput, opts: LLMChatOptions<T>): LLMChatResult<T> | undefined {
    const hit = this.cache!.get(key);
    if (!hit) return undefined;
    let value: T;
    try {
      value = opts.parse ? opts.parse(hit.text) : (hit.text as T);
    } catch {
      // Stored under an older parser that accepted it; ask the endpoint again.
      this.cache!.delete(key);
      return undefined;
    }
    this.usage.cacheHits++;
    return {
      text: hit.text,
      value,
      usage: { promptTokens: 0, completionTokens: 0 },
      attempts: 0,
      cached: true,
    };
  }

  private storeInCache(key: CacheKeyInput, text: string, usage: LLMChatResult<unknown>["usage"]): void {
    try {
      this.cache!.put(key, { text, usage: { ...usage } });
    } catch (err) {
      // A full disk must not throw away a reply that was paid for; the run goes on uncached.
      process.emitWarning(`request cache write failed for ${this.endpoint.agent}: ${errorText(err)}`);
    }
  }

  /** Full jitter: uniform in [0, min(max, base·2^(attempt−1))]; Retry-After wins when given. */
  private backoffMs(attempt: number, failure: AttemptFailure): number {
    if (failure.retryAfterMs !== undefined) return Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS);
    const ceiling = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
    return Math.floor(this.rng.next() * ceiling);
  }

  private describe(f: AttemptFailure, attempt: number): string {
    const { agent, model, baseURL, apiKeySource } = this.endpoint;
    const where = `${agent} (model ${model} at ${baseURL})`;
    const tries = `${attempt} attempt${attempt === 1 ? "" : "s"}`;
    switch (f.kind) {
      case "auth":
        return (
          `authentication failed for ${agent} (HTTP ${f.status}) at ${baseURL}` +
          `${apiKeySource ? ` using the API key from ${apiKeySource}` : ""}: ${f.message}. ` +
          "Check that key (see the api_config.json section of the README)."
        );
      case "bad_request":
        return `${where} rejected the request (HTTP ${f.status}, not retried): ${f.message}`;
      case "timeout":
        return `${where}: no reply within ${this.endpoint.timeoutMs} ms, gave up after ${tries}`;
      case "schema":
        return `${where}: reply rejected by the parser after ${tries}: ${f.message}`;
      default:
        return `${where}: ${f.kind} error after ${tries}: ${f.message}`;
    }
  }

  private async attempt<T>(
    messages: ChatMessage[],
    opts: LLMChatOptions<T>,
    usage: LLMChatResult<T>["usage"],
  ): Promise<{ ok: true; text: string; value: T } | { ok: false; failure: AttemptFailure }> {
    // Our own timer covers the whole exchange, body included; the SDK's only covers the headers.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.endpoint.timeoutMs);
    const onAbort = () => controller.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    // The signal may have fired while this call waited for a limiter slot.
    if (opts.signal?.aborted) controller.abort();
    let completion: unknown;
    try {
      completion = await this.openai.chat.completions.create(
        {
          model: this.endpoint.model,
          messages,
          ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
          ...(opts.maxTokens !== undefined ? { max_tokens: opts.maxTokens } : {}),
          ...(opts.responseFormatJson ? { response_format: { type: "json_object" as const } } : {}),
          ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        },
        { signal: controller.signal, maxRetries: 0, timeout: this.endpoint.timeoutMs },
      );
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      return { ok: false, failure: classify(err, timedOut) };
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }

    const reply = readCompletion(completion);
    if (reply.usage) {
      usage.promptTokens += reply.usage.promptTokens;
      usage.completionTokens += reply.usage.completionTokens;
      this.addUsage(reply.usage.promptTokens, reply.usage.completionTokens);
    }
    if (reply.text === undefined) {
      return {
        ok: false,
        failure: { kind: "server", message: `malformed response body: ${reply.problem}`, cause: completion },
      };
    }
    if (!opts.parse) return { ok: true, text: reply.text, value: reply.text as T };
    try {
      return { ok: true, text: reply.text, value: opts.parse(reply.text) };
    } catch (err) {
      return { ok: false, failure: { kind: "schema", message: errorText(err), cause: err } };
    }
  }

  private addUsage(prompt: number, completion: number): void {
    this.usage.promptTokens += prompt;
    this.usage.completionTokens += completion;
    const p = this.endpoint.pricing;
    if (p) this.usage.costUSD += (prompt * p.inputPerMTok + completion * p.outputPerMTok) / 1e6;
  }
}

function classify(err: unknown, timedOut: boolean): AttemptFailure {
  if (timedOut || err instanceof APIConnectionTimeoutError) {
    return { kind: "timeout", message: "request timed out", cause: err };
  }
  if (err instanceof APIUserAbortError) return { kind: "network", message: "request aborted", cause: err };
  if (err instanceof APIConnectionError) {
    const cause = (err as { cause?: unknown }).cause;
    return {
      kind: "network",
      message: `${err.message}${cause ? ` (${errorText(cause)})` : ""}`,
      cause: err,
    };
  }
  if (err instanceof APIError && err.status !== undefined) {
    const status = err.status;
    const message = err.message;
    if (status === 429)
      return { kind: "rate_limit", status, message, retryAfterMs: retryAfterMs(err.headers), cause: err };
    if (status === 401 || status === 403) return { kind: "auth", status, message, cause: err };
    if (status === 408) return { kind: "timeout", status, message, cause: err };
    if (status >= 500 || status === 409) {
      return { kind: "server", status, message, retryAfterMs: retryAfterMs(err.headers), cause: err };
    }
    return { kind: "bad_request", status, message, cause: err };
  }
  // The SDK lets a body that claims to be JSON but is not surface as a bare SyntaxError.
  if (err instanceof SyntaxError)
    return { kind: "server", message: `malformed response body: ${err.message}`, cause: err };
  return { kind: "network", message: errorText(err), cause: err };
}

function readCompletion(body: unknown): {
  text?: string;
  problem?: string;
  usage?: { promptTokens: number; completionTokens: number };
} {
  if (body === null || typeof body !== "object") {
    const shown = typeof body === "string" ? JSON.stringify(body.slice(0, 80)) : String(body);
    return { problem: `expected a chat completion object, got ${shown}` };
  }
  const b = body as { choices?: unknown; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
  const u = b.usage;
  const usage =
    u && typeof u === "object"
      ? { promptTokens: toCount(u.prompt_tokens), completionTokens: toCount(u.completion_tokens) }
      : undefined;
  const choice = Array.isArray(b.choices)
    ? (b.choices[0] as { message?: { content?: unknown } } | undefined)
    : undefined;
  if (!choice) return { problem: "no choices[0]", usage };
  const content = choice.message?.content;
  // Some servers send null content with an empty completion; that is an empty reply, not a fault.
  if (content === null) return { text: "", usage };
  if (typeof content !== "string") return { problem: "choices[0].message.content is not a string", usage };
  return { text: content, usage };
}

function toCount(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}
