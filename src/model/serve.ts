/**
 * An OpenAI-compatible HTTP server over the in-process engine (`grpo serve`): GET /v1/models,
 * POST /v1/chat/completions (temperature, top_p, top_k, max_tokens / max_completion_tokens,
 * seed, n, stop, tools for the template, stream), usage counts, and errors in OpenAI's shape
 * ({"error": {"message", "type", "param", "code"}}) with OpenAI's statuses, so that the
 * training-free commands, the openai SDK and any OpenAI client use a local model unchanged.
 *
 * Requests queue and are served in order; those that arrive together and sample alike
 * (temperature, top_p, top_k) share one batched sampler call. Each request draws from a stream of
 * its own — its seed's, or one drawn from the server's seeded stream — so that a request with a
 * seed gives the same completions whatever it was batched with.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { Rng } from "../core/rng.ts";
import {
  chatPromptIds,
  defaultModelName,
  type Generation,
  generateBatch,
  type SamplingSettings,
  samplingDefaults,
  type TextModel,
} from "./generate.ts";
import type { ChatMessage } from "./hf/tokenizer.ts";

export interface ServeOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** the model id clients ask for; default: the model's (or adapter's) directory name. */
  modelName?: string;
  /** when set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** seed of the stream that requests without a seed sample from. */
  seed?: number;
  /** most completions sampled in one batched call. */
  maxBatchRows?: number;
  /** one line per request. */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:8000/v1 */
  baseURL: string;
  port: number;
  modelName: string;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const MAX_BODY = 16 << 20;

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const messageSchema = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
});
const requestSchema = z.looseObject({
  model: z.string(),
  messages: z.array(messageSchema).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  tools: z.array(z.unknown()).nullish(),
  response_format: z.looseObject({ type: z.string() }).nullish(),
});
type ChatRequest = z.infer<typeof requestSchema>;

interface Job {
  promptIds: number[];
  n: number;
  maxTokens: number;
  stop: string[];
  settings: Required<SamplingSettings>;
  seed?: number;
  resolve(g: Generation[]): void;
  reject(err: unknown): void;
  /** the client went away: nothing to sample. */
  gone(): boolean;
}

