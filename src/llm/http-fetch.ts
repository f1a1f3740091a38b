/**
 * The fetch the client gives the `openai` SDK: one request over node's http(s) with a keep-alive
 * agent, answered once the whole body has arrived. It implements what the SDK reads of a
 * fetch and its response (method, headers, a string body, a signal; status, headers, json(),
 * text()) and nothing else.
 *
 * Why not the global fetch: at a hundred requests in flight its web streams, Request and
 * Response objects and per-request abort signals cost the client about 0.95 ms of CPU per call
 * on the 2-core machine; this costs about a third less (bench/README.md, training-free-overhead),
 * and that CPU is what keeps a large run from keeping its endpoint busy. Its `timeoutMs`
 * (send.ts passes the SDK's) covers the whole exchange, body included.
 */
import http from "node:http";
import https from "node:https";
import { urlToHttpOptions } from "node:url";

export interface HttpFetchOptions {
  /** Sockets kept per host; a run's concurrency limit keeps the real number below it. */
  maxSockets?: number;
}

/** The slice of a Headers object the SDK and the client read. */
class ReplyHeaders {
  constructor(private readonly raw: http.IncomingHttpHeaders) {}

  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(", ") : v;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const k of Object.keys(this.raw)) yield [k, this.get(k)!];
  }

  forEach(fn: (value: string, key: string) => void): void {
    for (const [k, v] of this.entries()) fn(v, k);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

class Reply {
  readonly ok: boolean;
  readonly statusText: string;
  /** Read whole already; the SDK only cancels a body it will not read. */
  readonly body = null;
  readonly bodyUsed = false;
  readonly redirected = false;
  readonly type = "basic";

  constructor(
    readonly url: string,
    readonly status: number,
    readonly headers: ReplyHeaders,
    private readonly data: Buffer,
    statusText: string | undefined,
  ) {
    this.ok = status >= 200 && status < 300;
    this.statusText = statusText ?? "";
  }

  async text(): Promise<string> {
    return this.data.toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.data.toString("utf8"));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.data.buffer.slice(
      this.data.byteOffset,
      this.data.byteOffset + this.data.byteLength,
    ) as ArrayBuffer;
  }
}

/** The fetch's init, plus a timeout over the whole exchange, body included. */
export interface HttpFetchInit extends RequestInit {
  timeoutMs?: number;
}

/** httpFetch: a fetch whose reply's body is in whole when it resolves. */
export type HttpFetch = (input: string | URL | Request, init?: HttpFetchInit) => Promise<Response>;

function requestHeaders(h: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  if (typeof (h as Headers).forEach === "function" && !Array.isArray(h)) {
    (h as Headers).forEach((v, k) => {
      out[k] = v;
    });
  } else if (Array.isArray(h)) {
    for (const [k, v] of h) out[k!.toLowerCase()] = v!;
  } else {
    const record = h as Record<string, string>;
    for (const k in record) out[k.toLowerCase()] = record[k]!;
  }
  return out;
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason;
  if (reason instanceof Error && reason.name === "AbortError") return reason;
  const err = new Error("This operation was aborted", { cause: reason });
  err.name = "AbortError";
  return err;
}

function timeoutError(ms: number): Error {
  const err = new Error(`request timed out after ${ms} ms`);
  err.name = "TimeoutError";
  return err;
}

interface Target {
  href: string;
  protocol: string;
  options: http.RequestOptions;
}

/** Parsed request URLs; a client sends to a handful of them, parsing each every time costs CPU. */
const MAX_CACHED_URLS = 256;

export function httpFetch(opts: HttpFetchOptions = {}): HttpFetch {
  const maxSockets = opts.maxSockets ?? 1024;
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets }),
    "https:": new https.Agent({ keepAlive: true, maxSockets }),
  };
  const urls = new Map<string, Target>();
  const parse = (input: string | URL | Request): Target => {
    const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    let target = urls.get(href);
    if (!target) {
      const url = new URL(href);
      target = { href: url.href, protocol: url.protocol, options: urlToHttpOptions(url) };
      if (urls.size >= MAX_CACHED_URLS) urls.clear();
      urls.set(href, target);
    }
    return target;
  };
  const send = (input: string | URL | Request, init: HttpFetchInit = {}): Promise<Reply> => {
    let url: Target;
    try {
      url = parse(input);
    } catch (err) {
      return Promise.reject(err);
    }
    const isHttps = url.protocol === "https:";
    if (!isHttps && url.protocol !== "http:")
      return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
    const signal = init.signal ?? undefined;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== "string")
      return Promise.reject(new TypeError("httpFetch sends string bodies only"));
    return new Promise<Reply>((resolve, reject) => {
      const headers = requestHeaders(init.headers);
      if (typeof body === "string") headers["content-length"] = String(Buffer.byteLength(body));
      const req = (isHttps ? https : http).request(
        {
          ...url.options,
          method: init.method ?? "GET",
          headers,
          agent: agents[url.protocol as "http:" | "https:"],
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", fail);
          res.on("end", () => {
            settle();
            resolve(
              new Reply(
                url.href,
                res.statusCode ?? 0,
                new ReplyHeaders(res.headers),
                chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
                res.statusMessage,
              ),
            );
          });
        },
      );
      const timer =
        init.timeoutMs === undefined
          ? undefined
          : setTimeout(() => req.destroy(timeoutError(init.timeoutMs!)), init.timeoutMs);
      function settle() {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
      function fail(err: unknown) {
        settle();
        reject(signal?.aborted ? abortError(signal) : err);
      }
      function onAbort() {
        req.destroy(abortError(signal!));
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", fail);
      req.end(body ?? undefined);
    });
  };
  return send as unknown as HttpFetch;
}
