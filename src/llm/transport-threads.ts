/**
 * Worker threads that send the clients' requests. At a hundred requests in flight the `openai`
 * SDK's request building and node's HTTP client take about half of a training-free run's main
 * thread (bench/README.md, training-free-overhead); on threads of their own they leave the main
 * thread to the agents, rewards and libraries, and a run keeps its endpoint busy on a machine
 * with a core to spare. Each request goes to the thread with the fewest in flight; the retries,
 * replicas, limits and accounting stay with the client in the main thread.
 */
import { Worker } from "node:worker_threads";
import type { ChatRequestBody, SendResult } from "./send.ts";

export type ThreadRequest =
  | {
      type: "send";
      id: number;
      baseURL: string;
      apiKey: string;
      timeoutMs: number;
      body: ChatRequestBody;
      abortable: boolean;
    }
  | { type: "abort"; id: number };

export type ThreadReply = { id: number; result: SendResult } | { id: number; aborted: true };

interface Pending {
  resolve: (r: SendResult) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** The thread's module next to this one: TypeScript in a checkout run through tsx, else the build. */
function startWorker(): Worker {
  const fromSource = import.meta.url.endsWith(".ts");
  const entry = new URL(fromSource ? "./transport-thread.ts" : "./transport-thread.js", import.meta.url);
  if (!fromSource) return new Worker(entry);
  // A worker does not inherit the loader hooks tsx registered in this thread: it registers its own.
  return new Worker(
    `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`,
    { eval: true },
  );
}

export class TransportThreads {
  readonly size: number;
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`transport threads: expected a positive integer, got ${size}`);
    this.size = size;
  }

  /** Send one request; resolves with its completion or classified failure, rejects on abort. */
  send(
    req: { baseURL: string; apiKey: string; timeoutMs: number; body: ChatRequestBody },
    signal?: AbortSignal,
  ): Promise<SendResult> {
    if (this.closed) return Promise.reject(new Error("transport threads: closed"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const thread = this.pick();
    const id = this.nextId++;
    return new Promise<SendResult>((resolve, reject) => {
      const pending: Pending = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        pending.onAbort = () => {
          thread.pending.delete(id);
          this.idle(thread);
          thread.worker.postMessage({ type: "abort", id } satisfies ThreadRequest);
          reject(signal.reason);
        };
        signal.addEventListener("abort", pending.onAbort, { once: true });
      }
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, pending);
      thread.worker.postMessage({
        type: "send",
        id,
        ...req,
        abortable: signal !== undefined,
      } satisfies ThreadRequest);
    });
  }

  /** Stops the threads; requests still in flight fail as network errors. */
  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private pick(): Thread {
    let best: Thread | undefined;
    for (const t of this.threads) if (!best || t.pending.size < best.pending.size) best = t;
    if (best && (best.pending.size === 0 || this.threads.length >= this.size)) return best;
    return this.spawn();
  }

  private spawn(): Thread {
    const thread: Thread = { worker: startWorker(), pending: new Map() };
    thread.worker.unref();
    thread.worker.on("message", (reply: ThreadReply) => this.settle(thread, reply));
    thread.worker.on("error", (err) => this.lost(thread, `transport thread failed: ${String(err)}`));
    thread.worker.on("exit", (code) => this.lost(thread, `transport thread exited (code ${code})`));
    this.threads.push(thread);
    return thread;
  }

  private settle(thread: Thread, reply: ThreadReply): void {
    const p = thread.pending.get(reply.id);
    if (!p) return; // aborted here already
    thread.pending.delete(reply.id);
    this.idle(thread);
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
    if ("aborted" in reply) p.reject(p.signal?.reason ?? new Error("request aborted"));
    else p.resolve(reply.result);
  }

  /** A thread that died takes its requests with it: each fails as a network error, to be retried. */
  private lost(thread: Thread, message: string): void {
    const i = this.threads.indexOf(thread);
    if (i >= 0) this.threads.splice(i, 1);
    for (const [id, p] of thread.pending) {
      thread.pending.delete(id);
      if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
      p.resolve({ ok: false, failure: { kind: "network", message, cause: new Error(message) } });
    }
  }

  private idle(thread: Thread): void {
    if (thread.pending.size === 0) thread.worker.unref();
  }
}
