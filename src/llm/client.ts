import type OpenAI from "openai";
import { fnv1a, Rng } from "../core/rng.ts";
import type { CacheKeyInput, RequestCache } from "./cache.ts";
import { type AgentEndpoint, DEFAULT_CONFIG_PATH } from "./config.ts";
import { type HttpFetch, httpFetch } from "./http-fetch.ts";
import { Limiter } from "./limiter.ts";
import { errorText } from "./messages.ts";
import type { ChatClient, ChatMessage, ChatOptions, ChatResult } from "./port.ts";
import { splitReasoning } from "./reasoning.ts";
import {
  type AttemptFailure,
  type ChatRequestBody,
  classify,
  ERROR_KINDS,
  type LLMErrorKind,
  type SendResult,
  sdkClient,
  sendWholeBody,
  wholeBodySdkClient,
} from "./send.ts";
import type { TransportThreads } from "./transport-threads.ts";

/**
 * The client's options: the port's, with the temperature optional (the endpoint's default) and
 * what only this client offers.
 */
export interface LLMChatOptions<T> extends Partial<ChatOptions<T>> {
  /** Ask for `response_format: {type: "json_object"}` (the prompt must still mention JSON). */
  responseFormatJson?: boolean;
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
  /** The model's thinking (a `<think>` block or `reasoning_content`), kept out of `text`. */
  reasoning?: string;
}

export { ERROR_KINDS, type LLMErrorKind, retryAfterMs } from "./send.ts";

const RETRYABLE: ReadonlySet<LLMErrorKind> = new Set([
  "rate_limit",
  "server",
  "timeout",
  "schema",
  "network",
]);

/** Failures of one replica rather than of the request: another replica may well answer. */
const REPLICA_FAULTS: ReadonlySet<LLMErrorKind> = new Set(["server", "timeout", "network"]);

/** System error codes that mean nothing answers at that address. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "BAD_PORT",
]);

export class LLMError extends Error {
  readonly kind: LLMErrorKind;
  readonly attempts: number;
  readonly agent: string;
  /** HTTP status when the endpoint answered with one. */
  readonly status: number | undefined;
  /** The replica of the last attempt. */
  readonly baseURL: string | undefined;
  readonly model: string | undefined;
  /**
   * The endpoint itself is unusable (bad key, bad model or path, nothing listening): every
   * further request would fail the same way, so a run stops at once instead of recording them.
   */
  readonly fatal: boolean;
  /** What to change to make it work, for fatal errors. */
  readonly fix: string | undefined;

  constructor(
    kind: LLMErrorKind,
    agent: string,
    attempts: number,
    message: string,
    opts: {
      cause?: unknown;
      status?: number;
      baseURL?: string;
      model?: string;
      fatal?: boolean;
      fix?: string;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "LLMError";
    this.kind = kind;
    this.agent = agent;
    this.attempts = attempts;
    this.status = opts.status;
    this.baseURL = opts.baseURL;
    this.model = opts.model;
    this.fatal = opts.fatal ?? false;
    this.fix = opts.fix;
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
  /** The fetch the SDK sends requests with (httpFetch, over keep-alive sockets, by default). */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Source of backoff jitter; defaults to an Rng seeded from the agent name. */
  rng?: Rng;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Share one limiter between clients that hit the same provider quota. */
  limiter?: Limiter;
  /** Opt-in on-disk reply cache. */
  cache?: RequestCache;
  /**
   * Called once per finished chat() call with what that call used (a UsageStats of one call),
   * so a caller can record usage as it accrues rather than only at the end of a run.
   */
  onCall?: (usage: UsageStats) => void;
  /** One-time notices (e.g. a server that refuses `response_format`); process warnings by default. */
  warn?: (line: string) => void;
  /** How long a failing replica is skipped at first; doubles on each further failure (≤ 5 min). */
  replicaCooldownMs?: number;
  now?: () => number;
  /**
   * Send requests from worker threads (the SDK and HTTP off the main thread), for runs with so
   * many requests in flight that the main thread would be busy with them; shared by clients.
   * Not used with a custom `fetch`, which lives in this thread.
   */
  threads?: TransportThreads;
}

/** Cap on a server-provided Retry-After, so that a bogus header cannot park a run for hours. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
const DEFAULT_REPLICA_COOLDOWN_MS = 30_000;
const MAX_REPLICA_COOLDOWN_MS = 5 * 60_000;

let httpFetchOfProcess: HttpFetch | undefined;
/** One set of keep-alive sockets for every client of the process, as one global fetch would have. */
function sharedHttpFetch(): HttpFetch {
  httpFetchOfProcess ??= httpFetch();
  return httpFetchOfProcess;
}

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

/** One base URL of an agent's endpoint, with what the picker needs to know about it. */
interface Replica {
  url: string;
  openai: OpenAI;
  inFlight: number;
  /** Skipped until then (ms since the epoch) after a failure; 0 when healthy. */
  downUntil: number;
  strikes: number;
}

type ResponseFormat =
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; schema: Record<string, unknown>; strict: boolean } };

