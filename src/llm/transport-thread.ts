/**
 * The body of one transport thread (see transport-threads.ts): it sends the requests the main
 * thread posts through the `openai` SDK over the keep-alive HTTP transport, and posts back what
 * became of each, in a form that crosses threads (the failure's cause reduced to its name,
 * message and codes).
 */

import { parentPort } from "node:worker_threads";
import type OpenAI from "openai";
import { httpFetch } from "./http-fetch.ts";
import { type SendResult, sendWholeBody, wholeBodySdkClient } from "./send.ts";
import type { ThreadReply, ThreadRequest } from "./transport-threads.ts";

const port = parentPort;
if (!port) throw new Error("transport-thread.ts runs as a worker thread, started by TransportThreads");

const fetchOfThread = httpFetch();
const clients = new Map<string, OpenAI>();
const aborts = new Map<number, AbortController>();

function clientFor(r: Extract<ThreadRequest, { type: "send" }>): OpenAI {
  const key = `${r.baseURL}\u0000${r.apiKey}\u0000${r.timeoutMs}`;
  let c = clients.get(key);
  if (!c) {
    c = wholeBodySdkClient({
      baseURL: r.baseURL,
      apiKey: r.apiKey,
      timeoutMs: r.timeoutMs,
      fetch: fetchOfThread,
    });
    clients.set(key, c);
  }
  return c;
}

function portable(result: SendResult): SendResult {
  if (result.ok) return result;
  const cause = result.failure.cause as {
    name?: unknown;
    message?: unknown;
    code?: unknown;
    status?: unknown;
  };
  return {
    ok: false,
    failure: {
      ...result.failure,
      cause: {
        name: String(cause?.name ?? "Error"),
        message: String(cause?.message ?? result.failure.message),
        ...(typeof cause?.code === "string" ? { code: cause.code } : {}),
        ...(typeof cause?.status === "number" ? { status: cause.status } : {}),
      },
    },
  };
}

port.on("message", async (m: ThreadRequest) => {
  if (m.type === "abort") {
    aborts.get(m.id)?.abort();
    return;
  }
  // An abort controller only for the requests that can be aborted: each costs CPU.
  const controller = m.abortable ? new AbortController() : undefined;
  if (controller) aborts.set(m.id, controller);
  let reply: ThreadReply;
  try {
    const result = await sendWholeBody(clientFor(m), m.body, {
      ...(controller ? { signal: controller.signal } : {}),
      timeoutMs: m.timeoutMs,
    });
    reply = { id: m.id, result: portable(result) };
  } catch {
    reply = { id: m.id, aborted: true };
  } finally {
    if (controller) aborts.delete(m.id);
  }
  port.postMessage(reply);
});
