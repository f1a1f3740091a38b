/**
 * The fetch the client gives the `openai` SDK: one request over node's http(s) with a keep-alive
 * agent, answered once the whole body has arrived. It implements what the SDK reads of a
 * fetch and its response (method, headers, a string body, a signal; status, headers, json(),
 * text()) and nothing else.
 *
 * Why not the global fetch: at a hundred requests in flight its web streams, Request and
 * Response objects and per-request abort signals cost the client about 0.95 ms of CPU per call
 * on the 2-core machine; this costs about a third less (bench/README.md, training-free-overhead),
 * and that CPU is what keeps a large run from keeping its endpoint busy. The SDK's timeout,
 * armed until this resolves, then covers the whole exchange, body included.
 */
import http from "node:http";
import https from "node:https";

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
    for (const [k, v] of Object.entries(h as Record<string, string>)) out[k.toLowerCase()] = v;
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

export function httpFetch(opts: HttpFetchOptions = {}): typeof fetch {
  const maxSockets = opts.maxSockets ?? 1024;
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets }),
    "https:": new https.Agent({ keepAlive: true, maxSockets }),
  };
  const send = (input: string | URL | Request, init: RequestInit = {}): Promise<Reply> => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
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
        url,
        { method: init.method ?? "GET", headers, agent: agents[url.protocol as "http:" | "https:"] },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", fail);
          res.on("end", () => {
            signal?.removeEventListener("abort", onAbort);
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
      function fail(err: unknown) {
        signal?.removeEventListener("abort", onAbort);
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
  return send as unknown as typeof fetch;
}