/**
 * A chat client for one agent. Retries are ours alone (the SDK's are off): 429 (honouring
 * Retry-After), 5xx, timeouts, network errors, malformed bodies and replies rejected by
 * `parse` are retried with exponential backoff and full jitter; 400/401/403/404 are not. An
 * endpoint with several base URLs (replicas) sends each request to the healthy one with the
 * fewest requests in flight; a replica that fails is skipped for a while.
 */
export class LLMClient implements ChatClient {
  readonly endpoint: AgentEndpoint;
  readonly limiter: Limiter;
  private readonly replicas: Replica[];
  /**
   * The replicas' transport is httpFetch (no fetch given): it resolves only once the whole body
   * is in, its timeout covering the whole exchange, so no timer of our own is needed.
   */
  private readonly wholeBody: boolean;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly rng: Rng;
  private readonly baseBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly usage: UsageStats;
  private readonly threads: TransportThreads | undefined;
  private readonly cache: RequestCache | undefined;
  private readonly onCall: ((usage: UsageStats) => void) | undefined;
  private readonly warn: (line: string) => void;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  /** Set once the server answered 400 to a request with `response_format` and took it without. */
  private responseFormatRefused = false;

  constructor(endpoint: AgentEndpoint, deps: LLMClientDeps = {}) {
    this.endpoint = endpoint;
    const urls = endpoint.baseURLs && endpoint.baseURLs.length > 0 ? endpoint.baseURLs : [endpoint.baseURL];
    const fetch = deps.fetch;
    this.wholeBody = fetch === undefined;
    this.replicas = urls.map((url) => {
      const sdk = { apiKey: endpoint.apiKey, baseURL: url, timeoutMs: endpoint.timeoutMs };
      return {
        url,
        openai: fetch
          ? sdkClient({ ...sdk, fetch })
          : wholeBodySdkClient({ ...sdk, fetch: sharedHttpFetch() }),
        inFlight: 0,
        downUntil: 0,
        strikes: 0,
      };
    });
    this.limiter = deps.limiter ?? new Limiter(endpoint.maxConcurrency);
    this.sleep = deps.sleep ?? defaultSleep;
    this.rng = deps.rng ?? new Rng(fnv1a(endpoint.agent));
    this.baseBackoffMs = deps.baseBackoffMs ?? 500;
    this.maxBackoffMs = deps.maxBackoffMs ?? 20_000;
    this.cache = deps.cache;
    this.onCall = deps.onCall;
    this.warn = deps.warn ?? ((line) => process.emitWarning(line));
    this.cooldownMs = deps.replicaCooldownMs ?? DEFAULT_REPLICA_COOLDOWN_MS;
    this.now = deps.now ?? Date.now;
    this.threads = deps.threads;
    this.usage = { agent: endpoint.agent, model: endpoint.model, ...emptyUsage() };
  }

  stats(): UsageStats {
    return { ...this.usage, byKind: { ...this.usage.byKind } };
  }

  /** Base URLs being skipped right now after failures. */
  unhealthyReplicas(): string[] {
    const now = this.now();
    return this.replicas.filter((r) => r.downUntil > now).map((r) => r.url);
  }

