/**
 * One chat completion request through the `openai` SDK, and what became of it: the completion
 * body, or the failure classified by kind. The client's retries, replicas and accounting sit
 * above this; the transport threads (transport-threads.ts) run this same code off the main
 * thread.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import type { HttpFetch } from "./http-fetch.ts";
import { errorText } from "./messages.ts";

export const ERROR_KINDS = [
  "rate_limit",
  "server",
  "timeout",
  "schema",
  "auth",
  "not_found",
  "bad_request",
  "network",
] as const;
export type LLMErrorKind = (typeof ERROR_KINDS)[number];

/**
 * The SDK's own telemetry headers (language, OS, runtime, retry count…), which no
 * OpenAI-compatible server needs: each is built, copied, sorted, formatted for a debug log and
 * sent with every request (bench/README.md, training-free-overhead). A null default removes one.
 */
const SDK_TELEMETRY_HEADERS: Record<string, null> = Object.fromEntries(
  ["Lang", "Package-Version", "OS", "Arch", "Runtime", "Runtime-Version", "Retry-Count", "Timeout"].map(
    (h) => [`X-Stainless-${h}`, null],
  ),
);

/** The body of a chat completion request, as the client builds it. */
export type ChatRequestBody = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;

export type SendResult = { ok: true; completion: unknown } | { ok: false; failure: AttemptFailure };

/** The SDK client of one base URL. Its retries are off: the caller's are the only ones. */
export function sdkClient(o: SdkClientOptions<typeof fetch>): OpenAI {
  return new OpenAI({ ...clientOptions(o), fetch: o.fetch });
}

interface SdkClientOptions<F> {
  baseURL: string;
  apiKey: string;
  timeoutMs: number;
  fetch: F;
}

function clientOptions(o: SdkClientOptions<unknown>) {
  return {
    apiKey: o.apiKey,
    baseURL: o.baseURL,
    maxRetries: 0,
    timeout: o.timeoutMs,
    defaultHeaders: SDK_TELEMETRY_HEADERS,
  };
}

type RequestOptionsOf = Parameters<OpenAI["buildRequest"]>[0];
type BuiltRequest = Awaited<ReturnType<OpenAI["buildRequest"]>>;

/**
 * The SDK client over httpFetch, with two of the SDK's public methods specialised for what the
 * client sends: a JSON body, no per-request headers or query. Per request, the SDK merges its
 * header sets through web Headers objects and arms an abort controller, a listener on the
 * caller's signal (never removed) and a timer; at a hundred calls in flight that was a quarter
 * of the bytes the client allocated (bench/README.md, training-free-overhead).
 * - buildRequest: the SDK builds the first request of the client itself; its headers, which
 *   depend only on the client's settings, are kept and sent with every later one.
 * - fetchWithTimeout: httpFetch takes the timeout and the caller's signal itself, and removes
 *   its listener when the exchange ends.
 * A request of another shape goes through the SDK's own methods; statuses, errors and the
 * reply's parsing are the SDK's in every case.
 */
class WholeBodyOpenAI extends OpenAI {
  private readonly send: HttpFetch;
  private headers: Record<string, string> | undefined;
  private readonly urls = new Map<string, string>();

  constructor(o: ConstructorParameters<typeof OpenAI>[0] & { fetch: HttpFetch }) {
    super({ ...o, fetch: o.fetch as unknown as typeof fetch });
    this.send = o.fetch;
  }

  override async buildRequest(
    options: RequestOptionsOf,
    extra?: { retryCount?: number },
  ): Promise<BuiltRequest> {
    const plain =
      options.headers === undefined &&
      options.query == null &&
      options.fetchOptions === undefined &&
      options.idempotencyKey === undefined &&
      options.defaultBaseURL === undefined &&
      typeof options.body === "object" &&
      options.body !== null &&
      Object.getPrototypeOf(options.body) === Object.prototype;
    if (!plain || this.headers === undefined) {
      const built = await super.buildRequest(options, extra);
      if (plain) this.headers = Object.fromEntries(built.req.headers as Headers);
      return built;
    }
    let url = this.urls.get(options.path);
    if (url === undefined) {
      url = this.buildURL(options.path, undefined);
      this.urls.set(options.path, url);
    }
    return {
      req: {
        method: options.method,
        // A plain object where the SDK's type says Headers: only httpFetch reads it (the SDK's
        // debug log, the one other reader, takes either).
        headers: this.headers as unknown as Headers,
        body: JSON.stringify(options.body),
        ...(options.signal ? { signal: options.signal } : {}),
      },
      url,
      timeout: options.timeout ?? this.timeout,
    };
  }