/** The request's text of a message: a string, or the text parts of a content array. */
function messageText(m: z.infer<typeof messageSchema>, i: number): string | null {
  if (m.content === undefined || m.content === null) return null;
  if (typeof m.content === "string") return m.content;
  return m.content
    .map((p, j) => {
      if (p.type !== "text" || typeof p.text !== "string")
        throw new ApiError(
          400,
          `messages[${i}].content[${j}]: only text parts are supported, got "${p.type}"`,
          "invalid_request_error",
          `messages[${i}].content`,
        );
      return p.text;
    })
    .join("");
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  send(res, err.status, {
    error: { message: err.message, type: err.type, param: err.param, code: err.code },
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, `request body over ${MAX_BODY} bytes`, "invalid_request_error"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts serving `m`; resolves once listening. */
export async function startServer(m: TextModel, opts: ServeOptions = {}): Promise<RunningServer> {
  const modelName = opts.modelName ?? defaultModelName(m);
  const created = Math.floor(Date.now() / 1000);
  const streamRng = new Rng(opts.seed ?? 0);
  const maxRows = opts.maxBatchRows ?? 16;
  const log = opts.log ?? (() => {});
  const context = m.model.contextLength;
  const queue: Job[] = [];
  let draining = false;

  const sameSampling = (a: Job, b: Job) =>
    a.settings.temperature === b.settings.temperature &&
    a.settings.topP === b.settings.topP &&
    a.settings.topK === b.settings.topK;

  function runBatch(batch: Job[]): void {
    try {
      const reqs = batch.flatMap((j) =>
        Array.from({ length: j.n }, () => ({
          promptIds: j.promptIds,
          maxNewTokens: j.maxTokens,
          stop: j.stop,
        })),
      );
      // The n completions of a request share its stream; their draws keep row order.
      const rngs = batch.flatMap((j) => {
        const rng = new Rng(j.seed ?? Math.floor(streamRng.next() * 2 ** 32));
        return Array.from({ length: j.n }, () => rng);
      });
      const gens = generateBatch(m, reqs, batch[0]!.settings, rngs);
      let k = 0;
      for (const j of batch) {
        j.resolve(gens.slice(k, k + j.n));
        k += j.n;
      }
    } catch (err) {
      for (const j of batch) j.reject(err);
    }
  }

  /** Serves the queue in order; jobs that sample alike go together. */
  async function drain(): Promise<void> {
    if (draining) return;
    draining = true;
    try {
      while (queue.length > 0) {
        // Let the requests that arrived meanwhile join the queue first.
        await new Promise<void>((r) => setImmediate(r));
        const head = queue.shift()!;
        if (head.gone()) {
          head.resolve([]);
          continue;
        }
        const batch = [head];
        let rows = head.n;
        for (let i = 0; i < queue.length && rows < maxRows; ) {
          const j = queue[i]!;
          if (sameSampling(j, head) && rows + j.n <= maxRows && !j.gone()) {
            batch.push(j);
            rows += j.n;
            queue.splice(i, 1);
          } else i++;
        }
        runBatch(batch);
      }
    } finally {
      draining = false;
    }
  }

  function prepare(body: ChatRequest): Omit<Job, "resolve" | "reject" | "gone"> {
    if (body.model !== modelName)
      throw new ApiError(
        404,
        `The model \`${body.model}\` does not exist.`,
        "invalid_request_error",
        "model",
        "model_not_found",
      );
    if (body.response_format && body.response_format.type !== "text")
      throw new ApiError(
        400,
        `response_format ${JSON.stringify(body.response_format.type)} is not supported by this server (no constrained decoding)`,
        "invalid_request_error",
        "response_format",
      );
    const messages: ChatMessage[] = body.messages.map((msg, i) => ({ ...msg, content: messageText(msg, i) }));
    let promptIds: number[];
    try {
      promptIds = chatPromptIds(m, messages, body.tools ? { tools: body.tools } : {});
    } catch (err) {
      throw new ApiError(
        400,
        `the chat template could not render the messages: ${(err as Error).message}`,
        "invalid_request_error",
        "messages",
      );
    }
    if (promptIds.length >= context)
      throw new ApiError(
        400,
        `This model's maximum context length is ${context} tokens. However, your messages resulted in ${promptIds.length} tokens.`,
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
      );
    const room = context - promptIds.length;
    const asked = body.max_completion_tokens ?? body.max_tokens ?? m.generation?.maxNewTokens ?? room;
    const settings = samplingDefaults(m, {
      ...(body.temperature == null ? {} : { temperature: body.temperature }),
      ...(body.top_p == null ? {} : { topP: body.top_p }),
      ...(body.top_k == null ? {} : { topK: Math.max(0, body.top_k) }),
    });
    return {
      promptIds,
      n: body.n ?? 1,
      // The context bounds a completion: a limit past it ends as "length" where the context does.
      maxTokens: Math.min(asked, room),
      stop: body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop,
      settings,
      ...(body.seed == null ? {} : { seed: body.seed }),
    };
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    let raw: unknown;
    try {
      raw = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(
        400,
        `the request body is not valid JSON: ${(err as Error).message}`,
        "invalid_request_error",
      );
    }
    const parsed = requestSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const param = issue.path.map(String).join(".") || null;
      throw new ApiError(
        400,
        `Invalid value for '${param ?? "body"}': ${issue.message}`,
        "invalid_request_error",
        param,
      );
    }
    const body = parsed.data;
    const spec = prepare(body);
    let closed = false;
    res.on("close", () => {
      closed = true;
    });
    const gens = await new Promise<Generation[]>((resolve, reject) => {
      queue.push({ ...spec, resolve, reject, gone: () => closed });
      void drain();
    }).catch((err: unknown) => {
      throw new ApiError(500, `generation failed: ${(err as Error).message}`, "server_error");
    });
    if (closed) return;
    const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
    const usage = {
      prompt_tokens: spec.promptIds.length,
      completion_tokens: gens.reduce((a, g) => a + g.completionIds.length, 0),
      total_tokens: spec.promptIds.length + gens.reduce((a, g) => a + g.completionIds.length, 0),
    };
    log(
      `POST /v1/chat/completions 200: ${spec.n} × (${usage.prompt_tokens} prompt + ≤${spec.maxTokens} new) tokens, ${usage.completion_tokens} generated, ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    if (body.stream) {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        connection: "keep-alive",
      });
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        res.write(
          `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: modelName, choices, ...extra })}\n\n`,
        );
      gens.forEach((g, index) => {
        chunk([{ index, delta: { role: "assistant", content: "" }, finish_reason: null }]);
        chunk([{ index, delta: { content: g.text }, finish_reason: null }]);
        chunk([{ index, delta: {}, finish_reason: g.finishReason }]);
      });
      if (body.stream_options?.include_usage) chunk([], { usage });
      res.end("data: [DONE]\n\n");
      return;
    }
    send(res, 200, {
      id,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: modelName,
      choices: gens.map((g, index) => ({
        index,
        message: { role: "assistant", content: g.text },
        logprobs: null,
        finish_reason: g.finishReason,
      })),
      usage,
    });
  }

  const modelObject = { id: modelName, object: "model", created, owned_by: "grpo-ts" };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "");
    if (path === "/health" && req.method === "GET") {
      send(res, 200, { status: "ok" });
      return;
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`)
      throw new ApiError(
        401,
        "Incorrect API key provided.",
        "invalid_request_error",
        null,
        "invalid_api_key",
      );
    if (path === "/v1/models" && req.method === "GET") {
      send(res, 200, { object: "list", data: [modelObject] });
      return;
    }
    if (path.startsWith("/v1/models/") && req.method === "GET") {
      const name = decodeURIComponent(path.slice("/v1/models/".length));
      if (name !== modelName)
        throw new ApiError(
          404,
          `The model \`${name}\` does not exist.`,
          "invalid_request_error",
          "model",
          "model_not_found",
        );
      send(res, 200, modelObject);
      return;
    }
    if (path === "/v1/chat/completions") {
      if (req.method !== "POST")
        throw new ApiError(405, `${req.method} is not allowed on ${path}; use POST`, "invalid_request_error");
      await chatCompletions(req, res);
      return;
    }
    throw new ApiError(
      404,
      `Unknown request URL: ${req.method} ${url.pathname}.`,
      "invalid_request_error",
      null,
      "unknown_url",
    );
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, `internal error: ${(err as Error).message}`, "server_error");
      if (e.status !== 200) log(`${req.method} ${req.url} ${e.status}: ${e.message}`);
      if (!res.headersSent) sendError(res, e);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8000, opts.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? "127.0.0.1";
  return {
    baseURL: `http://${host.includes(":") ? `[${host}]` : host}:${port}/v1`,
    port,
    modelName,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