  async chat<T = string>(messages: ChatMessage[], opts: LLMChatOptions<T> = {}): Promise<LLMChatResult<T>> {
    const maxAttempts = this.endpoint.maxRetries + 1;
    const usage = { promptTokens: 0, completionTokens: 0 };
    const call: UsageStats = { agent: this.endpoint.agent, model: this.endpoint.model, ...emptyUsage() };
    call.calls = 1;
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
        if (hit) {
          call.cacheHits = 1;
          return hit;
        }
      }
      let formatRetry = false;
      for (let attempt = 1; ; attempt++) {
        opts.signal?.throwIfAborted();
        if (attempt > 1) call.retries++;
        const format = formatRetry ? undefined : this.responseFormat(opts);
        // The slot is held only while a request is in flight, not during backoff.
        const { outcome, replica } = await this.limiter.run(async () => {
          const replica = this.pickReplica();
          replica.inFlight++;
          try {
            return { outcome: await this.attempt(replica, messages, opts, format, usage, call), replica };
          } finally {
            replica.inFlight--;
          }
        });
        if (outcome.ok) {
          this.markHealthy(replica);
          if (formatRetry && !this.responseFormatRefused) {
            this.responseFormatRefused = true;
            this.warn(
              `${this.endpoint.agent}: ${replica.url} rejects response_format (HTTP 400); requests go without it from now on`,
            );
          }
          if (cacheKey) this.storeInCache(cacheKey, outcome.text, usage);
          return {
            text: outcome.text,
            value: outcome.value,
            usage,
            attempts: attempt,
            cached: false,
            ...(outcome.reasoning !== undefined ? { reasoning: outcome.reasoning } : {}),
          };
        }
        const failure = outcome.failure;
        call.byKind[failure.kind]++;
        if (REPLICA_FAULTS.has(failure.kind)) this.markDown(replica);
        // A server that does not know response_format answers 400: ask once more without it.
        if (failure.kind === "bad_request" && format && !formatRetry) {
          formatRetry = true;
          continue;
        }
        if (!RETRYABLE.has(failure.kind) || attempt >= maxAttempts) {
          throw this.error(failure, attempt, replica.url);
        }
        if (REPLICA_FAULTS.has(failure.kind) && this.healthyOtherThan(replica)) continue;
        await abortable(this.sleep(this.backoffMs(attempt, failure)), opts.signal);
      }
    } catch (err) {
      if (err instanceof LLMError) call.failedCalls = 1;
      throw err;
    } finally {
      this.account(call);
    }
  }

  private account(call: UsageStats): void {
    const u = this.usage;
    u.calls += call.calls;
    u.failedCalls += call.failedCalls;
    u.retries += call.retries;
    u.cacheHits += call.cacheHits;
    for (const k of ERROR_KINDS) u.byKind[k] += call.byKind[k];
    // tokens and cost were added per attempt, as the replies arrived
    if (this.onCall) {
      try {
        this.onCall(call);
      } catch (err) {
        this.warn(`${this.endpoint.agent}: usage record failed: ${errorText(err)}`);
      }
    }
  }

  private responseFormat<T>(opts: LLMChatOptions<T>): ResponseFormat | undefined {
    if (this.responseFormatRefused) return undefined;
    const mode = this.endpoint.structuredOutput ?? "none";
    if (opts.json && mode === "json_schema") {
      return {
        type: "json_schema",
        json_schema: { name: opts.json.name, schema: opts.json.schema, strict: false },
      };
    }
    if (opts.responseFormatJson || (opts.json && mode === "json_object")) return { type: "json_object" };
    return undefined;
  }

  private pickReplica(): Replica {
    const now = this.now();
    let best: Replica | undefined;
    for (const r of this.replicas) {
      if (r.downUntil > now) continue;
      if (!best || r.inFlight < best.inFlight) best = r;
    }
    if (best) return best;
    // All are failing: try the one that has been skipped longest.
    return this.replicas.reduce((a, b) => (b.downUntil < a.downUntil ? b : a));
  }

  private healthyOtherThan(replica: Replica): boolean {
    const now = this.now();
    return this.replicas.some((r) => r !== replica && r.downUntil <= now);
  }

  private markDown(r: Replica): void {
    if (this.replicas.length === 1) return;
    r.strikes++;
    r.downUntil = this.now() + Math.min(MAX_REPLICA_COOLDOWN_MS, this.cooldownMs * 2 ** (r.strikes - 1));
  }

  private markHealthy(r: Replica): void {
    r.strikes = 0;
    r.downUntil = 0;
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
      this.warn(`request cache write failed for ${this.endpoint.agent}: ${errorText(err)}`);
    }
  }

  /** Full jitter: uniform in [0, min(max, base·2^(attempt−1))]; Retry-After wins when given. */
  private backoffMs(attempt: number, failure: AttemptFailure): number {
    if (failure.retryAfterMs !== undefined) return Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS);
    const ceiling = Math.min(this.maxBackoffMs, this.baseBackoffMs * 2 ** (attempt - 1));
    return Math.floor(this.rng.next() * ceiling);
  }

  /** The key must never reach a message, even when a server echoes it back. */
  private redact(text: string): string {
    const key = this.endpoint.apiKey;
    const flat = text.replace(/\s+/g, " ").trim();
    const short = flat.length > 300 ? `${flat.slice(0, 300)}…` : flat;
    return key.length >= 4 ? short.split(key).join("***") : short;
  }

  private error(f: AttemptFailure, attempt: number, url: string): LLMError {
    const { agent, model } = this.endpoint;
    const message = this.redact(f.message);
    const tries = `${attempt} attempt${attempt === 1 ? "" : "s"}`;
    const config = this.endpoint.configPath ?? DEFAULT_CONFIG_PATH;
    const at = `at ${url} (model ${model})`;
    const opts = { cause: f.cause, status: f.status, baseURL: url, model };
    switch (f.kind) {
      case "auth": {
        const fix = keyFix(this.endpoint, config);
        return new LLMError(
          "auth",
          agent,
          attempt,
          `${agent}: authentication failed (HTTP ${f.status}: ${message}) ${at}. Fix: ${fix}`,
          { ...opts, fatal: true, fix },
        );
      }
      case "not_found": {
        const fix = `check base_url (the API root, usually ending in /v1) and model for ${agent} in ${config}`;
        return new LLMError(
          "not_found",
          agent,
          attempt,
          `${agent}: not found (HTTP 404: ${message}) ${at}. Fix: ${fix}`,
          { ...opts, fatal: true, fix },
        );
      }
      case "network": {
        if (f.code && UNREACHABLE_CODES.has(f.code)) {
          const badPort = f.code === "BAD_PORT";
          const fix = badPort
            ? `serve the endpoint on another port and correct base_url for ${agent} in ${config}`
            : `start the server at ${url}, or correct base_url for ${agent} in ${config}`;
          const what =
            f.code === "ECONNREFUSED"
              ? "connection refused"
              : badPort
                ? "fetch refuses this port (it is on fetch's list of blocked ports)"
                : `cannot reach the host (${f.code})`;
          return new LLMError(
            "network",
            agent,
            attempt,
            `${agent}: ${what} after ${tries} ${at}. Fix: ${fix}`,
            {
              ...opts,
              fatal: true,
              fix,
            },
          );
        }
        return new LLMError(
          "network",
          agent,
          attempt,
          `${agent}: network error after ${tries} ${at}: ${message}`,
          opts,
        );
      }
      case "bad_request":
        return new LLMError(
          "bad_request",
          agent,
          attempt,
          `${agent}: request rejected (HTTP ${f.status}, not retried) ${at}: ${message}`,
          opts,
        );
      case "timeout":
        return new LLMError(
          "timeout",
          agent,
          attempt,
          `${agent}: no reply within ${this.endpoint.timeoutMs} ms, gave up after ${tries} ${at}`,
          opts,
        );
      case "schema":
        return new LLMError(
          "schema",
          agent,
          attempt,
          `${agent}: reply rejected by the parser after ${tries} ${at}: ${message}`,
          opts,
        );
      default:
        return new LLMError(
          f.kind,
          agent,
          attempt,
          `${agent}: ${f.kind} error after ${tries} ${at}: ${message}`,
          opts,
        );
    }
  }

  private async attempt<T>(
    replica: Replica,
    messages: ChatMessage[],
    opts: LLMChatOptions<T>,
    format: ResponseFormat | undefined,
    usage: LLMChatResult<T>["usage"],
    call: UsageStats,
  ): Promise<
    { ok: true; text: string; value: T; reasoning?: string } | { ok: false; failure: AttemptFailure }
  > {
    const body = {
      model: this.endpoint.model,
      messages,
      ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      ...(opts.maxTokens !== undefined ? { max_tokens: opts.maxTokens } : {}),
      ...(format ? { response_format: format } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    };
    const sent = await this.send(replica, body, opts.signal);
    if (!sent.ok) return sent;
    const completion = sent.completion;

    const reply = readCompletion(completion);
    if (reply.usage) {
      usage.promptTokens += reply.usage.promptTokens;
      usage.completionTokens += reply.usage.completionTokens;
      this.addTokens(call, reply.usage.promptTokens, reply.usage.completionTokens);
    }
    if (reply.text === undefined) {
      return {
        ok: false,
        failure: { kind: "server", message: `malformed response body: ${reply.problem}`, cause: completion },
      };
    }
    const split = splitReasoning(reply.text);
    const reasoning =
      [reply.reasoning, split.reasoning].filter((r): r is string => !!r).join("\n\n") || undefined;
    const text = split.answer;
    const extra = reasoning !== undefined ? { reasoning } : {};
    if (!opts.parse) return { ok: true, text, value: text as T, ...extra };
    try {
      return { ok: true, text, value: opts.parse(text), ...extra };
    } catch (err) {
      return { ok: false, failure: { kind: "schema", message: errorText(err), cause: err } };
    }
  }

  /** One request to one replica: on a transport thread when there are some, else here. */
  private async send(
    replica: Replica,
    body: ChatRequestBody,
    signal: AbortSignal | undefined,
  ): Promise<SendResult> {
    const timeoutMs = this.endpoint.timeoutMs;
    if (this.wholeBody) {
      if (this.threads)
        return this.threads.send(
          { baseURL: replica.url, apiKey: this.endpoint.apiKey, timeoutMs, body },
          signal,
        );
      return sendWholeBody(replica.openai, body, { ...(signal ? { signal } : {}), timeoutMs });
    }
    // Another fetch may hand the body over as a stream, which the SDK's timer (armed until the
    // headers) does not cover: our own covers the whole exchange.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    // The signal may have fired while this call waited for a limiter slot.
    if (signal?.aborted) controller.abort();
    try {
      const completion = await replica.openai.chat.completions.create(body, {
        signal: controller.signal,
        maxRetries: 0,
        timeout: timeoutMs,
      });
      return { ok: true, completion };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      return { ok: false, failure: classify(err, timedOut) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Tokens count as soon as a reply arrives, failed or not: they are billed either way. */
  private addTokens(call: UsageStats, prompt: number, completion: number): void {
    const p = this.endpoint.pricing;
    const cost = p ? (prompt * p.inputPerMTok + completion * p.outputPerMTok) / 1e6 : 0;
    for (const u of [call, this.usage]) {
      u.promptTokens += prompt;
      u.completionTokens += completion;
      u.costUSD += cost;
    }
  }
}

/** Where the agent's key came from, as advice on which setting to check. */
function keyFix(e: AgentEndpoint, config: string): string {
  const src = e.apiKeySource ?? "";
  const env = /^env (\S+)/.exec(src)?.[1];
  if (env === "OPENAI_API_KEY" && !e.apiKeyField)
    return `check $OPENAI_API_KEY, or set api_key_env for ${e.agent} in ${config}`;
  if (env) return `check api_key_env for ${e.agent} in ${config} (the key comes from $${env})`;
  return `check api_key for ${e.agent} in ${config}`;
}

function readCompletion(body: unknown): {
  text?: string;
  reasoning?: string;
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
    ? (b.choices[0] as
        | { message?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown } }
        | undefined)
    : undefined;
  if (!choice) return { problem: "no choices[0]", usage };
  const m = choice.message;
  const thought = m?.reasoning_content ?? m?.reasoning;
  const reasoning = typeof thought === "string" && thought.trim() !== "" ? thought : undefined;
  const content = m?.content;
  // Some servers send null content with an empty completion; that is an empty reply, not a fault.
  if (content === null || content === undefined) {
    if (content === undefined && reasoning === undefined)
      return { problem: "choices[0].message.content is missing", usage };
    return { text: "", reasoning, usage };
  }
  if (typeof content !== "string") return { problem: "choices[0].message.content is not a string", usage };
  return { text: content, reasoning, usage };
}

function toCount(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0;
}
