/**
 * The learner: the chat model that writes the lessons. Either a ChatClient (the project's
 * `openAICompatible(…)` client, or anything with its `chat` method) or a bare function with the
 * port's signature; both end up as one `ask` that returns the reply, its parsed value and usage.
 */
import type { Pricing } from "../llm/config.ts";
import { errorText } from "../llm/messages.ts";
import type { ChatClient, ChatFunction, ChatMessage, ChatResult } from "../llm/port.ts";
import { normaliseUsage, type TokenUsage } from "./usage.ts";

export type Learner = ChatClient | ChatFunction;

export interface AskOptions<T> {
  temperature: number;
  maxTokens?: number;
  parse: (text: string) => T;
  signal?: AbortSignal;
}

export interface Answer<T> {
  text: string;
  value: T;
  usage?: TokenUsage;
}

export type Ask = <T>(messages: ChatMessage[], opts: AskOptions<T>) => Promise<Answer<T>>;

/** A bare function's reply that its parser rejects is asked again this many times more. */
const FUNCTION_PARSE_RETRIES = 2;

function pricingOf(learner: Learner): Pricing | undefined {
  const endpoint = (learner as { endpoint?: { pricing?: Pricing } }).endpoint;
  return endpoint?.pricing;
}

export function learnerAsk(learner: Learner, pricing?: Pricing): Ask {
  const price = pricing ?? pricingOf(learner);
  if (typeof learner === "function") {
    return async <T>(messages: ChatMessage[], opts: AskOptions<T>): Promise<Answer<T>> => {
      let lastError: unknown;
      for (let attempt = 0; attempt <= FUNCTION_PARSE_RETRIES; attempt++) {
        opts.signal?.throwIfAborted();
        const reply = await learner(messages, {
          temperature: opts.temperature,
          ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        const text = typeof reply === "string" ? reply : reply.text;
        const usage = typeof reply === "string" ? undefined : usageOf(reply, price);
        try {
          return { text, value: opts.parse(text), ...(usage ? { usage } : {}) };
        } catch (err) {
          lastError = err;
        }
      }
      throw new Error(`learner reply rejected ${FUNCTION_PARSE_RETRIES + 1} times: ${errorText(lastError)}`);
    };
  }
  if (!learner || typeof learner.chat !== "function") {
    throw new TypeError(
      "TrainingFreeGRPO: learner must be a chat client (e.g. openAICompatible({ baseURL, apiKey, model })) " +
        "or a function (messages, options) => reply text",
    );
  }
  return async <T>(messages: ChatMessage[], opts: AskOptions<T>): Promise<Answer<T>> => {
    const r = await learner.chat<T>(messages, {
      temperature: opts.temperature,
      parse: opts.parse,
      ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const usage = usageOf(r, price);
    return { text: r.text, value: r.value, ...(usage ? { usage } : {}) };
  };
}

/** The project's client reports usage beside the port's fields; other clients may not. */
function usageOf(r: ChatResult<unknown>, pricing: Pricing | undefined): TokenUsage | undefined {
  const u = (r as { usage?: { promptTokens?: number; completionTokens?: number } }).usage;
  return normaliseUsage(u ?? { promptTokens: 0, completionTokens: 0 }, pricing);
}
