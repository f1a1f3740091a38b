/**
 * One chat completion request through the `openai` SDK, and what became of it: the completion
 * body, or the failure classified by kind. The client's retries, replicas and accounting sit
 * above this; the transport threads (transport-threads.ts) run this same code off the main
 * thread.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
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
export function sdkClient(o: {
  baseURL: string;
  apiKey: string;
  timeoutMs: number;
  fetch: typeof fetch;
}): OpenAI {
  return new OpenAI({
    apiKey: o.apiKey,
    baseURL: o.baseURL,
    maxRetries: 0,
    timeout: o.timeoutMs,
    fetch: o.fetch,
    defaultHeaders: SDK_TELEMETRY_HEADERS,
  });
}

/**
 * Send over a fetch that resolves once the whole body is in (httpFetch): the SDK's own timer and
 * abort signal, armed until then, cover the whole exchange, and a second pair per call would
 * cost measurable CPU at a hundred calls in flight (bench/README.md, training-free-overhead).
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