  override fetchWithTimeout(
    url: RequestInfo,
    init: RequestInit | undefined,
    ms: number,
    _controller: AbortController,
  ): Promise<Response> {
    return this.send(url, { ...init, method: (init?.method ?? "GET").toUpperCase(), timeoutMs: ms });
  }
}

// The SDK names its User-Agent after the client's class: servers see the SDK's own.
Object.defineProperty(WholeBodyOpenAI, "name", { value: OpenAI.name });

/** The SDK client of one base URL over httpFetch (see WholeBodyOpenAI); retries off, as sdkClient. */
export function wholeBodySdkClient(o: SdkClientOptions<HttpFetch>): OpenAI {
  return new WholeBodyOpenAI({ ...clientOptions(o), fetch: o.fetch });
}

/**
 * Send through a client over httpFetch (wholeBodySdkClient), which resolves once the whole body
 * is in: its timeout and the caller's signal cover the whole exchange, and a second pair per
 * call would cost measurable CPU at a hundred calls in flight (bench/README.md,
 * training-free-overhead).
 * An abort by `signal` rejects with its reason instead of resolving.
 */
export async function sendWholeBody(
  openai: OpenAI,
  body: ChatRequestBody,
  opts: { signal?: AbortSignal; timeoutMs: number },
): Promise<SendResult> {
  try {
    const completion = await openai.chat.completions.create(body, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      maxRetries: 0,
      timeout: opts.timeoutMs,
    });
    return { ok: true, completion };
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    return { ok: false, failure: classify(err, false) };
  }
}

export interface AttemptFailure {
  kind: LLMErrorKind;
  message: string;
  status?: number;
  retryAfterMs?: number;
  /** A system error code found in the cause chain (ECONNREFUSED, …). */
  code?: string;
  cause: unknown;
}

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

/**
 * The first system error code (ECONNREFUSED, …) along an error's cause chain. fetch refuses the
 * ports on its block list (6000, 9, 25, …) with a bare "bad port"; that is named BAD_PORT.
 */
function errnoCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
    if (e instanceof Error && e.message === "bad port") return "BAD_PORT";
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors))
      for (const sub of errors) {
        const c = errnoCode(sub);
        if (c) return c;
      }
  }
  return undefined;
}

export function classify(err: unknown, timedOut: boolean): AttemptFailure {
  if (timedOut || err instanceof APIConnectionTimeoutError) {
    return { kind: "timeout", message: "request timed out", cause: err };
  }
  if (err instanceof APIUserAbortError) return { kind: "network", message: "request aborted", cause: err };
  if (err instanceof APIConnectionError) {
    const cause = (err as { cause?: unknown }).cause;
    const code = errnoCode(err);
    return {
      kind: "network",
      message: `${err.message}${cause ? ` (${errorText(cause)})` : ""}${code ? ` [${code}]` : ""}`,
      ...(code ? { code } : {}),
      cause: err,
    };
  }
  if (err instanceof APIError && err.status !== undefined) {
    const status = err.status;
    const message = err.message;
    if (status === 429)
      return { kind: "rate_limit", status, message, retryAfterMs: retryAfterMs(err.headers), cause: err };
    if (status === 401 || status === 403) return { kind: "auth", status, message, cause: err };
    if (status === 404) return { kind: "not_found", status, message, cause: err };
    if (status === 408) return { kind: "timeout", status, message, cause: err };
    if (status >= 500 || status === 409) {
      return { kind: "server", status, message, retryAfterMs: retryAfterMs(err.headers), cause: err };
    }
    return { kind: "bad_request", status, message, cause: err };
  }
  // The SDK lets a body that claims to be JSON but is not surface as a bare SyntaxError.
  if (err instanceof SyntaxError)
    return { kind: "server", message: `malformed response body: ${err.message}`, cause: err };
  const code = errnoCode(err);
  return { kind: "network", message: errorText(err), ...(code ? { code } : {}), cause: err };
}
