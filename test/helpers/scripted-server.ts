/**
 * A real OpenAI-compatible HTTP server on 127.0.0.1 whose replies follow a script, so that the
 * LLM layer and everything built on it are tested through the real SDK and real sockets.
 *
 *   POST /v1/chat/completions  → the next scripted reply (array form) or the responder's answer
 *   GET  /v1/models            → one model, "scripted-model"
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "node:test";
import type { ChatMessage } from "../../src/llm/port.ts";

export interface ScriptedReply {
  /** HTTP status, 200 by default. A non-2xx status sends an OpenAI-style error body. */
  status?: number;
  /** Assistant message content (200) or error message (other statuses). */
  content?: string;
  /** Raw body instead of a chat completion (malformed JSON tests); sent as application/json. */
  rawBody?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Never answer (timeout tests). */
  hang?: boolean;
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** Tool calls the assistant makes (OpenAI's `tool_calls`); the reply's finish reason is then "tool_calls". */
  toolCalls?: { name: string; arguments: string; id?: string }[];
  /** Sent as `message.reasoning_content`, as reasoning models served by vLLM or DeepSeek do. */
  reasoning?: string;
}

export type Responder = (req: {
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary request fields without narrowing
  body: any;
  messages: ChatMessage[];
  model: string;
  index: number;
}) => ScriptedReply | Promise<ScriptedReply>;

export interface RecordedRequest {
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary request fields without narrowing
  body: any;
  /** Date.now() when the request arrived. */
  at: number;
  headers: Record<string, string | string[] | undefined>;
  /**
   * When the request's headers arrived and when the reply's last byte went to the socket (absent
   * for a reply never finished), in milliseconds since the epoch at sub-millisecond resolution
   * (performance.timeOrigin + performance.now()), comparable with another process's.
   */
  receivedAt: number;
  repliedAt?: number;
}

export interface ScriptedServer {
  /** http://127.0.0.1:PORT/v1 */
  baseURL: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
  /** Most chat requests being handled at the same time. */
  readonly maxInFlight: number;
  readonly inFlight: number;
}

/** Milliseconds since the epoch at sub-millisecond resolution: the clock of receivedAt and repliedAt. */
export const preciseNow = () => performance.timeOrigin + performance.now();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A rough stand-in for a tokenizer: one token per 4 characters, at least 1. */
function roughTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function errorType(status: number): string {
  if (status === 401) return "invalid_request_error";
  if (status === 429) return "rate_limit_exceeded";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export async function startScriptedServer(
  script: ScriptedReply[] | Responder,
  opts: { latencyMs?: number } = {},
): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let chatIndex = 0;

  const respond = async (req: IncomingMessage, res: ServerResponse, raw: string, receivedAt: number) => {
    const url = req.url ?? "";
    if (req.method === "GET" && url.replace(/\?.*$/, "") === "/v1/models") {
      send(res, 200, {
        object: "list",
        data: [{ id: "scripted-model", object: "model", created: 0, owned_by: "test" }],
      });
      return;
    }
    if (req.method !== "POST" || url.replace(/\?.*$/, "") !== "/v1/chat/completions") {
      send(res, 404, { error: { message: `no route ${req.method} ${url}`, type: "invalid_request_error" } });
      return;
    }
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary request fields without narrowing
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      send(res, 400, { error: { message: "request body is not JSON", type: "invalid_request_error" } });
      return;
    }
    const index = chatIndex++;
    const record: RecordedRequest = { body, at: Date.now(), headers: { ...req.headers }, receivedAt };
    requests.push(record);
    res.once("finish", () => {
      record.repliedAt = preciseNow();
    });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const messages: ChatMessage[] = Array.isArray(body?.messages) ? body.messages : [];
      const model = String(body?.model ?? "");
      let reply: ScriptedReply;
      if (typeof script === "function") {
        reply = await script({ body, messages, model, index });
      } else if (index < script.length) {
        reply = script[index]!;
      } else {
        // Loud on purpose: a test that sends more requests than it scripted has a bug.
        reply = { status: 500, content: `scripted server: no reply scripted for request #${index}` };
      }
      if (opts.latencyMs) await sleep(opts.latencyMs);
      if (reply.delayMs) await sleep(reply.delayMs);
      if (reply.hang) {
        await new Promise<void>((resolve) => res.on("close", resolve));
        return;
      }
      const status = reply.status ?? 200;
      const headers = reply.headers ?? {};
      if (reply.rawBody !== undefined) {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(reply.rawBody);
        return;
      }
      if (status < 200 || status >= 300) {
        send(
          res,
          status,
          { error: { message: reply.content ?? `scripted error ${status}`, type: errorType(status) } },
          headers,
        );
        return;
      }
      const content = reply.content ?? "";
      const toolCalls = reply.toolCalls?.map((c, i) => ({
        id: c.id ?? `call_${index}_${i}`,
        type: "function",
        function: { name: c.name, arguments: c.arguments },
      }));
      const promptText = messages.map((m) => String(m.content ?? "")).join("\n");
      const usage = reply.usage ?? {
        prompt_tokens: roughTokens(promptText),
        completion_tokens: roughTokens(content),
      };
      send(
        res,
        status,
        {
          id: `chatcmpl-scripted-${index}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: toolCalls && content === "" ? null : content,
                ...(toolCalls ? { tool_calls: toolCalls } : {}),
                ...(reply.reasoning !== undefined ? { reasoning_content: reply.reasoning } : {}),
              },
              finish_reason: toolCalls ? "tool_calls" : "stop",
              logprobs: null,
            },
          ],
          usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
        },
        headers,
      );
    } finally {
      inFlight--;
    }
  };

  const server = createServer((req, res) => {
    const receivedAt = preciseNow();
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      respond(req, res, Buffer.concat(chunks).toString("utf8"), receivedAt).catch((err: unknown) => {
        if (!res.headersSent)
          send(res, 500, { error: { message: `scripted server failed: ${String(err)}` } });
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    get inFlight() {
      return inFlight;
    },
    close() {
      return new Promise<void>((resolve) => {
        // Hanging replies keep sockets open; without this, close() would wait for them forever.
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** A test file's way to start servers: each one it starts is closed after the test that started it. */
export function scriptedServers(): (
  script: Parameters<typeof startScriptedServer>[0],
  opts?: Parameters<typeof startScriptedServer>[1],
) => Promise<ScriptedServer> {
  const open: ScriptedServer[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });
  return async (script, opts) => {
    const s = await startScriptedServer(script, opts);
    open.push(s);
    return s;
  };
}
